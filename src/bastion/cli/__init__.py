"""The `bastion` command line. Each command parses, calls the service layer and prints.

Commands live in one module per noun (`models`, `spec`, `serve`, …); this module assembles
them and turns `BastionError` into one readable line.
"""

from __future__ import annotations

from typing import Any

import typer

from bastion.cli import (
    audit,
    explain,
    feedback,
    keys,
    models,
    monitor,
    policy,
    privacy,
    review,
    serve,
    spec,
)
from bastion.cli.common import errors
from bastion.errors import BastionError

app = typer.Typer(
    help="Bastion: serve trained models fast, guard their inputs, and keep every decision.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(models.app, name="models")
app.add_typer(spec.app, name="spec")
app.add_typer(serve.db_app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(privacy.app, name="privacy")
app.add_typer(policy.app, name="policy")
app.add_typer(review.app, name="review")
app.add_typer(explain.app, name="explain")
app.add_typer(feedback.app, name="feedback")
app.add_typer(monitor.app, name="monitor")
app.command("serve")(serve.serve)
app.command("demo")(serve.demo)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: a `BastionError` becomes one readable line and exit status 2."""
    try:
        return app(argv, standalone_mode=True)
    except BastionError as exc:
        errors.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        for error in exc.errors:
            errors.print(f"  {error.field}: {error.message}", highlight=False)
        raise SystemExit(2) from None
