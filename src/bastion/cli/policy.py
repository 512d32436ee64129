"""`bastion policy …`: tune a deployment's score bands to error costs and review capacity."""

from __future__ import annotations

import getpass
import json
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, cast

import numpy as np
import numpy.typing as npt
import typer
from rich import box
from rich.table import Table

from bastion.cli.common import console, open_registry, read_frame
from bastion.errors import InvalidInput, NotFound
from bastion.policy.apply import AppliedThresholds, apply_thresholds, edited_spec_text
from bastion.policy.bands import ScoreBands
from bastion.policy.calibration import (
    Calibration,
    CalibrationMethod,
    CalibrationReport,
    calibrate,
    expected_calibration_error,
)
from bastion.policy.labelled import column_scores, label_values, model_scores
from bastion.policy.plots import write_report
from bastion.policy.tuning import Costs, TuningResult, tune
from bastion.registry import ModelVersion, Registry
from bastion.spec import Deployment, load_spec

app = typer.Typer(
    help="Tune score thresholds to error costs and review capacity.", no_args_is_help=True
)

#: above this expected calibration error the output suggests --calibrate
ECE_HINT = 0.05


class CalibrateMethod(StrEnum):
    none = "none"
    isotonic = "isotonic"
    platt = "platt"


@dataclass
class Labelled:
    """The cases to tune on: labels, the scores the bands will see, and how they were made."""

    labels: npt.NDArray[np.int8]
    scores: npt.NDArray[np.float64]
    source: str
    version: ModelVersion | None = None
    report: CalibrationReport | None = None
    stored_calibration: str | None = None


def _deployment(spec_path: Path, name: str) -> Deployment:
    spec = load_spec(spec_path)
    if name not in spec.deployments:
        known = ", ".join(sorted(spec.deployments)) or "none"
        raise NotFound(f"no deployment {name!r} in {spec_path} (deployments: {known})")
    return spec.deployments[name]


def _labelled(
    registry: Registry,
    deployment: Deployment,
    path: Path,
    label_column: str,
    score_column: str,
    method: CalibrateMethod,
) -> Labelled:
    """Read the file and score it; with a method, fit the calibration and apply it.

    A score column is taken as the score the bands see (raw model scores when calibrating);
    without one the model scores the features, and a calibration already stored with the
    version is applied, as serving does.
    """
    frame = read_frame(path)
    labels = label_values(frame, label_column, source=str(path))
    version = None
    if score_column in frame.columns:
        raw = column_scores(frame, score_column, source=str(path))
        source = f"column {score_column!r} of {path}"
    else:
        version = registry.get(deployment.model)
        raw = model_scores(frame, version, registry.load(version), source=str(path))
        source = f"model {version.ref} on {path}"
    if method is not CalibrateMethod.none:
        version = version or registry.get(deployment.model)
        report = calibrate(raw, labels, cast(CalibrationMethod, method.value))
        calibrated = report.calibration.transform(raw)
        return Labelled(labels, calibrated, source, version=version, report=report)
    if version is not None and version.calibration is not None:
        stored = Calibration.from_dict(version.calibration)
        return Labelled(
            labels, stored.transform(raw), source, version=version, stored_calibration=stored.method
        )
    return Labelled(labels, raw, source, version=version)


