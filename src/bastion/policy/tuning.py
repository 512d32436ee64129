"""Choose the score bands that cost least, given what each kind of error costs and how many
cases the reviewers can take.

The bands are `ScoreBands` exactly: approve ``s < t_low``, review ``t_low ≤ s < t_high``,
decline ``s ≥ t_high``. With labels ``y = 1`` for the adverse case (default, fraud), the
cost of a pair of thresholds over ``n`` labelled cases is

    cost_fn · #(approved and y=1) + cost_fp · #(declined and y=0) + cost_review · #(reviewed)

(a reviewer is assumed to decide correctly), and the review band must fit the capacity:
``#reviewed / n · daily_volume ≤ review_capacity``.

**Exact, in O(n log n).** Any threshold in [0, 1] splits the cases the same way as one of
the candidates: every distinct score, plus 0 and 1 (1 declines nothing unless a score is
exactly 1; `ScoreBands` cannot write a threshold above 1, so "decline nothing" is not on
offer when a score equals 1). With ``A(t)`` cases, ``P(t)`` positives and ``N(t)``
negatives below ``t`` (cumulative sums over the sorted scores), the cost separates:

    cost(i, j) = [cost_fn·P(i) - cost_review·A(i)] + [cost_fp·(N₀ - N(j)) + cost_review·A(j)]

and the capacity becomes ``A(j) - A(i) ≤ R`` for a whole number ``R``. For each ``t_high``
(index j) the best ``t_low`` is a minimum of the first bracket over a window of indices that
only moves right as j grows, kept in a monotone deque: one pass over the k ≤ n + 2
candidates, after the sort. No grid is needed at any size.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import InvalidInput
from bastion.policy.calibration import check_scores_labels

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: multiples of the review capacity shown in the cost table
CAPACITY_LEVELS = (0.5, 2.0)


@dataclass(frozen=True)
class Costs:
    """What one case costs: declined though good (fp), approved though bad (fn), reviewed."""

    fp: float
    fn: float
    review: float

    def __post_init__(self) -> None:
        for name, value in (
            ("cost_fp", self.fp),
            ("cost_fn", self.fn),
            ("cost_review", self.review),
        ):
            if not math.isfinite(value) or value < 0:
                raise InvalidInput(f"{name} must be a finite number ≥ 0, got {value}")


@dataclass(frozen=True)
class OperatingPoint:
    """One pair of thresholds and what it does on the labelled cases.

    Rates: `fp_rate` is the share of good cases (y=0) declined, `fn_rate` the share of bad
    cases (y=1) approved; None when the file has no case of that class. Per-day figures are
    None without a daily volume.
    """

    t_low: float
    t_high: float
    cost_per_case: float
    cost_per_day: float | None
    approved: int
    reviewed: int
    declined: int
    false_positives: int
    false_negatives: int
    review_share: float
    reviews_per_day: float | None
    fp_rate: float | None
    fn_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Alternative:
    """A row of the cost table: a named operating point and whether it fits the capacity."""

    label: str
    point: OperatingPoint
    within_capacity: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "within_capacity": self.within_capacity,
            **self.point.to_dict(),
        }


@dataclass(frozen=True)
class CostCurve:
    """For every candidate `t_high`: the best `t_low`, its cost per case and review share."""

    t_high: FloatArray
    t_low: FloatArray
    cost_per_case: FloatArray
    review_share: FloatArray


@dataclass(frozen=True)
class TuningResult:
    """The chosen bands, the cost table of alternatives and the curves behind the plot."""

    chosen: OperatingPoint
    alternatives: list[Alternative]
    costs: Costs
    review_capacity: float | None
    daily_volume: float | None
    cases: int
    positives: int
    candidates: int
    curve: CostCurve = field(repr=False)
    unconstrained_curve: CostCurve = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the curves are left out: they have one point per distinct score)."""
        return {
            "chosen": self.chosen.to_dict(),
            "alternatives": [a.to_dict() for a in self.alternatives],
            "costs": asdict(self.costs),
            "review_capacity": self.review_capacity,
            "daily_volume": self.daily_volume,
            "cases": self.cases,
            "positives": self.positives,
            "candidates": self.candidates,
        }


