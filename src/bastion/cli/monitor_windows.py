"""`bastion monitor` commands: reference profiles, drift windows now, stored windows.

``drift`` computes a window from this machine's decision log on the spot (``--store``
keeps it beside the background job's); ``windows`` lists what the job stored;
``reference`` replaces a version's drift reference with new data.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from bastion.cli.common import console, errors, open_registry, read_frame
from bastion.errors import InvalidInput
from bastion.monitor.drift import FeatureDrift
from bastion.monitor.results import WindowResult
from bastion.monitor.windows import WindowService
from bastion.spec import Deployment, load_spec

app = typer.Typer()

SpecOption = Annotated[
    Path, typer.Option("--spec", help="The deployment spec (monitor, policy bands, model).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DEFAULT_SPEC = Path("bastion.yaml")
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@app.command("reference")
def reference(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION whose reference to replace.")],
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet reference data.")],
    label_column: Annotated[
        str | None,
        typer.Option(help="The data's true-label column (kept for label-free estimates)."),
    ] = None,
) -> None:
    """Profile DATA as the version's drift reference (scored by its own model) and store it."""
    from bastion.registry.monitoring import set_monitor_reference

    frame = read_frame(data)
    with open_registry() as registry:
        result = set_monitor_reference(
            registry, ref, frame, label_column=label_column, actor=getpass.getuser()
        )
    labelled = "with labels" if result.labels is not None else "without labels"
    console.print(
        f"stored the drift reference of [bold]{ref}[/]: {result.profile.rows} rows, "
        f"{len(result.profile.features)} features, raw sample of {result.sample_rows} rows "
        f"{labelled}"
    )


@app.command("windows")
def windows(
    deployment: Annotated[str, typer.Argument(help="The deployment's name.")],
    limit: Annotated[int, typer.Option(help="How many windows, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List the deployment's stored monitor windows, newest first."""
    with open_registry() as registry:
        stored = WindowService(registry.database, registry).list(deployment, limit)
    if as_json:
        _print_json([w.to_dict() for w in stored])
        return
    table = Table(
        "ended", "version", "rows", "drifted", "dataset drift", "AUC", "est. AUC", "labels"
    )
    for window in stored:
        table.add_row(
            window.ended_at.strftime("%Y-%m-%d %H:%M"),
            window.model_ref,
            str(window.rows),
            "—"
            if window.drift is None
            else f"{window.drift.drifted_features}/{window.drift.total_features}",
            "—"
            if window.drift is None
            else ("[red]yes[/]" if window.drift.dataset_drift else "no"),
            _number((window.performance or {}).get("roc_auc")),
            _number((window.estimated or {}).get("roc_auc")),
            _percent((window.performance or {}).get("label_coverage")),
        )
    console.print(table if stored else f"no stored windows for {deployment}")


@app.command("drift")
def drift(
    deployment: Annotated[str, typer.Argument(help="The deployment's name.")],
    since: Annotated[
        str | None, typer.Option(help="Window start: ISO time, or an age such as 2h or 30m.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Window end: ISO time or an age (default: now).")
    ] = None,
    rows: Annotated[
        int | None, typer.Option(help="Or: the latest N decisions (instead of --since).")
    ] = None,
    store: Annotated[bool, typer.Option(help="Store the window with the job's.")] = False,
    spec_path: SpecOption = DEFAULT_SPEC,
    as_json: JsonOption = False,
) -> None:
    """Compute a drift window now from the decision log; features sorted by severity."""
    spec = _deployment(spec_path, deployment)
    now = datetime.now(UTC)
    start = None if since is None else _when(since, now, "--since")
    end = None if until is None else _when(until, now, "--until")
    with open_registry() as registry:
        service = WindowService(registry.database, registry)
        with Progress(
            TextColumn("reading decisions"),
            BarColumn(),
            MofNCompleteColumn(),
            console=errors,
            transient=True,
        ) as bar:
            task = bar.add_task("window", total=None)
            result = service.compute(
                deployment,
                spec,
                start=start,
                end=end,
                rows=rows,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        if store:
            result = replace(result, id=service.store(result))
    if as_json:
        _print_json(result.to_dict())
        return
    _print_window(result)


def _deployment(spec_path: Path, name: str) -> Deployment:
    if not spec_path.is_file():
        raise InvalidInput(
            f"no spec at {spec_path}: pass --spec (the deployment's monitor section)"
        )
    spec = load_spec(spec_path)
    if name not in spec.deployments:
        known = ", ".join(sorted(spec.deployments)) or "none"
        raise InvalidInput(f"the spec has no deployment {name!r} (deployments: {known})")
    return spec.deployments[name]


def _when(text: str, now: datetime, option: str) -> datetime:
    """An ISO time (naive means UTC) or an age such as ``90m`` before `now`."""
    match = _AGO.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{option} must be an ISO time (2026-05-01T12:00) or an age (30m, 2h, 1d), got {text!r}"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _severity(feature: FeatureDrift) -> tuple[bool, float]:
    return (feature.drifted, feature.effect_size)


def _print_window(result: WindowResult) -> None:
    console.print(
        f"[bold]{result.deployment}[/] {result.model_ref}: {result.rows} decisions, "
        f"{result.started_at:%Y-%m-%d %H:%M:%S} → {result.ended_at:%Y-%m-%d %H:%M:%S}"
    )
    if result.drift is None:
        console.print("too few decisions to judge drift (monitor.min_rows)")
    else:
        report = result.drift
        table = Table("feature", "method", "score", "threshold", "effect size", "missing", "drift")
        features = sorted(report.features, key=_severity, reverse=True)
        for feature in [*features, *([report.prediction] if report.prediction else [])]:
            table.add_row(
                feature.name
                if feature is not report.prediction
                else f"{feature.name} (prediction)",
                feature.method,
                f"{feature.score:.4g}",
                f"{feature.threshold:.4g}",
                f"{feature.effect_size:.4g}",
                _percent(feature.current_missing_share),
                "[bold red]DRIFT[/]" if feature.drifted else "ok",
            )
        console.print(table)
        verdict = "[bold red]drifted[/]" if report.dataset_drift else "not drifted"
        console.print(
            f"data set {verdict}: {report.drifted_features} of {report.total_features} "
            f"features ({report.share:.0%}; threshold {report.drift_share:.0%})"
        )
        if not result.sampling.get("exact", True):
            console.print(
                f"K-S and Wasserstein on samples: {result.sampling['window_sample_rows']} window "
                f"rows, {result.sampling['reference_sample_rows']} reference rows"
            )
    performance, estimated = result.performance or {}, result.estimated or {}
    if performance or estimated:
        console.print(
            f"ROC AUC {_number(performance.get('roc_auc'))} on "
            f"{performance.get('labelled', 0)} labelled decisions "
            f"(coverage {_percent(performance.get('label_coverage'))}); "
            f"estimated {_number(estimated.get('roc_auc'))} (CBPE)"
        )


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "—"


def _percent(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "—"


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, allow_nan=False) + "\n")
