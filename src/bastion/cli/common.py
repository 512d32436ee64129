"""What every CLI command module shares: consoles, opening the registry, reading files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from rich.console import Console

from bastion.errors import InvalidInput
from bastion.registry import ArtifactStore, Registry
from bastion.settings import Settings
from bastion.store import Database

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


@contextmanager
def open_database() -> Iterator[Database]:
    """This machine's database, with the schema brought up to date; disposed on exit."""
    database = Database(Settings().resolved_database_url)
    try:
        database.migrate()
        yield database
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
