"""`bastion review …`: work the human review queue from a terminal, on this machine's database.

The same queue as ``/v1/review`` and the console: a claim here is a lease other reviewers
see at once. The reviewer is named by ``--reviewer`` (default: the OS user); verdicts and
the lease length come from the deployment's ``policy.review`` in the spec (``--spec``).
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bastion.cli.common import console, errors, open_database
from bastion.errors import InvalidInput
from bastion.monitor.metrics import ServingMetrics
from bastion.review import ReviewQueue, TaskSummary
from bastion.spec import Spec, load_spec

app = typer.Typer(
    help="Work the human review queue: list, show, claim, resolve, release, escalate, stats.",
    no_args_is_help=True,
)

SpecOption = Annotated[
    Path,
    typer.Option("--spec", help="The deployment spec: verdicts and lease length per deployment."),
]
ReviewerOption = Annotated[
    str | None, typer.Option(help="Who is reviewing (default: the OS user).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DEFAULT_SPEC = Path("bastion.yaml")


@contextmanager
def open_queue(spec_path: Path, *, need_spec: bool) -> Iterator[ReviewQueue]:
    """The queue over this machine's database. Listing works without a spec; claiming and
    resolving need it (lease length, verdicts), so a missing spec is an error there."""
    spec = Spec()
    if spec_path.is_file():
        spec = load_spec(spec_path)
    elif need_spec:
        raise InvalidInput(
            f"no spec at {spec_path}: pass --spec (the lease length and the verdicts come from "
            "each deployment's policy.review)"
        )
    with open_database() as database:
        yield ReviewQueue(database, spec, ServingMetrics(), lambda: datetime.now(UTC))


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _line(task: TaskSummary) -> str:
    """One task per line, nothing cut: ids are pasted into other commands, and lines grep."""
    now = task.created_at + timedelta(seconds=task.age_seconds)
    if task.status == "resolved":
        due = f"resolved: {task.verdict} by {task.resolved_by}"
    elif task.overdue:
        due = f"[bold red]OVERDUE[/] by {_age((now - task.due_at).total_seconds())}"
    else:
        due = f"due in {_age((task.due_at - now).total_seconds())}"
    level = f" (level {task.escalation_level})" if task.escalation_level else ""
    held = f"  claimed by {task.claimed_by}" if task.claimed_by else ""
    return (
        f"[bold]{task.task_id}[/]  {task.deployment}  {task.status}{level}  "
        f"priority {task.priority:g}  {task.reason}  age {_age(task.age_seconds)}  {due}{held}"
    )


@app.command("list")
def review_list(
    deployment: Annotated[str | None, typer.Option(help="Only this deployment's tasks.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="open, claimed, escalated or resolved (default: all unresolved)."),
    ] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only tasks past due.")] = False,
    limit: Annotated[int, typer.Option(help="Most tasks to show (1 to 500).")] = 50,
    as_json: JsonOption = False,
    spec: SpecOption = DEFAULT_SPEC,
) -> None:
    """List the queue, most urgent first: priority, age, due time and who holds each task."""
    with open_queue(spec, need_spec=False) as queue:
        tasks = queue.list(deployment, status, limit, overdue)
    if as_json:
        _print_json([task.to_dict() for task in tasks])
    elif not tasks:
        errors.print("no tasks", highlight=False)
    else:
        for task in tasks:
            console.print(_line(task), soft_wrap=True, highlight=False)


@app.command("show")
def review_show(
    task_id: Annotated[str, typer.Argument(help="The task id `review list` shows.")],
    spec: SpecOption = DEFAULT_SPEC,
) -> None:
    """Print one task as JSON: inputs, score, outcome, rule hits, explanation, verdicts.

    Inputs are shown as stored (redacted); feedback already recorded is included.
    """
    with open_queue(spec, need_spec=False) as queue:
        view = queue.get(task_id)
    _print_json(view.to_dict())


@app.command("claim")
def review_claim(
    task_id: Annotated[
        str | None, typer.Argument(help="A task to claim (default: the most urgent one).")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option(help="Claim the most urgent task of this deployment.")
    ] = None,
    reviewer: ReviewerOption = None,
    spec: SpecOption = DEFAULT_SPEC,
) -> None:
    """Claim a task for the lease time and print it as JSON (exit 1 if none is waiting)."""
    name = reviewer or getpass.getuser()
    with open_queue(spec, need_spec=True) as queue:
        view = queue.claim(task_id, name) if task_id else queue.claim_next(name, deployment)
    if view is None:
        errors.print("no review task is waiting", highlight=False)
        raise typer.Exit(1)
    lease = view.task.lease_expires_at
    until = lease.astimezone(UTC).strftime("%H:%M:%S UTC") if lease else "?"
    errors.print(
        f"claimed task {view.task_id} as {name} until {until}", highlight=False, soft_wrap=True
    )
    _print_json(view.to_dict())


@app.command("resolve")
def review_resolve(
    task_id: Annotated[str, typer.Argument(help="A task you hold.")],
    verdict: Annotated[str, typer.Argument(help="One of the deployment's verdicts.")],
    notes: Annotated[str | None, typer.Option(help="Why; kept with the task.")] = None,
    reviewer: ReviewerOption = None,
    spec: SpecOption = DEFAULT_SPEC,
) -> None:
    """Settle a task you hold; the verdict's label is recorded as feedback (source review)."""
    with open_queue(spec, need_spec=True) as queue:
        view = queue.resolve(task_id, reviewer or getpass.getuser(), verdict, notes)
    label = view.feedback[-1].label if view.feedback else None
    console.print(
        f"resolved task {view.task_id}: {verdict} (feedback label {label!r})",
        highlight=False,
        soft_wrap=True,
    )