def _table(result: TuningResult) -> Table:
    """One row per alternative (* and dim: over the review capacity). Per-day cost is in
    the chosen line and the JSON: the table fits 80 columns."""
    per_day = result.daily_volume is not None
    table = Table(
        title="Cost table",
        caption="FP: share of good cases declined; FN: share of bad cases approved"
        + ("; *: over the review capacity" if result.review_capacity is not None else ""),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("option", no_wrap=True)
    for column in [
        "t_low",
        "t_high",
        "cost/case",
        "reviews/day" if per_day else "reviewed",
        "FP",
        "FN",
    ]:
        table.add_column(column, justify="right", no_wrap=True)
    for row in result.alternatives:
        p = row.point
        label = row.label if row.within_capacity else f"{row.label} *"
        cells = [label, f"{p.t_low:.4f}", f"{p.t_high:.4f}", f"{p.cost_per_case:.4f}"]
        if p.reviews_per_day is not None:
            cells.append(f"{p.reviews_per_day:,.1f}")
        else:
            cells.append(f"{p.review_share:.1%}")
        cells += [
            "-" if p.fp_rate is None else f"{p.fp_rate:.1%}",
            "-" if p.fn_rate is None else f"{p.fn_rate:.1%}",
        ]
        style = "bold" if row.label == "chosen" else (None if row.within_capacity else "dim")
        table.add_row(*cells, style=style)
    return table


def _print(
    run: Labelled,
    ece: float,
    result: TuningResult,
    plots: tuple[Path, Path] | None,
    applied: AppliedThresholds | None,
) -> None:
    positives = int(run.labels.sum())
    console.print(
        f"{len(run.labels):,} labelled cases, {positives:,} adverse "
        f"({positives / len(run.labels):.1%}); scores from {run.source}"
    )
    if run.report is not None:
        where = run.version.ref if run.version else "the model version"
        stored = (
            f"stored with {where} together with the bands"
            if applied is not None
            else f"not stored: --apply stores it with {where} together with the bands"
        )
        console.print(
            f"calibrated ({run.report.calibration.method}): ECE {run.report.ece_before:.4f} → "
            f"{run.report.ece_after:.4f} ({run.report.folds}-fold cross-validated); {stored}"
        )
    else:
        stored = f" (after the {run.stored_calibration} calibration stored with the version)"
        console.print(f"calibration: ECE {ece:.4f}{stored if run.stored_calibration else ''}")
        if ece > ECE_HINT:
            console.print("  scores are not probabilities: consider --calibrate isotonic or platt")
    console.print(_table(result))
    c = result.chosen
    per_day = f" ({c.cost_per_day:,.2f} per day)" if c.cost_per_day is not None else ""
    console.print(
        f"[bold]chosen:[/] approve s < {c.t_low:.6g}, review {c.t_low:.6g} ≤ s < {c.t_high:.6g}, "
        f"decline s ≥ {c.t_high:.6g}: expected cost {c.cost_per_case:.4f} per case{per_day}"
    )
    if plots is not None:
        console.print(f"wrote {plots[0]} and {plots[1]}")
    if applied is not None:
        verb = "wrote the bands to" if applied.changed else "the bands are already in"
        console.print(f"{verb} {applied.path} (deployments.{applied.deployment}.policy.bands)")


@app.command("tune")
def policy_tune(
    deployment: Annotated[str, typer.Argument(help="The deployment whose bands to tune.")],
    labels: Annotated[
        Path,
        typer.Option(help="CSV or Parquet: a label column and scores or the model's features."),
    ],
    cost_fp: Annotated[float, typer.Option(help="Cost of declining a good case.")],
    cost_fn: Annotated[float, typer.Option(help="Cost of approving a bad case.")],
    cost_review: Annotated[float, typer.Option(help="Cost of reviewing one case.")],
    spec: Annotated[Path, typer.Option(help="The spec file.")] = Path("bastion.yaml"),
    review_capacity: Annotated[
        float | None, typer.Option(help="Cases reviewers can take per day (needs --daily-volume).")
    ] = None,
    daily_volume: Annotated[float | None, typer.Option(help="Expected cases per day.")] = None,
    score_column: Annotated[
        str, typer.Option(help="Column holding the scores; absent: the model scores the file.")
    ] = "score",
    label_column: Annotated[
        str, typer.Option(help="Column holding 0/1 labels (1 = adverse).")
    ] = "label",
    calibrate_method: Annotated[
        CalibrateMethod,
        typer.Option(
            "--calibrate",
            help="Fit a calibration and tune on calibrated scores; with --apply, store it "
            "with the model version.",
        ),
    ] = CalibrateMethod.none,
    plot_dir: Annotated[
        Path | None,
        typer.Option("--plot-dir", "-o", help="Write cost-curve.png and tuning.html here."),
    ] = None,
    apply: Annotated[
        bool, typer.Option(help="Write the chosen bands into the spec (audited).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Choose t_low and t_high that minimise expected cost within the review capacity."""
    costs = Costs(fp=cost_fp, fn=cost_fn, review=cost_review)
    if review_capacity is not None and daily_volume is None:
        raise InvalidInput("--review-capacity needs --daily-volume (expected cases per day)")
    target = _deployment(spec, deployment)
    bands = target.policy.bands if target.policy is not None else None
    with open_registry() as registry:
        run = _labelled(registry, target, labels, label_column, score_column, calibrate_method)
        ece = expected_calibration_error(run.scores, run.labels)
        result = tune(
            run.scores,
            run.labels,
            costs,
            review_capacity=review_capacity,
            daily_volume=daily_volume,
            current=(bands.approve_below, bands.decline_at_or_above) if bands else None,
        )
        applied = _apply(registry, spec, deployment, run, result) if apply else None
    plots = None
    if plot_dir is not None:
        plots = write_report(result, plot_dir, deployment=deployment, calibration=run.report)
    if as_json:
        sys.stdout.write(
            json.dumps(_json(deployment, run, ece, result, plots, applied), indent=2) + "\n"
        )
    else:
        _print(run, ece, result, plots, applied)


def _apply(
    registry: Registry, spec: Path, deployment: str, run: Labelled, result: TuningResult
) -> AppliedThresholds:
    """Store the fitted calibration (if any) and write the bands, as one reviewed change.

    Bands tuned on calibrated scores are only right with that calibration served, and the
    other way round, so both change together; the spec edit is checked before either.
    """
    bands = ScoreBands(approve_below=result.chosen.t_low, decline_at_or_above=result.chosen.t_high)
    edited_spec_text(spec.read_text(encoding="utf-8"), deployment, bands, source=str(spec))
    actor = getpass.getuser()
    if run.report is not None and run.version is not None:
        registry.set_calibration(run.version.ref, run.report.calibration.to_dict(), actor=actor)
    return apply_thresholds(
        spec,
        deployment,
        bands,
        database=registry.database,
        actor=actor,
        details=_audit_details(run, result),
    )


def _audit_details(run: Labelled, result: TuningResult) -> dict[str, Any]:
    return {
        "costs": {"fp": result.costs.fp, "fn": result.costs.fn, "review": result.costs.review},
        "review_capacity": result.review_capacity,
        "daily_volume": result.daily_volume,
        "cost_per_case": result.chosen.cost_per_case,
        "reviews_per_day": result.chosen.reviews_per_day,
        "cases": result.cases,
        "model": run.version.ref if run.version else None,
        "calibration": run.report.calibration.method if run.report else run.stored_calibration,
    }


def _json(
    deployment: str,
    run: Labelled,
    ece: float,
    result: TuningResult,
    plots: tuple[Path, Path] | None,
    applied: AppliedThresholds | None,
) -> dict[str, Any]:
    return {
        "deployment": deployment,
        "scores": run.source,
        "model": run.version.ref if run.version else None,
        "ece": ece,
        "calibration": run.report.to_dict() if run.report else None,
        "stored_calibration_applied": run.stored_calibration,
        **result.to_dict(),
        "plots": None if plots is None else {"png": str(plots[0]), "html": str(plots[1])},
        "applied": None if applied is None else applied.to_dict(),
    }
