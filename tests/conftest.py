"""Shared fixtures: every storage test runs on SQLite and on the real PostgreSQL server.

PostgreSQL isolation: each test gets a fresh schema in the `test` database (dropped after),
selected through the connection's search_path. Set BASTION_TEST_POSTGRES_URL to point
elsewhere. Redis (`redis_url`) comes from BASTION_TEST_REDIS_URL, 127.0.0.1:6379 by default.
Under CI=true an unreachable PostgreSQL or Redis fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis

from bastion.registry import ArtifactStore, Registry
from bastion.store import Database

POSTGRES_URL = os.environ.get(
    "BASTION_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _postgres_conninfo() -> str:
    return POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")


def postgres_available() -> bool:
    try:
        with psycopg.connect(_postgres_conninfo(), connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _require_postgres() -> None:
    if postgres_available():
        return
    message = f"PostgreSQL is not answering at {POSTGRES_URL}"
    if IN_CI:
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(message)


def redis_available() -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture
def redis_url() -> str:
    """The URL of the real Redis server; skipped (failed under CI) when it does not answer."""
    if not redis_available():
        message = f"Redis is not answering at {REDIS_URL}"
        if IN_CI:
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL schema that is dropped after the test."""
    _require_postgres()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_postgres_conninfo(), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    options = quote(f"-csearch_path={schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options={options}"
    finally:
        with psycopg.connect(_postgres_conninfo(), autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a SQLite file and on a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bastion.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database on both backends."""
    db = Database(database_url)
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def registry(database: Database, tmp_path: Path) -> Registry:
    return Registry(database, ArtifactStore(tmp_path / "artifacts"))