@app.command("release")
def review_release(
    task_id: Annotated[str, typer.Argument(help="A task you hold.")],
    reviewer: ReviewerOption = None,
    spec: SpecOption = DEFAULT_SPEC,
) -> None:
    """Give a task you hold back to the queue."""
    with open_queue(spec, need_spec=False) as queue:
        view = queue.release(task_id, reviewer or getpass.getuser())
    console.print(
        f"released task {view.task_id}; it is {view.status} again", highlight=False, soft_wrap=True
    )


@app.command("escalate")
def review_escalate(
    task_id: Annotated[str, typer.Argument(help="A task you hold.")],
    notes: Annotated[str | None, typer.Option(help="What the senior reviewer should know.")] = None,
    reviewer: ReviewerOption = None,
    spec: SpecOption = DEFAULT_SPEC,
) -> None:
    """Hand a task you hold to a senior reviewer: one level up, back in the queue."""
    with open_queue(spec, need_spec=False) as queue:
        view = queue.escalate(task_id, reviewer or getpass.getuser(), notes)
    console.print(
        f"escalated task {view.task_id} to level {view.task.escalation_level}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("stats")
def review_stats(
    deployment: Annotated[str | None, typer.Option(help="Only this deployment.")] = None,
    as_json: JsonOption = False,
    spec: SpecOption = DEFAULT_SPEC,
) -> None:
    """Queue depth, oldest unresolved task, overdue tasks and counts by status."""
    with open_queue(spec, need_spec=False) as queue:
        per_deployment = queue.stats_by_deployment(deployment)
    rows = dict(sorted(per_deployment.items()))
    if as_json:
        _print_json({name: stats.to_dict() for name, stats in rows.items()})
        return
    table = Table(
        "deployment", "depth", "oldest", "overdue", "open", "claimed", "escalated", "resolved"
    )
    for name, stats in rows.items():
        table.add_row(
            name,
            str(stats.depth),
            _age(stats.oldest_age_seconds),
            str(stats.overdue),
            *(str(stats.by_status[s]) for s in ("open", "claimed", "escalated", "resolved")),
        )
    console.print(table)
