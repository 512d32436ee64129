"""`bastion monitor` commands: Monitoring reports for stakeholders (HTML) and machines (JSON)."""

from __future__ import annotations

import typer

app = typer.Typer()
