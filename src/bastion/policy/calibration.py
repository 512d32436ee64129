"""Score calibration: is a score of 0.3 really a 30 % risk, and a monotone map that makes it so.

Thresholds tuned to costs only mean what they say when scores are probabilities. This module
measures calibration (a reliability table and the expected calibration error, ECE), fits an
isotonic or a Platt map on labelled scores, and stores the fitted map as plain numbers
(`Calibration.to_dict`) so serving can apply it without scikit-learn: isotonic as knots for
`np.interp`, Platt as the two coefficients of ``sigmoid(a * logit(s) + b)``.

Both maps are monotone non-decreasing, so calibrating never reorders cases: it moves the
numbers the thresholds are written in, not who is riskier than whom.

>>> import numpy as np
>>> cal = Calibration.from_dict({"method": "platt", "a": 1.0, "b": 0.0})
>>> cal.transform(np.array([0.25, 0.5])).round(3).tolist()
[0.25, 0.5]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from bastion.errors import InvalidInput

CalibrationMethod = Literal["isotonic", "platt"]
METHODS: tuple[CalibrationMethod, ...] = ("isotonic", "platt")

FloatArray = npt.NDArray[np.float64]

#: scores are clipped this far inside (0, 1) before taking the logit, so 0 and 1 stay finite
_EPS = 1e-12


def _logit(scores: FloatArray) -> FloatArray:
    clipped = np.clip(scores, _EPS, 1.0 - _EPS)
    return cast(FloatArray, np.log(clipped) - np.log1p(-clipped))


def _sigmoid(z: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def check_scores_labels(scores: Any, labels: Any) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """Validate once at the entry point: equal-length 1-D scores in [0, 1] and 0/1 labels.

    Returns the scores as float64 and the labels as int8. Raises `InvalidInput` naming what
    is wrong.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y_raw = np.asarray(labels).reshape(-1)
    if s.shape != y_raw.shape:
        raise InvalidInput(
            f"scores and labels must have the same length, got {s.size} and {y_raw.size}"
        )
    if s.size == 0:
        raise InvalidInput("scores and labels must not be empty")
    if not np.all(np.isfinite(s)) or s.min() < 0.0 or s.max() > 1.0:
        raise InvalidInput(
            f"scores must be finite and within [0, 1], got values from {np.nanmin(s)} to {np.nanmax(s)}"
        )
    try:
        y_float = y_raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"labels must be 0 or 1, got values like {y_raw[:3].tolist()}") from exc
    bad = ~np.isin(y_float, (0.0, 1.0))
    if bad.any():
        raise InvalidInput(
            f"labels must be 0 or 1, got {np.unique(y_raw[bad])[:5].tolist()} "
            f"in {int(bad.sum())} row(s)"
        )
    return s, y_float.astype(np.int8)


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability table: scores in [lower, upper) (the last bin includes 1)."""

    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "count": self.count,
            "mean_predicted": self.mean_predicted,
            "observed_rate": self.observed_rate,
        }


def reliability_table(scores: Any, labels: Any, bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1]; empty bins are left out.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Predicted probabilities of the positive class.
    labels : array-like of shape (n,)
        Observed 0/1 outcomes.
    bins : int
        Number of equal-width bins.

    >>> [b.count for b in reliability_table([0.05, 0.15, 0.95, 1.0], [0, 0, 1, 1], bins=10)]
    [1, 1, 2]
    """
    if bins < 1:
        raise InvalidInput(f"bins must be ≥ 1, got {bins}")
    s, y = check_scores_labels(scores, labels)
    index = np.minimum((s * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    sum_pred = np.bincount(index, weights=s, minlength=bins)
    sum_obs = np.bincount(index, weights=y.astype(np.float64), minlength=bins)
    return [
        ReliabilityBin(
            lower=i / bins,
            upper=(i + 1) / bins,
            count=int(counts[i]),
            mean_predicted=float(sum_pred[i] / counts[i]),
            observed_rate=float(sum_obs[i] / counts[i]),
        )
        for i in range(bins)
        if counts[i] > 0
    ]


def expected_calibration_error(scores: Any, labels: Any, bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between mean score and observed rate over the bins.

    >>> round(expected_calibration_error([0.2, 0.2, 0.8, 0.8], [0, 0, 1, 1], bins=10), 6)
    0.2
    """
    table = reliability_table(scores, labels, bins)
    n = sum(b.count for b in table)
    return float(sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in table) / n)


@dataclass(frozen=True)
class Calibration:
    """A fitted monotone map from raw scores to calibrated probabilities.

    ``isotonic`` keeps the knots (`x`, `y`) of the fitted step function and interpolates
    linearly between them (constant beyond the ends); ``platt`` keeps ``a`` and ``b`` of
    ``sigmoid(a * logit(s) + b)`` with ``a ≥ 0``. `info` carries provenance (rows fitted on,
    ECE before and after) and does not affect `transform`.
    """

    method: CalibrationMethod
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def transform(self, scores: FloatArray) -> FloatArray:
        """Calibrated probabilities, same shape as `scores`, monotone and within [0, 1]."""
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "isotonic":
            out = np.interp(s, np.asarray(self.x), np.asarray(self.y))
        else:
            out = _sigmoid(self.a * _logit(s) + self.b)
        return cast(FloatArray, np.clip(out, 0.0, 1.0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; `Calibration.from_dict` reads it back."""
        out: dict[str, Any] = {"method": self.method}
        if self.method == "isotonic":
            out["x"] = list(self.x)
            out["y"] = list(self.y)
        else:
            out["a"] = self.a
            out["b"] = self.b
        if self.info:
            out["info"] = dict(self.info)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Validate and rebuild; raises `InvalidInput` for anything `transform` could misuse."""
        if not isinstance(data, dict):
            raise InvalidInput(f"a calibration must be a mapping, got {type(data).__name__}")
        method = data.get("method")
        info = data.get("info") or {}
        if not isinstance(info, dict):
            raise InvalidInput("calibration info must be a mapping")
        if method == "isotonic":
            return cls._isotonic(data.get("x"), data.get("y"), info)
        if method == "platt":
            a, b = data.get("a"), data.get("b")
            if not all(isinstance(v, int | float) and math.isfinite(v) for v in (a, b)):
                raise InvalidInput(
                    f"platt calibration needs finite numbers a and b, got {a!r}, {b!r}"
                )
            if cast(float, a) < 0:
                raise InvalidInput(
                    f"platt calibration a must be ≥ 0 to keep scores in order, got {a}"
                )
            return cls("platt", a=float(cast(float, a)), b=float(cast(float, b)), info=info)
        raise InvalidInput(
            f"calibration method must be one of {', '.join(METHODS)}, got {method!r}"
        )

    @classmethod
    def _isotonic(cls, x: Any, y: Any, info: dict[str, Any]) -> Calibration:
        if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y) or not x:
            raise InvalidInput(
                "isotonic calibration needs lists x and y of the same, non-zero length"
            )
        try:
            xs = np.asarray(x, dtype=np.float64)
            ys = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput("isotonic calibration x and y must be numbers") from exc
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
            raise InvalidInput("isotonic calibration x and y must be finite")
        if np.any(np.diff(xs) < 0) or np.any(np.diff(ys) < 0):
            raise InvalidInput("isotonic calibration x and y must be non-decreasing")
        if ys.min() < 0 or ys.max() > 1:
            raise InvalidInput("isotonic calibration y must lie within [0, 1]")
        return cls("isotonic", x=tuple(xs.tolist()), y=tuple(ys.tolist()), info=info)


def fit_calibration(scores: Any, labels: Any, method: CalibrationMethod) -> Calibration:
    """Fit `method` on labelled scores (both classes required).

    Platt scaling is a one-feature logistic regression on ``logit(score)`` without
    regularisation; it is refused when the fitted slope is negative (the scores run against
    the labels: a wrong label column, most likely), since the map would reverse their order.
    """
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    s, y = check_scores_labels(scores, labels)
    if method not in METHODS:
        raise InvalidInput(
            f"calibration method must be one of {', '.join(METHODS)}, got {method!r}"
        )
    if y.min() == y.max():
        raise InvalidInput(f"calibration needs both classes in the labels, got only {int(y[0])}")
    info: dict[str, Any] = {"rows": int(s.size)}
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        iso.fit(s, y.astype(np.float64))
        return Calibration(
            "isotonic",
            x=tuple(float(v) for v in iso.X_thresholds_),
            y=tuple(float(v) for v in iso.y_thresholds_),
            info=info,
        )
    model = LogisticRegression(C=np.inf).fit(_logit(s).reshape(-1, 1), y)
    a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    if a < 0:
        raise InvalidInput(
            "the scores fall as the observed rate rises (Platt slope "
            f"{a:.3g} < 0): check the label column, or use isotonic calibration"
        )
    return Calibration("platt", a=a, b=b, info=info)


@dataclass(frozen=True)
class CalibrationReport:
    """ECE and reliability before and after calibrating, the after side measured out of fold.

    `calibration` is fitted on all rows (what is stored and served); `ece_after` and
    `table_after` come from out-of-fold predictions of maps fitted on the other folds, so
    they estimate how the stored map does on cases it has not seen.
    """

    calibration: Calibration
    ece_before: float
    ece_after: float
    table_before: list[ReliabilityBin]
    table_after: list[ReliabilityBin]
    folds: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.calibration.method,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
            "folds": self.folds,
            "table_before": [b.to_dict() for b in self.table_before],
            "table_after": [b.to_dict() for b in self.table_after],
            "calibration": self.calibration.to_dict(),
        }


def calibrate(
    scores: Any,
    labels: Any,
    method: CalibrationMethod,
    *,
    folds: int = 5,
    bins: int = 10,
    seed: int = 0,
) -> CalibrationReport:
    """Fit `method` on all rows and measure it by stratified `folds`-fold cross-validation.

    Needs at least two cases of each class (folds shrink to the rarer class's count).
    """
    from sklearn.model_selection import StratifiedKFold

    s, y = check_scores_labels(scores, labels)
    if folds < 2:
        raise InvalidInput(f"folds must be ≥ 2, got {folds}")
    rarer = int(min(y.sum(), y.size - y.sum()))
    if rarer < 2:
        raise InvalidInput(
            f"calibration needs at least 2 cases of each class to cross-validate, "
            f"the rarer class has {rarer}"
        )
    splitter = StratifiedKFold(n_splits=min(folds, rarer), shuffle=True, random_state=seed)
    out_of_fold = np.empty_like(s)
    for train, test in splitter.split(s.reshape(-1, 1), y):
        out_of_fold[test] = fit_calibration(s[train], y[train], method).transform(s[test])
    ece_before = expected_calibration_error(s, y, bins)
    ece_after = expected_calibration_error(out_of_fold, y, bins)
    fitted = fit_calibration(s, y, method)
    info = {**fitted.info, "ece_before": ece_before, "ece_after": ece_after, "bins": bins}
    return CalibrationReport(
        calibration=Calibration(fitted.method, fitted.x, fitted.y, fitted.a, fitted.b, info),
        ece_before=ece_before,
        ece_after=ece_after,
        table_before=reliability_table(s, y, bins),
        table_after=reliability_table(out_of_fold, y, bins),
        folds=splitter.get_n_splits(),
    )
