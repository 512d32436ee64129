"""API keys for tests that talk to a secured app or server."""

from __future__ import annotations

from bastion.store import Database
from bastion.store.keys import KeyService
from bastion.store.notify import NullFeed


def create_key(database_url: str, role: str = "admin", deployment: str | None = None) -> str:
    """A new key's token, stored in the (already migrated) database at `database_url`."""
    database = Database(database_url)
    try:
        service = KeyService(database, NullFeed())
        return service.create(role, deployment=deployment, actor="tests").token
    finally:
        database.dispose()


def bearer(token: str) -> dict[str, str]:
    """The request headers that present `token`."""
    return {"Authorization": f"Bearer {token}"}
