"""Every public module imports on its own in a fresh interpreter.

The test suite imports modules in one order; `bastion serve --workers N` starts each worker
with `bastion.server.app` alone, and a circular import that the suite's order hides
would stop every worker from starting.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = [
    "bastion.spec",
    "bastion.server.app",
    "bastion.cli",
    "bastion.registry",
    "bastion.review",
    "bastion.explain",
    "bastion.policy",
    "bastion.monitor.drift",
    "bastion.console",
]


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr.strip().splitlines()[-1:]
