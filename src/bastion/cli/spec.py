"""`bastion spec …`: validate bastion.yaml and print its schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.common import console
from bastion.spec import load_spec, spec_schema

app = typer.Typer(help="Check bastion.yaml and print its JSON Schema.", no_args_is_help=True)


@app.command("schema")
def spec_schema_command() -> None:
    """Print the JSON Schema of bastion.yaml (for editors and CI validation)."""
    sys.stdout.write(json.dumps(spec_schema(), indent=2) + "\n")


@app.command("check")
def spec_check(
    file: Annotated[Path, typer.Argument(help="The spec to validate.")] = Path("bastion.yaml"),
) -> None:
    """Validate a spec; errors name the field path and line."""
    spec = load_spec(file)
    names = ", ".join(spec.deployments) or "none"
    console.print(f"{file}: valid ({len(spec.deployments)} deployment(s): {names})")
