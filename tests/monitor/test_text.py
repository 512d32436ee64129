"""Text descriptors: tokens, vocabulary, out-of-vocabulary rate, non-ASCII share, script."""

from __future__ import annotations

import math

import pytest

from bastion.monitor.text import build_vocabulary, describe, dominant_script, script_of


def test_vocabulary_keeps_the_most_frequent_tokens() -> None:
    assert build_vocabulary(["a b b", "c b a"], size=2) == frozenset({"a", "b"})


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("pays on time", "latin"),
        ("Платит вовремя", "cyrillic"),
        ("يدفع في الوقت", "arabic"),
        ("按时付款", "cjk"),
        ("1234 !!", "none"),
        ("ok, спасибо большое", "cyrillic"),
    ],
)
def test_dominant_script_of_text(text: str, script: str) -> None:
    assert dominant_script(text) == script


def test_script_of_non_letters_is_none() -> None:
    assert script_of("7") is None
    assert script_of("é") == "latin"


def test_describe_measures_each_row_and_leaves_missing_rows_missing() -> None:
    described = describe(["pays late", "zzz", "", None, "café"], frozenset({"pays", "late"}))
    assert list(described.length[:3]) == [9.0, 3.0, 0.0]
    assert list(described.oov_rate[:3]) == [0.0, 1.0, 0.0]
    assert described.non_ascii[4] == pytest.approx(0.25)
    assert math.isnan(described.length[3])
    assert described.script == ["latin", "latin", "none", None, "latin"]
