"""`bastion serve` refuses, before binding, a spec it cannot honour."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.cli import main


def test_serve_refuses_redis_rate_limits_without_a_redis_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / ".bastion"))
    monkeypatch.delenv("BASTION_REDIS_URL", raising=False)
    spec = tmp_path / "bastion.yaml"
    spec.write_text(
        "deployments:\n  credit:\n    model: credit:1\n"
        "    limits: {requests_per_second: 10, backend: redis}\n"
    )

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--config", str(spec)])

    assert exit_info.value.code != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "deployments.credit.limits.backend is redis, which needs BASTION_REDIS_URL" in err
