"""`bastion monitor` commands: Reference profiles, drift windows and the background monitor."""

from __future__ import annotations

import typer

app = typer.Typer()
