"""`bastion serve`, `bastion demo` and `bastion db upgrade`: running Bastion."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.common import console, open_registry
from bastion.spec import load_spec

db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations to the configured database."""
    with open_registry():
        console.print("database schema is up to date")


def serve(
    config: Annotated[Path, typer.Option(help="The deployment spec.")] = Path("bastion.yaml"),
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve every deployment of the spec over OIP v2 and the /v1 decision API."""
    import uvicorn

    from bastion.server.app import CONFIG_ENV

    spec = load_spec(config)
    with open_registry() as registry:
        for name, deployment in spec.deployments.items():
            version = registry.get(deployment.model)
            console.print(f"deployment [bold]{name}[/] serves {version.ref} ({version.framework})")
    os.environ[CONFIG_ENV] = str(config.resolve())
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal with the
    # handler found at start. A no-op handler lets that clean shutdown end with status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        "bastion.server.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


def demo(
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Exit after the demo traffic instead of serving.")
    ] = False,
    port: Annotated[int, typer.Option(help="TCP port for the demo server.")] = 8000,
    requests: Annotated[int, typer.Option(help="Demo requests to send.", min=1)] = 300,
    rows: Annotated[int, typer.Option(help="Rows of generated data.", min=1000)] = 20_000,
) -> None:
    """Generate credit data, train and register a model, serve it and send it traffic."""
    from bastion.demo.run import run_demo

    run_demo(console, port=port, n_requests=requests, n_rows=rows, wait=not no_wait)
