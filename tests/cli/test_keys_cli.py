"""`bastion keys …` and `bastion serve --insecure`, run in-process as a user would type them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bastion.cli import app, main
from bastion.cli.serve import is_loopback
from bastion.store import Database
from bastion.store.keys import hash_token
from bastion.store.tables import ApiKeyRow

TOKEN = re.compile(r"bst_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / ".bastion"))
    monkeypatch.setenv("BASTION_DATABASE_URL", database_url)
    monkeypatch.delenv("BASTION_REDIS_URL", raising=False)
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> Result:
    result = runner.invoke(app, ["keys", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def create(runner: CliRunner, *args: str) -> str:
    """The token `keys create` printed: alone, on stdout."""
    result = invoke(runner, "create", *args)
    token = result.stdout.strip()
    assert TOKEN.fullmatch(token), result.stdout
    return token


def test_create_prints_the_token_once_and_stores_its_hash(
    runner: CliRunner, database_url: str
) -> None:
    result = invoke(runner, "create", "--role", "predict", "--deployment", "credit")

    tokens = TOKEN.findall(result.output)
    assert len(tokens) == 1
    token = result.stdout.strip()
    assert "cannot be shown again" in result.stderr
    database = Database(database_url)
    try:
        with database.transaction() as session:
            (row,) = session.query(ApiKeyRow).all()
    finally:
        database.dispose()
    assert (row.role, row.deployment) == ("predict", "credit")
    assert row.secret_hash == hash_token(token)


def test_list_shows_keys_but_never_tokens_or_hashes(runner: CliRunner) -> None:
    token = create(runner, "--role", "operate", "--description", "on-call")

    listing = invoke(runner, "list").stdout

    key_id = token.split("_")[1]
    assert key_id in listing
    assert "operate" in listing
    assert "on-call" in listing
    assert token.split("_", 2)[2] not in listing
    assert hash_token(token) not in listing


def test_revoke_marks_the_key_revoked(runner: CliRunner) -> None:
    kept = create(runner, "--role", "predict").split("_")[1]
    gone = create(runner, "--role", "admin").split("_")[1]

    revoked = invoke(runner, "revoke", gone).stdout
    again = invoke(runner, "revoke", gone).stdout
    active = invoke(runner, "list", "--active").stdout

    assert f"revoked key {gone} (admin)" in revoked
    assert "already revoked" in again
    assert kept in active
    assert gone not in active


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "create", "--role", "root"], "role must be one of predict, review"),
        (["keys", "create", "--role", "admin", "--deployment", "x"], "not deployment-scoped"),
        (["keys", "revoke", "0000000000000000"], "no API key with id"),
    ],
)
def test_key_errors_are_one_clear_line(
    runner: CliRunner, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)

    assert exit_info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_keys_commands_have_help(runner: CliRunner) -> None:
    for command in ([], ["create"], ["list"], ["revoke"]):
        assert "Usage" in invoke(runner, *command, "--help").output


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_insecure_serve_refuses_a_host_that_is_not_loopback(
    runner: CliRunner, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--insecure", "--host", host])

    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--insecure serves without authentication" in err
    assert f"got --host {host}" in err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
