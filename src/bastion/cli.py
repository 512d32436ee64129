"""The `bastion` command line. Each command parses, calls the service layer and prints."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from bastion.errors import BastionError, InvalidInput
from bastion.registry import ArtifactStore, Registry, render_card
from bastion.runtime import LoadOptions
from bastion.settings import Settings
from bastion.spec import load_spec, spec_schema
from bastion.store import Database

app = typer.Typer(
    help="Bastion: serve trained models fast, guard their inputs, and keep every decision.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Register, inspect and stage model versions.", no_args_is_help=True)
spec_app = typer.Typer(help="Check bastion.yaml and print its JSON Schema.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(spec_app, name="spec")
app.add_typer(db_app, name="db")

console = Console()
errors = Console(stderr=True)


@contextmanager
def open_registry() -> Iterator[Registry]:
    """The registry for this machine's settings, with the schema brought up to date."""
    settings = Settings()
    database = Database(settings.resolved_database_url)
    try:
        database.migrate()
        yield Registry(database, ArtifactStore(settings.artifacts_dir))
    finally:
        database.dispose()


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a frame, or a clear error naming the file."""
    if not path.is_file():
        raise InvalidInput(f"no data file at {path}")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not a readable CSV file: {exc}") from exc


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{option} takes KEY=VALUE, got {value!r}")
        pairs[key] = item
    return pairs


def _metrics(values: list[str]) -> dict[str, float]:
    out = {}
    for key, value in _pairs(values, "--metric").items():
        try:
            out[key] = float(value)
        except ValueError:
            raise InvalidInput(f"--metric {key} must be a number, got {value!r}") from None
    return out


@models_app.command("register")
def models_register(
    name: Annotated[str, typer.Argument(help="Model name, e.g. credit-risk.")],
    path: Annotated[
        str, typer.Argument(help="Artifact file, or module:attr for a Python callable.")
    ],
    framework: Annotated[
        str,
        typer.Option(help="auto, sklearn (skops), lightgbm, xgboost, onnx, callable or pickle."),
    ] = "auto",
    sample: Annotated[
        Path | None,
        typer.Option(help="CSV/Parquet sample or training frame; infers the input signature."),
    ] = None,
    metric: Annotated[list[str], typer.Option(help="KEY=NUMBER, repeatable.")] = [],  # noqa: B006
    tag: Annotated[list[str], typer.Option(help="KEY=VALUE, repeatable.")] = [],  # noqa: B006
    trust_type: Annotated[
        list[str], typer.Option(help="A type the skops file may load, repeatable.")
    ] = [],  # noqa: B006
    trust_pickle: Annotated[
        bool, typer.Option(help="Allow a pickle/joblib file. Pickles can run arbitrary code.")
    ] = False,
    classes: Annotated[
        str | None, typer.Option(help="Comma-separated class labels, if the model lacks them.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Free text for the model card.")] = None,
) -> None:
    """Register an artifact as a new immutable, content-addressed model version."""
    options = LoadOptions(
        trusted_types=trust_type,
        trust_pickle=trust_pickle,
        classes=[c.strip() for c in classes.split(",")] if classes else None,
    )
    with open_registry() as registry:
        version = registry.register(
            name,
            path,
            framework=framework,
            sample=read_frame(sample) if sample is not None else None,
            options=options,
            metrics=_metrics(metric),
            tags=_pairs(tag, "--tag"),
            description=description,
        )
    console.print(
        f"registered [bold]{version.ref}[/] ({version.framework}, "
        f"{version.output_signature.task}, sha256 {version.digest[:12]}…)"
    )


@models_app.command("list")
def models_list(
    name: Annotated[str | None, typer.Argument(help="Only versions of this model.")] = None,
) -> None:
    """List registered model versions with their stage."""
    table = Table("model", "version", "stage", "framework", "task", "created", "sha256")
    with open_registry() as registry:
        versions = registry.versions(name)
    for version in versions:
        table.add_row(
            version.name,
            str(version.version),
            version.stage,
            version.framework,
            version.output_signature.task,
            version.created_at.strftime("%Y-%m-%d %H:%M"),
            version.digest[:12],
        )
    console.print(table)


@models_app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION or NAME@STAGE.")],
) -> None:
    """Print everything stored about one version, as JSON."""
    with open_registry() as registry:
        version = registry.get(ref)
    console.print_json(json.dumps(version.summary()))


@models_app.command("stage")
def models_stage(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION to move.")],
    stage: Annotated[str, typer.Argument(help="none, staging, production or archived.")],
) -> None:
    """Move a version to a stage; the previous production version is archived."""
    with open_registry() as registry:
        version = registry.set_stage(ref, stage)
    console.print(f"{version.ref} is now [bold]{version.stage}[/]")


@models_app.command("history")
def models_history(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Show every stage transition of a model."""
    table = Table("when", "version", "from", "to", "by")
    with open_registry() as registry:
        history = registry.stage_history(name)
    for move in history:
        table.add_row(
            move.at.isoformat(timespec="seconds"),
            str(move.version),
            move.from_stage,
            move.to_stage,
            move.actor or "",
        )
    console.print(table)


@models_app.command("card")
def models_card(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION or NAME@STAGE.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write Markdown here.")
    ] = None,
) -> None:
    """Render the model card (Markdown) of a version from what the registry stores."""
    with open_registry() as registry:
        version = registry.get(ref)
        card = render_card(version, registry.stage_history(version.name))
    if output is not None:
        output.write_text(card, encoding="utf-8")
        console.print(f"wrote {output}")
    elif sys.stdout.isatty():
        console.print(Markdown(card))
    else:
        sys.stdout.write(card)


@spec_app.command("schema")
def spec_schema_command() -> None:
    """Print the JSON Schema of bastion.yaml (for editors and CI validation)."""
    sys.stdout.write(json.dumps(spec_schema(), indent=2) + "\n")


@spec_app.command("check")
def spec_check(
    file: Annotated[Path, typer.Argument(help="The spec to validate.")] = Path("bastion.yaml"),
) -> None:
    """Validate a spec; errors name the field path and line."""
    spec = load_spec(file)
    names = ", ".join(spec.deployments) or "none"
    console.print(f"{file}: valid ({len(spec.deployments)} deployment(s): {names})")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations to the configured database."""
    with open_registry():
        console.print("database schema is up to date")


@app.command("serve")
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


@app.command("demo")
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


def main(argv: list[str] | None = None) -> Any:
    """Entry point: a `BastionError` becomes one readable line and exit status 2."""
    try:
        return app(argv, standalone_mode=True)
    except BastionError as exc:
        errors.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        for error in exc.errors:
            errors.print(f"  {error.field}: {error.message}", highlight=False)
        raise SystemExit(2) from None
