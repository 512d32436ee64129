"""`bastion models …`: register, inspect and stage model versions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table

from bastion.cli.common import console, open_registry, read_frame
from bastion.errors import InvalidInput
from bastion.registry import render_card
from bastion.runtime import LoadOptions

app = typer.Typer(help="Register, inspect and stage model versions.", no_args_is_help=True)


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


@app.command("register")
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
    label_column: Annotated[
        str | None,
        typer.Option(
            help="The sample's column of true labels (left out of the signature); kept with "
            "the drift reference so performance can be estimated before labels arrive."
        ),
    ] = None,
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
            label_column=label_column,
        )
    console.print(
        f"registered [bold]{version.ref}[/] ({version.framework}, "
        f"{version.output_signature.task}, sha256 {version.digest[:12]}…)"
    )


@app.command("list")
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


@app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION or NAME@STAGE.")],
) -> None:
    """Print everything stored about one version, as JSON."""
    with open_registry() as registry:
        version = registry.get(ref)
    console.print_json(json.dumps(version.summary()))


@app.command("stage")
def models_stage(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION to move.")],
    stage: Annotated[str, typer.Argument(help="none, staging, production or archived.")],
) -> None:
    """Move a version to a stage; the previous production version is archived."""
    with open_registry() as registry:
        version = registry.set_stage(ref, stage)
    console.print(f"{version.ref} is now [bold]{version.stage}[/]")


@app.command("history")
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


@app.command("card")
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
