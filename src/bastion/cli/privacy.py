"""`bastion privacy …`: export or erase everything stored about one data subject."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer

from bastion.cli.common import console, open_database
from bastion.guard.pseudonym import Pseudonymizer
from bastion.serving.subjects import SubjectService
from bastion.settings import Settings

app = typer.Typer(
    help="Export or erase a data subject's records (decisions, spool).", no_args_is_help=True
)


@contextmanager
def open_subjects() -> Iterator[SubjectService]:
    settings = Settings()
    pseudonymizer = Pseudonymizer.from_secret(settings.secret_key, settings.home / "secret.key")
    with open_database() as database:
        yield SubjectService(
            database, pseudonymizer, settings.spool_dir, clock=lambda: datetime.now(UTC)
        )


@app.command("export")
def privacy_export(
    subject_id: Annotated[str, typer.Argument(help="The subject id callers sent.")],
) -> None:
    """Print, as JSON, everything stored on one subject (under every known key): decisions,
    review tasks and feedback labels."""
    with open_subjects() as subjects:
        exported = subjects.export(subject_id)
    sys.stdout.write(json.dumps(exported, indent=2, default=str) + "\n")


@app.command("erase")
def privacy_erase(
    subject_id: Annotated[str, typer.Argument(help="The subject id callers sent.")],
) -> None:
    """Delete every record of one subject (decisions, review tasks, feedback) from the
    database and the spool; audited."""
    with open_subjects() as subjects:
        report = subjects.erase(subject_id, actor=getpass.getuser())
    console.print(
        f"erased subject {report.subject_key[:20]}…: {report.decisions} decision(s), "
        f"{report.review_tasks} review task(s), {report.feedback} feedback label(s), "
        f"{report.spooled} spooled record(s)"
    )
