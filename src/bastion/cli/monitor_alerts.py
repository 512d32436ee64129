"""`bastion monitor` commands: alert state and history, Prometheus rules, the Grafana dashboard.

``alerts`` reads this machine's database (the states the monitor job keeps);
``prometheus-rules`` and ``grafana-dashboard`` write files derived from the spec (its drift
thresholds and monitor interval) when ``--spec`` names one, else from the defaults.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bastion.cli.common import console, errors, open_database
from bastion.monitor.alerts import alert_history, alert_states
from bastion.monitor.grafana import grafana_dashboard
from bastion.monitor.prometheus import render_rules
from bastion.spec import Spec, load_spec

app = typer.Typer()

SpecOption = Annotated[
    Path | None,
    typer.Option("--spec", help="The deployment spec whose monitor sections to follow."),
]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write here instead of to stdout.")
]
_STATE_STYLE = {"ok": "green", "pending": "yellow", "firing": "bold red"}


def _spec(path: Path | None) -> Spec | None:
    return None if path is None else load_spec(path)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    errors.print(f"wrote {output}", highlight=False)


@app.command("prometheus-rules")
def prometheus_rules(
    spec: SpecOption = None,
    output: OutputOption = None,
    for_windows: Annotated[
        int,
        typer.Option(
            min=1, help="Windows a drift condition must hold before it fires (times the interval)."
        ),
    ] = 2,
) -> None:
    """Write Prometheus alerting rules for Bastion's serving, drift and performance metrics."""
    _write(render_rules(_spec(spec), for_windows=for_windows), output)


@app.command("grafana-dashboard")
def grafana(spec: SpecOption = None, output: OutputOption = None) -> None:
    """Write a Grafana dashboard (JSON) for the serving, drift and performance metrics."""
    _write(json.dumps(grafana_dashboard(_spec(spec)), indent=2) + "\n", output)


@app.command("alerts")
def alerts(
    deployment: Annotated[str, typer.Argument(help="The deployment whose alerts to show.")],
    history: Annotated[
        bool, typer.Option("--history", help="Also list the latest state changes.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="History entries.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show the state of a deployment's alerts (ok, pending, firing) and their history."""
    with open_database() as database:
        states = alert_states(database, deployment)
        events = alert_history(database, deployment, limit) if history else []
    if as_json:
        body: dict[str, Any] = {"deployment": deployment, "alerts": [s.to_dict() for s in states]}
        if history:
            body["history"] = [e.to_dict() for e in events]
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    if not states:
        console.print(f"no alerts evaluated yet for {deployment}", highlight=False)
    else:
        table = Table("alert", "state", "windows", "since", "value / error")
        for s in states:
            detail = s.details.get("error") or json.dumps(s.details.get("value", {}))
            style = _STATE_STYLE.get(s.state, "")
            table.add_row(
                s.name, f"[{style}]{s.state}[/]", str(s.consecutive), _when(s.since), detail
            )
        console.print(table)
    # One change per line, nothing cut, so history greps.
    for e in events:
        notified = f"notified {_when(e.notified_at)}" if e.notified_at else "not notified"
        console.print(
            f"{_when(e.at)}  {e.name}  {e.from_state} → {e.to_state}  "
            f"{e.details.get('severity', '')}  {notified} ({e.attempts} attempt{'' if e.attempts == 1 else 's'})",
            highlight=False,
            soft_wrap=True,
        )


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")
