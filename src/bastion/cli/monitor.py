"""`bastion monitor`: drift and performance of deployed models, alerts and reports.

The commands live in one module per concern (`monitor_windows`, `monitor_alerts`,
`monitor_report`); Typer merges their apps into this one group.
"""

from __future__ import annotations

import typer

from bastion.cli import monitor_alerts, monitor_report, monitor_windows

app = typer.Typer(
    help="Drift and performance windows, alerts, Prometheus/Grafana files and reports.",
    no_args_is_help=True,
)
app.add_typer(monitor_windows.app)
app.add_typer(monitor_alerts.app)
app.add_typer(monitor_report.app)
