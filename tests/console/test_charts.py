"""The contribution chart of the task page, computed from a stored explanation."""

from __future__ import annotations

import math

from bastion.console.charts import MAX_BARS, contribution_chart


def test_bars_are_sorted_by_magnitude_and_scaled_to_the_widest() -> None:
    explanation = {"method": "tree_shap", "contributions": {"a": 0.5, "b": -2.0, "c": 1.0}}

    chart = contribution_chart(explanation, {"a": 3, "b": "x"})

    assert chart is not None
    assert [(b.field, b.share, b.increases, b.value) for b in chart.bars] == [
        ("b", 1.0, False, "x"),
        ("c", 0.5, True, None),
        ("a", 0.25, True, 3),
    ]


def test_fields_beyond_the_limit_fold_into_one_bar_that_keeps_their_sum() -> None:
    contributions = {f"f{i:02d}": float(i + 1) for i in range(MAX_BARS + 3)}

    chart = contribution_chart({"contributions": contributions}, None)

    assert chart is not None
    assert len(chart.bars) == MAX_BARS
    assert chart.folded == 4
    assert chart.bars[-1].field == "4 other fields"
    assert math.isclose(chart.bars[-1].contribution, 1 + 2 + 3 + 4)
    assert math.isclose(sum(b.contribution for b in chart.bars), sum(contributions.values()))


def test_non_numbers_are_left_out_and_nothing_to_draw_is_none() -> None:
    chart = contribution_chart({"contributions": {"a": math.nan, "b": "high", "c": 0.2}}, {})

    assert chart is not None
    assert [b.field for b in chart.bars] == ["c"]
    assert contribution_chart(None, {}) is None
    assert contribution_chart({"contributions": {}}, {}) is None
    assert contribution_chart({"contributions": {"a": math.inf}}, {}) is None


def test_all_zero_contributions_draw_empty_bars_without_dividing_by_zero() -> None:
    chart = contribution_chart({"contributions": {"a": 0.0, "b": 0.0}}, {})

    assert chart is not None
    assert [b.share for b in chart.bars] == [0.0, 0.0]
