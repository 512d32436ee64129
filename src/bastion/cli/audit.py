"""`bastion audit …`: verify the hash chain of the audit log and read its events."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from bastion.cli.common import console, errors, open_database
from bastion.store.audit import AuditLog

app = typer.Typer(
    help="Verify and read the audit log of control-plane changes.", no_args_is_help=True
)


def _instant(value: str | None, option: str) -> datetime | None:
    """An ISO-8601 time; one without an offset is taken as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO-8601 time such as 2026-11-26T13:00:00Z, got {value!r}",
            param_hint=option,
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@app.command("verify")
def audit_verify() -> None:
    """Check the hash chain; name the first edited, inserted or deleted event (exit 2)."""
    with open_database() as database, database.transaction() as session:
        report = AuditLog.verify(session)
    if report.broken is not None:
        broken = report.broken
        errors.print(
            f"[bold red]audit chain broken[/] at event {broken.id} ({broken.kind}): "
            f"{broken.reason}; {report.events} event(s) before it are intact",
            highlight=False,
        )
        raise typer.Exit(2)
    console.print(f"audit chain intact: {report.events} events (head {report.head_hash})")


@app.command("list")
def audit_list(
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. model.stage_changed.")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only changes made by this actor.")] = None,
    target: Annotated[str | None, typer.Option(help="Only this target, e.g. credit:3.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only events at or after this ISO-8601 time (UTC if bare).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only events before this ISO-8601 time (UTC if bare).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many events.", min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List audit events, newest first."""
    start, end = _instant(since, "--since"), _instant(until, "--until")
    with open_database() as database, database.transaction() as session:
        events = AuditLog.list(
            session, action=action, actor=actor, target=target, since=start, until=end, limit=limit
        )
    if as_json:
        sys.stdout.write(json.dumps([event.as_dict() for event in events], indent=2) + "\n")
        return
    table = Table()
    for column in ("id", "at", "actor", "action", "target", "details"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(
            str(event.id),
            event.at.astimezone(UTC).isoformat(timespec="seconds"),
            event.actor,
            event.action,
            event.target,
            json.dumps(event.details, sort_keys=True),
        )
    console.print(table)
