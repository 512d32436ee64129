"""Which drift test each feature gets, and at which threshold (Evidently's defaults).

Evidently 0.7.23 chooses per column from the number of reference rows (after dropping
missing values and ±inf) and the number of distinct values in reference and current
together:

=================  ==========================  ======================================
reference rows     numeric                     categorical
=================  ==========================  ======================================
≤ 1000             K-S (p ≤ 0.05) when more    chi-square (p < 0.05) when more than
                   than 5 values; else chi-    2 values, else Z-test (p < 0.05)
                   square / Z-test as for
                   categorical
> 1000             Wasserstein normalised by   Jensen-Shannon distance (≥ 0.1)
                   reference std (≥ 0.1) when
                   more than 5 values, else
                   Jensen-Shannon (≥ 0.1)
=================  ==========================  ======================================

Text features are compared through their descriptors as numeric and categorical features
are; when sentence embeddings are available (`bastion.monitor.embeddings`) they also get
``mmd``, a permutation test on the embeddings (drift when p < 0.05), which no other kind
of feature can be given.

A :class:`DriftConfig` overrides the method and threshold per feature, per kind or for
all features, with the same precedence as Evidently (per feature, then all, then kind).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Method = Literal["ks", "wasserstein", "psi", "chisquare", "jensenshannon", "z", "mmd"]
Kind = Literal["numeric", "categorical"]

#: methods that return a p-value (drift when small); the others return a distance
P_VALUE_METHODS: frozenset[Method] = frozenset({"ks", "chisquare", "z", "mmd"})
#: each method's default threshold, as in Evidently
DEFAULT_THRESHOLDS: dict[Method, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
    "mmd": 0.05,
}
#: methods that may be applied to each kind of feature
ALLOWED: dict[Kind, frozenset[Method]] = {
    "numeric": frozenset({"ks", "wasserstein", "psi", "chisquare", "jensenshannon", "z"}),
    "categorical": frozenset({"psi", "chisquare", "jensenshannon", "z"}),
}
#: Evidently's boundary between a small reference (p-value tests) and a large one (distances)
SMALL_REFERENCE = 1000
#: at most this many distinct values make a numeric column use the categorical tests
FEW_VALUES = 5


class DriftConfig(BaseModel):
    """Overrides of Evidently's default drift methods and thresholds.

    The field names follow Evidently's ``DataDriftPreset`` so a configuration reads the same.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method | None = None
    """One method for every feature (overridden by ``per_feature_method``)."""
    num_method: Method | None = None
    cat_method: Method | None = None
    per_feature_method: dict[str, Method] = Field(default_factory=dict)
    threshold: float | None = Field(default=None, ge=0)
    """One threshold for every feature: a p-value for p-value tests, else a distance."""
    num_threshold: float | None = Field(default=None, ge=0)
    cat_threshold: float | None = Field(default=None, ge=0)
    per_feature_threshold: dict[str, float] = Field(default_factory=dict)
    drift_share: float = Field(default=0.5, gt=0, le=1)
    """The data set drifts when at least this share of features drift (Evidently: 0.5)."""
    correction: Literal["benjamini-hochberg", "none"] = "benjamini-hochberg"
    """How p-values are corrected across features before they are compared with thresholds."""

    statistics: Literal["all", "chosen"] = "all"
    """``all``: PSI, K-S and Wasserstein (numeric) or chi-square and Jensen-Shannon
    (categorical) beside the chosen method; ``chosen``: PSI and the chosen method only,
    which is what Evidently computes and cheaper on large windows."""

    def method_for(self, feature: str, kind: Kind) -> Method | None:
        """The configured method for a feature, or None to choose by Evidently's rule."""
        chosen = self.per_feature_method.get(feature) or self.method
        if chosen is None:
            chosen = self.num_method if kind == "numeric" else self.cat_method
        if chosen is not None and chosen not in ALLOWED[kind]:
            raise ValueError(
                f"method for {feature!r} must be one of {sorted(ALLOWED[kind])} for a {kind} feature, got {chosen!r}"
            )
        return chosen

    def threshold_for(self, feature: str, kind: Kind, method: Method) -> float:
        """The configured threshold for a feature, else the method's default."""
        if feature in self.per_feature_threshold:
            return self.per_feature_threshold[feature]
        if self.threshold is not None:
            return self.threshold
        by_kind = self.num_threshold if kind == "numeric" else self.cat_threshold
        return DEFAULT_THRESHOLDS[method] if by_kind is None else by_kind


def default_method(kind: Kind, reference_rows: int, distinct_values: int) -> Method:
    """Evidently's choice for a feature (see the module table)."""
    few = kind == "categorical" or distinct_values <= FEW_VALUES
    if reference_rows <= SMALL_REFERENCE:
        if not few:
            return "ks"
        return "chisquare" if distinct_values > 2 else "z"
    return "jensenshannon" if few else "wasserstein"


def is_drift(method: Method, value: float, threshold: float) -> bool:
    """Whether a statistic crosses its threshold (Evidently's inclusive/exclusive choices)."""
    if method == "ks":
        return value <= threshold
    if method in P_VALUE_METHODS:
        return value < threshold
    return value >= threshold
