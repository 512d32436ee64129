"""The cost-curve PNG and the self-contained HTML report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bastion.policy.calibration import CalibrationReport, calibrate
from bastion.policy.plots import write_report
from bastion.policy.tuning import Costs, TuningResult, tune

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tuned() -> tuple[TuningResult, CalibrationReport]:
    rng = np.random.default_rng(0)
    scores = rng.beta(2, 5, 600)
    labels = (rng.uniform(0, 1, scores.size) < scores).astype(int)
    result = tune(scores, labels, Costs(1, 5, 0.3), review_capacity=50, daily_volume=500)
    return result, calibrate(scores, labels, "isotonic")


def test_write_report_writes_a_png_and_a_page(
    tuned: tuple[TuningResult, CalibrationReport], tmp_path: Path
) -> None:
    result, calibration = tuned

    png, html = write_report(result, tmp_path / "out", deployment="credit", calibration=calibration)

    assert png.read_bytes().startswith(PNG_SIGNATURE)
    page = html.read_text(encoding="utf-8")
    assert "Threshold tuning: credit" in page
    assert f"decline <code>s ≥ {result.chosen.t_high:.6g}</code>" in page
    assert f"<td>{result.chosen.t_high:.4f}</td>" in page
    for alternative in result.alternatives:
        assert f"<td>{alternative.label}</td>" in page
    assert "Reliability before" in page
    assert "Reliability after" in page


def test_report_page_has_no_external_assets(
    tuned: tuple[TuningResult, CalibrationReport], tmp_path: Path
) -> None:
    _, html = write_report(tuned[0], tmp_path, deployment="credit")

    page = html.read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "Calibration" not in page


def test_importing_plots_does_not_import_matplotlib() -> None:
    code = "import sys, bastion.policy.plots; print('matplotlib' in sys.modules)"

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "False"
