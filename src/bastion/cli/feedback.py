"""`bastion feedback`: late labels for decisions (import from CSV or Parquet)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Late labels for decisions: import, list.", no_args_is_help=True)
