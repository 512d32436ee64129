"""`bastion explain …`: what drives a deployment's decisions, from their stored explanations."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bastion.cli.common import console, errors, open_database
from bastion.errors import InvalidInput
from bastion.explain.importance import global_importance
from bastion.spec import load_spec

app = typer.Typer(help="Explanations of decisions: global importance.", no_args_is_help=True)


@app.command("importance")
def explain_importance(
    deployment: Annotated[str, typer.Argument(help="The deployment, as named in the spec.")],
    spec: Annotated[
        Path | None, typer.Option(help="Check that the spec declares the deployment.")
    ] = None,
    limit: Annotated[
        int, typer.Option(help="Use the newest this many explained decisions.", min=1)
    ] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Mean |contribution|, mean signed contribution and top-reason share per field."""
    if spec is not None:
        declared = load_spec(spec).deployments
        if deployment not in declared:
            raise InvalidInput(
                f"{spec} declares no deployment {deployment!r}; it has {sorted(declared)}"
            )
    with open_database() as database, database.transaction() as session:
        report = global_importance(session, deployment, limit)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    if report.explained == 0:
        errors.print(
            f"no stored explanations for deployment {deployment!r}: decisions are explained "
            "when the spec's explain.mode is all or adverse (and adverse decisions occur), "
            "or after GET /v1/decisions/{id}/explanation"
        )
        raise typer.Exit(1)
    table = Table(title=f"{deployment}: {report.explained} explained decisions")
    for column in ("field", "mean |contribution|", "mean contribution", "top reason share"):
        table.add_column(column, justify="left" if column == "field" else "right")
    for item in report.fields:
        table.add_row(
            item.field,
            f"{item.mean_abs:.4f}",
            f"{item.mean:+.4f}",
            f"{item.top_reason_share:.1%}" if report.with_reasons else "-",
        )
    console.print(table)
    spaces = ", ".join(f"{k} ({v})" for k, v in report.outputs.items())
    methods = ", ".join(f"{k} ({v})" for k, v in report.methods.items())
    console.print(f"methods: {methods}; output spaces: {spaces}")
    console.print(f"{report.with_reasons} decisions carry reason codes (adverse outcomes)")
    if len(report.outputs) > 1:
        errors.print(
            "[yellow]warning:[/] contributions in different output spaces are averaged "
            "together; compare versions separately"
        )
