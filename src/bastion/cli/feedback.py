"""`bastion feedback`: late labels for decisions (import from CSV or Parquet, list).

Labels imported here feed the monitor's label-based performance exactly like labels sent to
``POST /v1/decisions/{id}/feedback``; the file format is described in
`bastion.monitor.perf_import` and docs/performance.md.
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.cli.common import console, open_registry
from bastion.guard.pseudonym import Pseudonymizer
from bastion.monitor.perf_import import FeedbackImporter, ImportSummary
from bastion.monitor.perf_labels import FeedbackService
from bastion.settings import Settings

app = typer.Typer(help="Late labels for decisions: import, list.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _now() -> datetime:
    return datetime.now(UTC)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@app.command("import")
def import_feedback(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or Parquet: label, and decision_id or subject_id + at; optional observed_at."
        ),
    ],
    deployment: Annotated[
        str | None,
        typer.Option(help="Match only this deployment's decisions (recommended with subject_id)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Match and check every row, store nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Store labels from a file, matched to decisions by id, or by subject and time (the
    subject's latest decision at or before `at`). All rows are stored in one transaction;
    rows that match nothing or do not fit their decision are counted with reasons."""
    settings = Settings()
    pseudonymizer = Pseudonymizer.from_secret(settings.secret_key, settings.home / "secret.key")
    with open_registry() as registry:
        importer = FeedbackImporter(registry.database, registry, pseudonymizer, _now)
        summary = importer.run(
            file, actor=getpass.getuser(), deployment=deployment, dry_run=dry_run
        )
    if as_json:
        _print_json(summary.to_dict())
    else:
        _print_summary(summary)


def _print_summary(summary: ImportSummary) -> None:
    verb = "would store" if summary.dry_run else "stored"
    console.print(
        f"{summary.rows} row(s): {summary.matched} matched ({verb}), "
        f"{summary.unmatched} unmatched, {summary.invalid} invalid"
        + (" — dry run, nothing stored" if summary.dry_run else ""),
        soft_wrap=True,
    )
    for reason, count in summary.reasons.most_common():
        console.print(f"  {count:>6}  {reason}", highlight=False, soft_wrap=True)
    if summary.problems:
        shown = len(summary.problems)
        console.print(f"first {shown} problem row(s) (1 = first data row):")
        for problem in summary.problems:
            console.print(
                f"  row {problem.row}: {problem.kind}: {problem.reason}",
                highlight=False,
                soft_wrap=True,
            )


@app.command("list")
def list_feedback(
    deployment: Annotated[str, typer.Argument(help="The deployment whose labels to list.")],
    limit: Annotated[int, typer.Option(help="At most this many labels, newest first.")] = 50,
    decision: Annotated[
        str | None, typer.Option(help="Only this decision's labels (its history).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List a deployment's labels, newest observation first (the first one of a decision
    is the one the monitor uses)."""
    with open_registry() as registry:
        service = FeedbackService(registry.database, registry, _now)
        labels = service.list(deployment, limit=limit, decision_id=decision)
    if as_json:
        _print_json([f.to_dict() for f in labels])
        return
    if not labels:
        console.print(f"no feedback labels for deployment {deployment}")
        return
    # One whole line per label, nothing cut: decision ids are pasted into other commands.
    for f in labels:
        sampled = (
            "" if f.sampling_probability is None else f"  sampled p={f.sampling_probability:g}"
        )
        console.print(
            f"{f.created_at.isoformat(timespec='seconds')}  {f.decision_id}  "
            f"label={json.dumps(f.label)}  {f.source} by {f.actor or '?'}{sampled}",
            highlight=False,
            soft_wrap=True,
        )
