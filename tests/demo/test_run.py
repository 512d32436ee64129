"""`bastion demo --no-wait` end to end: data, model, registry, spec, server, traffic."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console

from bastion.demo.run import run_demo
from bastion.spec import load_spec
from tests.support import free_port


def test_demo_serves_traffic_and_prints_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BASTION_DATABASE_URL", raising=False)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / ".bastion"))
    console = Console(record=True, width=120)

    run_demo(console, port=free_port(), n_requests=40, n_rows=2000, wait=False)

    output = console.export_text()
    assert "registered credit-risk:1 and moved it to production" in output
    assert "requests" in output
    assert "failed" in output
    assert "curl -s -X POST" in output
    tokens = re.findall(r"bst_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", output)
    assert len(tokens) == 1, "the demo key is printed exactly once"
    assert f"export BASTION_KEY={tokens[0]}" in output
    assert 'curl -s -H "Authorization: Bearer $BASTION_KEY"' in output
    spec = load_spec(tmp_path / "bastion.yaml").deployments["credit"]
    assert spec.model.stage == "production"
    assert spec.policy is not None
    assert spec.explain is not None
    assert [rule.name for rule in spec.policy.rules] == ["underage", "loan_above_income"]
    assert (tmp_path / ".bastion" / "bastion.db").exists()
    assert "An explained decline" in output
    assert re.search(r"^  R\d\d ", output, re.MULTILINE), "reason codes from the reason map"
    assert "A review task" in output
    assert "by rule underage (reason AGE_BELOW_18)" in output
    assert "/explanation" in output
