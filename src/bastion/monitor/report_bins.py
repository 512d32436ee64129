"""Reference-vs-window distributions for the report, read from the profiles' own bins.

A numeric feature shows one bar pair per reference-decile bin (so the reference is flat at
about 10 % a bar and a shift shows as a slope), plus bars for values below or above the
reference's range, missing values and infinities when either side has any; a numeric
feature with at most 20 distinct values (both profiles keep exact counts then) shows one
bar pair per value instead, values the reference never had flagged. A categorical
feature shows one bar pair per category, the reference's most frequent first, then values
the reference never had (flagged), then missing. Shares are of all rows, so each side's
bars sum to 1. No raw data is needed: windows are compared from stored profiles.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

from bastion.monitor.sketches import CategoricalSketch, NumericSketch

#: the most bars one distribution shows; the rarest categories are summed into one bar
MAX_BARS = 14
DASH, MINUS = "\u2013", "\u2212"


@dataclass(frozen=True)
class Distribution:
    """Bars of one feature: label, reference share, window share, flagged (never seen)."""

    name: str
    kind: str
    labels: list[str]
    reference: list[float]
    current: list[float]
    flagged: list[bool]
    reference_rows: int
    current_rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Distribution:
        return cls(**data)


def number(value: float) -> str:
    """A short label for a bin edge: 3 significant digits, k/M for large values."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def distribution(
    name: str,
    reference: NumericSketch | CategoricalSketch,
    current: NumericSketch | CategoricalSketch,
) -> Distribution:
    """The bars of `current` against `reference` (both numeric or both categorical)."""
    if isinstance(reference, NumericSketch) and isinstance(current, NumericSketch):
        return _numeric(name, reference, current)
    if isinstance(reference, CategoricalSketch) and isinstance(current, CategoricalSketch):
        return _categorical(name, reference, current)
    raise ValueError(f"feature {name!r} has different kinds in the reference and the window")


def _shares(counts: list[int], rows: int) -> list[float]:
    return [c / rows if rows else 0.0 for c in counts]


def _numeric(name: str, ref: NumericSketch, cur: NumericSketch) -> Distribution:
    edges = ref.edges
    bars: list[tuple[str, int, int, bool]] = []
    if ref.values and cur.values is not None:
        # few distinct values (a flag, a count): one bar per value says more than deciles
        for value in sorted(ref.values.keys() | cur.values.keys()):
            seen = value in ref.values
            counts = ref.values.get(value, 0), cur.values.get(value, 0)
            bars.append((f"{value:g}", *counts, not seen))
    elif len(edges) >= 2:
        inner = [
            f"{number(a)}{DASH}{number(b)}" if a != b else number(a)
            for a, b in itertools.pairwise(edges)
        ]
        bars.append((f"< {number(edges[0])}", ref.counts[0], cur.counts[0], True))
        for i, label in enumerate(inner, start=1):
            bars.append((label, ref.counts[i], cur.counts[i], False))
        bars.append((f"> {number(edges[-1])}", ref.counts[-1], cur.counts[-1], True))
    else:  # a reference without values has one catch-all bin
        bars.append(("values", sum(ref.counts), sum(cur.counts), False))
    bars += [
        ("missing", ref.missing, cur.missing, False),
        (f"{MINUS}inf", ref.neg_inf, cur.neg_inf, True),
        ("+inf", ref.pos_inf, cur.pos_inf, True),
    ]
    # the out-of-range, missing and infinite bars only when either side has some
    kept = [b for b in bars if b[1] or b[2] or not (b[3] or b[0] == "missing")]
    return Distribution(
        name=name,
        kind="numeric",
        labels=[b[0] for b in kept],
        reference=_shares([b[1] for b in kept], ref.rows),
        current=_shares([b[2] for b in kept], cur.rows),
        flagged=[b[3] for b in kept],
        reference_rows=ref.rows,
        current_rows=cur.rows,
    )


def _categorical(name: str, ref: CategoricalSketch, cur: CategoricalSketch) -> Distribution:
    seen = sorted(ref.counts, key=lambda k: (-ref.counts[k], k))
    new = sorted((k for k in cur.counts if k not in ref.counts), key=lambda k: (-cur.counts[k], k))
    bars = [(k, ref.counts[k], cur.counts.get(k, 0), False) for k in seen]
    bars += [(f"{k} (new)", 0, cur.counts[k], True) for k in new]
    if len(bars) > MAX_BARS - 1:
        ranked = sorted(bars, key=lambda b: -max(b[1] / max(ref.rows, 1), b[2] / max(cur.rows, 1)))
        keep = {b[0] for b in ranked[: MAX_BARS - 2]}
        rest = [b for b in bars if b[0] not in keep]
        bars = [b for b in bars if b[0] in keep]
        bars.append(
            (
                f"{len(rest)} others",
                sum(b[1] for b in rest),
                sum(b[2] for b in rest),
                any(b[3] for b in rest),
            )
        )
    if ref.unseen or cur.unseen:
        bars.append(("other new values", ref.unseen, cur.unseen, True))
    if ref.missing or cur.missing:
        bars.append(("missing", ref.missing, cur.missing, False))
    return Distribution(
        name=name,
        kind="categorical",
        labels=[b[0] for b in bars],
        reference=_shares([b[1] for b in bars], ref.rows),
        current=_shares([b[2] for b in bars], cur.rows),
        flagged=[b[3] for b in bars],
        reference_rows=ref.rows,
        current_rows=cur.rows,
    )
