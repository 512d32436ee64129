"""Performance estimated without labels: confidence-based performance estimation (CBPE).

Labels arrive weeks late, if ever. NannyML's CBPE idea: when a score is a calibrated
probability, a case scored 0.3 is one adverse case in expectation 30 % of the time, so the
expected confusion matrix of a window, and every metric built from it, follows from the
scores alone:

- precision at ``t`` ≈ ``Σ_{s≥t} p / #{s≥t}``; recall at ``t`` ≈ ``Σ_{s≥t} p / Σ p``;
- ROC AUC: each case counts as a positive with weight ``p`` and a negative with weight
  ``1 - p`` (scikit-learn's weighted AUC over the doubled rows: the expected ROC curve);
- cost per case ≈ ``(fn·Σ_{approved} p + fp·Σ_{declined} (1-p) + review·#reviewed) / n``,
  the semantics of `bastion.policy.tuning`.

Here ``p`` is the score after the fitted calibration map (the thresholds still apply to the
raw score: the map is monotone, and the policy decides on the raw score).

**Fitting** (`CBPE.fit`) checks calibration on held-out reference data: the labelled
reference is split in two (stratified, seeded). The raw scores' ECE on the held-out half is
compared with `ECE_THRESHOLD`; above it, an isotonic map (`bastion.policy.calibration`) is
fitted on the first half and kept only if it lowers ECE on the held-out half. ``calibrated``
says whether the final held-out ECE is within the threshold: an estimate from scores that
are not probabilities is reported, but marked so. ``reference`` also keeps the held-out
half's realised AUC beside the AUC estimated from its scores: their gap is the estimator's
bias where the answer is known (ECE over ten equal-width bins can pass scores that are a
little overconfident, which makes the estimated AUC too high).

**Limitation.** CBPE assumes P(y | score) is what it was on the reference: it sees covariate
shift (different cases, different scores) but is blind to concept drift (the same case now
ending differently). Under concept drift the estimate keeps saying what the reference said
while the realised, label-based metrics fall: the two diverging is itself the signal.
Every result carries ``"estimate": True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import InvalidInput
from bastion.monitor.config import Costs
from bastion.policy.bands import ScoreBands
from bastion.policy.calibration import (
    Calibration,
    check_scores_labels,
    expected_calibration_error,
    fit_calibration,
)

FloatArray = npt.NDArray[np.float64]

#: held-out ECE above this counts as poorly calibrated
ECE_THRESHOLD = 0.05
#: share of the reference held out to check calibration
HOLDOUT_SHARE = 0.5
#: the calibration check needs this many held-out cases of each class
MIN_PER_CLASS = 10
#: the stored format
VERSION = 1


def _check_scores(scores: Any) -> FloatArray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size and (not np.all(np.isfinite(s)) or s.min() < 0.0 or s.max() > 1.0):
        raise InvalidInput("scores must be finite and within [0, 1]")
    return s


@dataclass(frozen=True)
class CBPE:
    """A fitted estimator: the calibration map (None: the raw scores are used) and the
    reference's held-out figures. `to_dict`/`from_dict` store it with the reference.
    """

    calibration: Calibration | None
    calibrated: bool
    ece_raw: float
    ece_calibrated: float | None
    reference: dict[str, Any] = field(default_factory=dict)
    ece_threshold: float = ECE_THRESHOLD

    @classmethod
    def fit(
        cls,
        reference_scores: Any,
        reference_labels: Any,
        *,
        ece_threshold: float = ECE_THRESHOLD,
        seed: int = 0,
    ) -> CBPE:
        """Check calibration on held-out reference rows; calibrate when it is poor.

        Raises `InvalidInput` when the reference has fewer than `MIN_PER_CLASS` cases of
        each class in each half (a calibration check on fewer says nothing).
        """
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import train_test_split

        s, y = check_scores_labels(reference_scores, reference_labels)
        rarer = int(min(y.sum(), y.size - y.sum()))
        if rarer < 2 * MIN_PER_CLASS:
            raise InvalidInput(
                f"CBPE needs at least {2 * MIN_PER_CLASS} labelled reference cases of each "
                f"class, the rarer class has {rarer}"
            )
        fit_s, held_s, fit_y, held_y = train_test_split(
            s, y, test_size=HOLDOUT_SHARE, stratify=y, random_state=seed
        )
        ece_raw = expected_calibration_error(held_s, held_y)
        calibration: Calibration | None = None
        ece_after: float | None = None
        if ece_raw > ece_threshold:
            candidate = fit_calibration(fit_s, fit_y, "isotonic")
            ece_after = expected_calibration_error(candidate.transform(held_s), held_y)
            if ece_after < ece_raw:
                calibration = candidate
        final = ece_raw if calibration is None else float(ece_after or 0.0)
        held_p = held_s if calibration is None else calibration.transform(held_s)
        reference = {
            "rows": int(s.size),
            "holdout_rows": int(held_s.size),
            "roc_auc": float(roc_auc_score(y, s)),
            "positive_rate": float(y.mean()),
            # the estimator checked where the answer is known: a gap here is its bias
            "holdout_roc_auc": float(roc_auc_score(held_y, held_s)),
            "holdout_estimated_roc_auc": _expected_auc(held_s, held_p, {}),
        }
        return cls(
            calibration=calibration,
            calibrated=final <= ece_threshold,
            ece_raw=float(ece_raw),
            ece_calibrated=ece_after,
            reference=reference,
            ece_threshold=ece_threshold,
        )

    def probabilities(self, scores: Any) -> FloatArray:
        """The scores as the estimator reads them: calibrated when a map was fitted."""
        s = _check_scores(scores)
        return s if self.calibration is None else self.calibration.transform(s)

    def estimate(
        self, scores: Any, *, bands: ScoreBands | None, costs: Costs | None = None
    ) -> dict[str, Any]:
        """Estimated metrics of a window from its raw scores alone.

        The keys match `compute_performance`'s flat values (``roc_auc``, ``precision``,
        ``recall``, ``review_precision``, ``review_recall``, ``cost``) so the two can be
        put side by side; undefined figures are None with a reason in ``reasons``.
        """
        s = _check_scores(scores)
        p = self.probabilities(s)
        reasons: dict[str, str] = {}
        out: dict[str, Any] = {
            "estimate": True,
            "calibrated": self.calibrated,
            "rows": int(s.size),
            "expected_positive_rate": float(p.mean()) if s.size else None,
        }
        out["roc_auc"] = _expected_auc(s, p, reasons)
        for name, threshold in (
            ("", None if bands is None else bands.decline_at_or_above),
            ("review_", None if bands is None else bands.approve_below),
        ):
            precision, recall = _expected_rates(s, p, threshold, name, reasons)
            out[f"{name}precision"] = precision
            out[f"{name}recall"] = recall
        out["cost"] = _expected_cost(s, p, bands, costs, reasons)
        out["reasons"] = reasons
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; `CBPE.from_dict` reads it back."""
        return {
            "version": VERSION,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "calibrated": self.calibrated,
            "ece_raw": self.ece_raw,
            "ece_calibrated": self.ece_calibrated,
            "ece_threshold": self.ece_threshold,
            "reference": dict(self.reference),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CBPE:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise InvalidInput(f"a stored CBPE estimator must be a mapping with version {VERSION}")
        try:
            stored = data["calibration"]
            ece_calibrated = data["ece_calibrated"]
            return cls(
                calibration=None if stored is None else Calibration.from_dict(stored),
                calibrated=bool(data["calibrated"]),
                ece_raw=float(data["ece_raw"]),
                ece_calibrated=None if ece_calibrated is None else float(ece_calibrated),
                reference=dict(data["reference"]),
                ece_threshold=float(data["ece_threshold"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"a stored CBPE estimator is incomplete: {exc}") from exc


def _expected_auc(s: FloatArray, p: FloatArray, reasons: dict[str, str]) -> float | None:
    from sklearn.metrics import roc_auc_score

    if s.size == 0:
        reasons["roc_auc"] = "no decisions"
        return None
    if p.sum() <= 0 or (1.0 - p).sum() <= 0:
        reasons["roc_auc"] = "every calibrated score is 0 or every one is 1"
        return None
    doubled = np.concatenate([np.ones(s.size), np.zeros(s.size)])
    return float(
        roc_auc_score(doubled, np.concatenate([s, s]), sample_weight=np.concatenate([p, 1 - p]))
    )


def _expected_rates(
    s: FloatArray, p: FloatArray, threshold: float | None, prefix: str, reasons: dict[str, str]
) -> tuple[float | None, float | None]:
    if threshold is None:
        reasons[f"{prefix}precision"] = reasons[f"{prefix}recall"] = "no policy bands"
        return None, None
    flagged = s >= threshold
    expected_tp = float(p[flagged].sum())
    precision = recall = None
    if flagged.any():
        precision = expected_tp / int(flagged.sum())
    else:
        reasons[f"{prefix}precision"] = "no case at or above the threshold"
    if p.sum() > 0:
        recall = expected_tp / float(p.sum())
    else:
        reasons[f"{prefix}recall"] = "no expected positive"
    return precision, recall


def _expected_cost(
    s: FloatArray,
    p: FloatArray,
    bands: ScoreBands | None,
    costs: Costs | None,
    reasons: dict[str, str],
) -> float | None:
    if costs is None or bands is None or s.size == 0:
        reasons["cost"] = (
            "no costs configured (monitor.costs)"
            if costs is None
            else ("no policy bands" if bands is None else "no decisions")
        )
        return None
    approved = s < bands.approve_below
    declined = s >= bands.decline_at_or_above
    reviewed = ~approved & ~declined
    total = (
        costs.fn * p[approved].sum()
        + costs.fp * (1.0 - p[declined]).sum()
        + costs.review * reviewed.sum()
    )
    return float(total / s.size)