class ThresholdSearch:
    """Labelled scores sorted once, with the cumulative counts every query reads.

    Parameters
    ----------
    scores : array-like of shape (n,)
        P(adverse) per case, within [0, 1].
    labels : array-like of shape (n,)
        1 for the adverse case, 0 otherwise.
    costs : Costs
    daily_volume : float, optional
        Expected cases per day; needed for a review capacity and for per-day figures.
    """

    def __init__(
        self, scores: Any, labels: Any, costs: Costs, daily_volume: float | None = None
    ) -> None:
        s, y = check_scores_labels(scores, labels)
        if daily_volume is not None and not (math.isfinite(daily_volume) and daily_volume > 0):
            raise InvalidInput(f"daily_volume must be a finite number > 0, got {daily_volume}")
        order = np.argsort(s, kind="stable")
        s_sorted = s[order]
        cum_pos = np.concatenate([[0], np.cumsum(y[order], dtype=np.int64)])
        self.costs = costs
        self.daily_volume = daily_volume
        self.n = int(s.size)
        self.positives = int(cum_pos[-1])
        self.negatives = self.n - self.positives
        #: candidate thresholds, ascending
        self.thresholds: FloatArray = np.unique(np.concatenate([s_sorted, [0.0, 1.0]]))
        #: cases, positives and negatives strictly below each candidate
        self.below: IntArray = np.searchsorted(s_sorted, self.thresholds, side="left").astype(
            np.int64
        )
        self.pos_below: IntArray = cum_pos[self.below]
        self.neg_below: IntArray = self.below - self.pos_below
        # The two separable halves of the total cost (see the module docstring).
        self._low_part: FloatArray = costs.fn * self.pos_below - costs.review * self.below
        self._high_part: FloatArray = (
            costs.fp * (self.negatives - self.neg_below) + costs.review * self.below
        )
        self._curves: dict[int, tuple[IntArray, FloatArray]] = {}

    def max_reviews(self, review_capacity: float | None) -> int:
        """The most reviewed cases (of n) that keep ``reviewed / n · volume ≤ capacity``."""
        if review_capacity is None:
            return self.n
        if not math.isfinite(review_capacity) or review_capacity < 0:
            raise InvalidInput(
                f"review_capacity must be a finite number ≥ 0, got {review_capacity}"
            )
        if self.daily_volume is None:
            raise InvalidInput("a review capacity needs the expected daily volume (daily_volume)")
        bound = review_capacity * self.n
        r = min(self.n, math.floor(bound / self.daily_volume))
        # Settle float rounding with the very comparison the constraint is defined by.
        while r < self.n and (r + 1) * self.daily_volume <= bound:
            r += 1
        while r > 0 and r * self.daily_volume > bound:
            r -= 1
        return r

    def curve(self, max_reviews: int) -> tuple[IntArray, FloatArray]:
        """For each t_high index j: the best t_low index i ≤ j and the total cost.

        A monotone deque holds the window of t_low indices whose review band fits; on equal
        cost it keeps the larger t_low (the smaller review band). Memoised per capacity.
        """
        if max_reviews not in self._curves:
            low, below = self._low_part.tolist(), self.below.tolist()
            best_low = [0] * len(low)
            window: deque[int] = deque()
            for j, value in enumerate(low):
                while window and low[window[-1]] >= value:
                    window.pop()
                window.append(j)
                while below[j] - below[window[0]] > max_reviews:
                    window.popleft()
                best_low[j] = window[0]
            chosen = np.asarray(best_low, dtype=np.int64)
            self._curves[max_reviews] = (chosen, self._low_part[chosen] + self._high_part)
        return self._curves[max_reviews]

    def best(self, review_capacity: float | None) -> tuple[int, int]:
        """Candidate indices (i, j) of the cheapest bands within the capacity."""
        return self.best_within(self.max_reviews(review_capacity))

    def best_within(self, max_reviews: int) -> tuple[int, int]:
        """Candidate indices (i, j) of the cheapest bands reviewing at most `max_reviews`."""
        best_low, totals = self.curve(max_reviews)
        j = int(np.argmin(totals))
        return int(best_low[j]), j

    def point(self, i: int, j: int) -> OperatingPoint:
        """The operating point of candidate indices i ≤ j."""
        return self._point(
            float(self.thresholds[i]),
            float(self.thresholds[j]),
            int(self.below[i]),
            int(self.below[j]),
            int(self.pos_below[i]),
            int(self.neg_below[j]),
        )

    def evaluate(self, t_low: float, t_high: float) -> OperatingPoint:
        """The operating point of any bands in [0, 1] (e.g. the ones in the spec now)."""
        if not (0.0 <= t_low <= t_high <= 1.0):
            raise InvalidInput(
                f"thresholds must satisfy 0 ≤ t_low ≤ t_high ≤ 1, got {t_low}, {t_high}"
            )
        # The candidates include 0, 1 and every score, so the first candidate ≥ t counts
        # exactly the cases below t.
        i = int(np.searchsorted(self.thresholds, t_low, side="left"))
        j = int(np.searchsorted(self.thresholds, t_high, side="left"))
        return self._point(
            t_low,
            t_high,
            int(self.below[i]),
            int(self.below[j]),
            int(self.pos_below[i]),
            int(self.neg_below[j]),
        )

    def _point(
        self,
        t_low: float,
        t_high: float,
        below_low: int,
        below_high: int,
        fn: int,
        neg_below_high: int,
    ) -> OperatingPoint:
        fp = self.negatives - neg_below_high
        reviewed = below_high - below_low
        total = self.costs.fn * fn + self.costs.fp * fp + self.costs.review * reviewed
        per_case = total / self.n
        volume = self.daily_volume
        return OperatingPoint(
            t_low=t_low,
            t_high=t_high,
            cost_per_case=per_case,
            cost_per_day=None if volume is None else per_case * volume,
            approved=below_low,
            reviewed=reviewed,
            declined=self.n - below_high,
            false_positives=fp,
            false_negatives=fn,
            review_share=reviewed / self.n,
            reviews_per_day=None if volume is None else reviewed / self.n * volume,
            fp_rate=fp / self.negatives if self.negatives else None,
            fn_rate=fn / self.positives if self.positives else None,
        )

    def fits(self, point: OperatingPoint, review_capacity: float | None) -> bool:
        return point.reviewed <= self.max_reviews(review_capacity)

    def cost_curve(self, review_capacity: float | None) -> CostCurve:
        best_low, totals = self.curve(self.max_reviews(review_capacity))
        reviewed = self.below - self.below[best_low]
        return CostCurve(
            self.thresholds, self.thresholds[best_low], totals / self.n, reviewed / self.n
        )


