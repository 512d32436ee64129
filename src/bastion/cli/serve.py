"""`bastion serve`, `bastion demo` and `bastion db upgrade`: running Bastion."""

from __future__ import annotations

import copy
import getpass
import ipaddress
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.cli.common import console, errors, open_registry
from bastion.errors import InvalidInput
from bastion.serving.applied import record_applied_spec
from bastion.settings import Settings
from bastion.spec import load_spec

db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations to the configured database."""
    with open_registry():
        console.print("database schema is up to date")


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address: 127.0.0.0/8, ::1 or localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _log_config(log_level: str) -> dict[str, Any]:
    """uvicorn's logging, plus Bastion's own loggers (the access log among them)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["bastion"] = {
        "handlers": ["default"],
        "level": log_level.upper(),
        "propagate": False,
    }
    return config


def serve(
    config: Annotated[Path, typer.Option(help="The deployment spec.")] = Path("bastion.yaml"),
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Serve WITHOUT authentication, for development. Loopback hosts only.",
        ),
    ] = False,
) -> None:
    """Serve every deployment of the spec over OIP v2 and the /v1 decision API.

    Every endpoint but the health checks needs an API key (`bastion keys create`).
    """
    import uvicorn

    from bastion.server.app import CONFIG_ENV, INSECURE_ENV
    from bastion.server.ratelimit import check_backends

    if insecure and not is_loopback(host):
        raise InvalidInput(
            "--insecure serves without authentication, so it binds to loopback only "
            f"(127.0.0.0/8, ::1 or localhost); got --host {host}"
        )
    spec = load_spec(config)
    check_backends(spec, Settings().redis_url)
    with open_registry() as registry:
        for name, deployment in spec.deployments.items():
            version = registry.get(deployment.model)
            console.print(f"deployment [bold]{name}[/] serves {version.ref} ({version.framework})")
        with registry.database.transaction() as session:
            record_applied_spec(
                session,
                spec,
                f"spec:{config.resolve()}",
                actor=getpass.getuser(),
                at=datetime.now(UTC),
            )
    os.environ[CONFIG_ENV] = str(config.resolve())
    os.environ[INSECURE_ENV] = "1" if insecure else "0"
    if insecure:
        errors.print(
            f"[bold red]WARNING: --insecure: NO AUTHENTICATION.[/] Anyone who can reach "
            f"{host}:{port} may call every endpoint. For development only.",
            highlight=False,
        )
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
        log_config=_log_config(log_level),
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
