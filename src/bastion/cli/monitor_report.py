"""`bastion monitor report`: the monitoring report, as an HTML page for people and JSON for machines.

The window is computed fresh from the decision log (`WindowService.compute`); the stored
windows before it make the performance-over-time part. Progress bars go to stderr, so
``--json`` output on stdout stays clean for pipes.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bastion.cli.common import console, errors, open_registry
from bastion.errors import InvalidInput, NotFound
from bastion.spec import Deployment, load_spec

app = typer.Typer()

_DURATION = re.compile(r"^(\d+)\s*(m|min|h|d|w)$")
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
WINDOW_HELP = (
    "24h, 7d, 90m or 2w (ending now); rows:5000 (the latest decisions); or an ISO range "
    "2026-11-01..2026-11-08 (UTC, end exclusive). Default: the spec's monitor window."
)


@dataclass(frozen=True)
class WindowChoice:
    """What ``--window`` asked for: a time range, or the latest `rows` decisions."""

    start: datetime | None = None
    end: datetime | None = None
    rows: int | None = None


def parse_window(text: str, now: datetime) -> WindowChoice:
    """``--window``'s value as a range or a row count, or InvalidInput saying what is allowed."""
    value = text.strip()
    duration = _DURATION.match(value)
    if duration:
        amount = int(duration.group(1))
        if amount < 1:
            raise InvalidInput(f"--window must be a positive duration, got {text!r}")
        span = timedelta(**{_UNITS[duration.group(2)]: amount})
        return WindowChoice(start=now - span, end=now)
    if value.startswith("rows:"):
        count = value.removeprefix("rows:").strip()
        if not count.isdigit() or int(count) < 1:
            raise InvalidInput(f"--window rows:N needs a whole number N ≥ 1, got {text!r}")
        return WindowChoice(rows=int(count), end=now)
    if ".." in value:
        first, _, last = value.partition("..")
        start, end = _moment(first, text), _moment(last, text)
        if start >= end:
            raise InvalidInput(f"--window must start before it ends, got {text!r}")
        return WindowChoice(start=start, end=end)
    raise InvalidInput(f"--window must look like 24h, 7d, rows:5000 or START..END; got {text!r}")


def _moment(part: str, text: str) -> datetime:
    """An ISO date (midnight UTC) or date-time (UTC unless it says otherwise)."""
    part = part.strip()
    try:
        moment = (
            datetime.combine(date.fromisoformat(part), datetime.min.time())
            if len(part) == 10
            else datetime.fromisoformat(part)
        )
    except ValueError:
        raise InvalidInput(
            f"--window range ends must be ISO dates or date-times "
            f"(2026-11-01 or 2026-11-01T12:00), got {part!r} in {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _deployment(spec_path: Path, name: str) -> Deployment:
    deployments = load_spec(spec_path).deployments
    if name not in deployments:
        known = ", ".join(sorted(deployments)) or "none"
        raise NotFound(f"no deployment {name!r} in {spec_path} (deployments: {known})")
    return deployments[name]


@contextmanager
def _progress() -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, transient=True) as progress:
        yield progress


@app.command("report")
def monitor_report(
    deployment: Annotated[str, typer.Argument(help="The deployment, as named in the spec.")],
    window: Annotated[str | None, typer.Option(help=WINDOW_HELP)] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the HTML page to this file.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout.")
    ] = False,
    spec: Annotated[Path, typer.Option(help="The spec file.")] = Path("bastion.yaml"),
    history: Annotated[
        int, typer.Option(help="Stored windows shown over time (the newest).", min=1)
    ] = 48,
) -> None:
    """A self-contained HTML report (and/or JSON): verdict, drift, distributions, performance."""
    from bastion.monitor.report import build_report
    from bastion.monitor.report_html import picture_count, render_html
    from bastion.monitor.windows import WindowService

    if output is None and not as_json:
        raise InvalidInput("say where the report goes: -o report.html, --json, or both")
    now = datetime.now(UTC)
    choice = parse_window(window, now) if window is not None else WindowChoice()
    target = _deployment(spec, deployment)
    with open_registry() as registry, _progress() as progress:
        service = WindowService(registry.database, registry)
        reading = progress.add_task("reading decisions", total=None)
        result = service.compute(
            deployment,
            target,
            start=choice.start,
            end=choice.end,
            rows=choice.rows,
            progress=lambda done, total: progress.update(reading, completed=done, total=total),
        )
        reference = service.reference(result.model_name, result.model_version)
        stored = [w for w in service.list(deployment, history) if w.ended_at <= result.ended_at]
        report = build_report(deployment, result, reference, stored, generated_at=now)
        if output is not None:
            drawing = progress.add_task("drawing", total=picture_count(report))
            html = render_html(report, lambda _: progress.advance(drawing))
            output.write_text(html, encoding="utf-8")
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    tell = errors if as_json else console
    if output is not None:
        tell.print(f"wrote {output} ({report.status})", highlight=False)
    for line in report.verdict:
        tell.print(f"  {line}", highlight=False)
