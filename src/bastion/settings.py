"""Process-level settings from the environment (`BASTION_` prefix).

Settings are read once where a process starts (CLI command, server factory, test fixture)
and passed down through constructors; nothing imports a global settings object.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Bastion keeps its state and how it reaches shared services."""

    model_config = SettingsConfigDict(env_prefix="BASTION_", extra="ignore")

    home: Path = Field(
        default=Path(".bastion"),
        description="Folder for the default SQLite database, artifacts and the decision spool.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to SQLite at <home>/bastion.db. "
        "Use postgresql+psycopg://... for replicas that share state.",
    )
    redis_url: str | None = Field(
        default=None,
        repr=False,
        description="Redis URL (redis://host:6379/0) the replicas share. When set, change "
        "notifications (such as a revoked API key) travel over Redis pub/sub, preferred to "
        "PostgreSQL LISTEN/NOTIFY. Hidden in repr: it may carry a password.",
    )
    secret_key: str | None = Field(
        default=None,
        repr=False,
        description="Key for pseudonymizing subject ids (HMAC-SHA256). If unset, a random key "
        "is created once in <home>/secret.key.",
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'bastion.db'}"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"
