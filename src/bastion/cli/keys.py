"""`bastion keys …`: create, list and revoke API keys."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Column, Table

from bastion.cli.common import console, errors, open_database
from bastion.settings import Settings
from bastion.store.keys import KeyService
from bastion.store.notify import open_change_feed

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@contextmanager
def open_keys() -> Iterator[KeyService]:
    """The key service for this machine's settings, announcing changes to the replicas."""
    settings = Settings()
    feed = open_change_feed(settings.resolved_database_url, settings.redis_url)
    try:
        with open_database() as database:
            yield KeyService(database, feed)
    finally:
        feed.close()


@app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="predict, review, operate or admin.")],
    deployment: Annotated[
        str | None, typer.Option(help="Bind a predict key to this one deployment.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Who or what uses the key.")] = None,
) -> None:
    """Create a key and print its token, once: only its SHA-256 is stored.

    The token alone goes to stdout (TOKEN=$(bastion keys create --role predict)).
    """
    with open_keys() as keys:
        created = keys.create(
            role, deployment=deployment, description=description, actor=getpass.getuser()
        )
    bound = f" for deployment {deployment}" if deployment else ""
    errors.print(f"created {role} key [bold]{created.key.id}[/]{bound}", highlight=False)
    errors.print("store this token now; it cannot be shown again:", highlight=False)
    console.print(created.token, markup=False, highlight=False, soft_wrap=True)


@app.command("list")
def keys_list(
    active: Annotated[bool, typer.Option("--active", help="Leave revoked keys out.")] = False,
) -> None:
    """List keys: id, role, deployment and dates. Never tokens or hashes."""
    key_id = Column("id", no_wrap=True, min_width=16)  # ids are copied into `revoke`: never cut
    table = Table(key_id, "role", "deployment", "description", "created", "by", "revoked")
    with open_keys() as keys:
        listed = keys.list(include_revoked=not active)
    for key in listed:
        table.add_row(
            key.id,
            key.role,
            key.deployment or "(all)",
            key.description or "",
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.created_by or "",
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "",
        )
    console.print(table)


@app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id `keys list` shows.")],
) -> None:
    """Revoke a key; every replica refuses it within a second."""
    with open_keys() as keys:
        key, revoked = keys.revoke(key_id, actor=getpass.getuser())
    if revoked:
        console.print(f"revoked key [bold]{key.id}[/] ({key.role})")
    else:
        when = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "?"
        console.print(f"key [bold]{key.id}[/] was already revoked at {when}")
