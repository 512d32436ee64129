"""Where Bastion runs the same test as Evidently 0.7.23, it picks it and scores it the same.

The expected scores come from Evidently itself (see `tests/monitor/evidently_cases.py`);
each case goes through the real path: profiles of both sides, raw values for numeric
columns, and :func:`compare` with Evidently's defaults (no correction across features).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bastion.monitor.drift import compare
from bastion.monitor.methods import DriftConfig
from bastion.monitor.profile import Schema, profile_frame
from tests.monitor.evidently_cases import EVIDENTLY, Case, cases


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.name)
def test_compare_matches_evidently_method_score_and_verdict(case: Case) -> None:
    schema = Schema({"x": case.kind})
    reference = pd.DataFrame({"x": case.reference})
    current = pd.DataFrame({"x": case.current})
    profile = profile_frame(reference, schema)
    window = profile_frame(current, schema, profile)
    raw = case.kind == "numeric"
    config = DriftConfig(method=case.method, correction="none")
    result = compare(
        profile,
        window,
        config,
        reference_values={"x": np.asarray(case.reference)} if raw else None,
        current_values={"x": np.asarray(case.current)} if raw else None,
    ).feature("x")

    method, score, drifted = EVIDENTLY[case.name]
    assert result.method == method
    assert result.score == pytest.approx(score, abs=1e-6, rel=1e-9)
    assert result.drifted is drifted
    assert result.exact
