"""`bastion monitor` commands: Alerting: Prometheus rules and the Grafana dashboard."""

from __future__ import annotations

import typer

app = typer.Typer()