def tune(
    scores: Any,
    labels: Any,
    costs: Costs,
    *,
    review_capacity: float | None = None,
    daily_volume: float | None = None,
    current: tuple[float, float] | None = None,
) -> TuningResult:
    """The cheapest `ScoreBands` thresholds within the review capacity, with the cost table.

    `review_capacity` (cases per day) needs `daily_volume`; without it the review band is
    unlimited. `current` (t_low, t_high), e.g. the spec's bands now, is added to the table.
    The table also lists: no review band, the unconstrained optimum, the optimum at half and
    twice the capacity, and the chosen point with each threshold moved one candidate.

    >>> result = tune([0.1, 0.4, 0.6, 0.9], [0, 0, 1, 1], Costs(fp=1, fn=5, review=0.5))
    >>> result.chosen.t_low, result.chosen.t_high, result.chosen.cost_per_case
    (0.6, 0.6, 0.0)
    """
    search = ThresholdSearch(scores, labels, costs, daily_volume)
    i, j = search.best(review_capacity)
    chosen = search.point(i, j)
    rows: list[tuple[str, OperatingPoint]] = [("chosen", chosen)]
    if current is not None:
        rows.append(("current spec", search.evaluate(*current)))
    rows.append(("no review band", search.point(*search.best_within(0))))
    if review_capacity is not None:
        rows.append(("unlimited review", search.point(*search.best(None))))
        for level in CAPACITY_LEVELS:
            label = f"best at {review_capacity * level:g}/day"
            rows.append((label, search.point(*search.best(review_capacity * level))))
    k = search.thresholds.size
    for label, (ni, nj) in (
        ("t_low -1 step", (i - 1, j)),
        ("t_low +1 step", (i + 1, j)),
        ("t_high -1 step", (i, j - 1)),
        ("t_high +1 step", (i, j + 1)),
    ):
        if 0 <= ni <= nj < k:
            rows.append((label, search.point(ni, nj)))
    return TuningResult(
        chosen=chosen,
        alternatives=[Alternative(lbl, p, search.fits(p, review_capacity)) for lbl, p in rows],
        costs=costs,
        review_capacity=review_capacity,
        daily_volume=daily_volume,
        cases=search.n,
        positives=search.positives,
        candidates=int(k),
        curve=search.cost_curve(review_capacity),
        unconstrained_curve=search.cost_curve(None),
    )
