"""One live deployment: its model version, loaded adapter, guard, policy and micro-batcher.

Everything here is assembled once at start-up: the guard, the decision policy (checked
against the model: a spec whose bands cannot apply fails start-up), the version's score
calibration and the metric label children the request path increments.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import Counter

from bastion.guard.pseudonym import Pseudonymizer
from bastion.monitor.metrics import ServingMetrics
from bastion.policy.calibration import Calibration
from bastion.policy.engine import DecisionPolicy
from bastion.registry import ModelVersion
from bastion.runtime import ModelAdapter, Predictions
from bastion.runtime.batcher import MicroBatcher
from bastion.serving.guard import DeploymentGuard
from bastion.serving.inputs import Instance
from bastion.spec import Deployment

if TYPE_CHECKING:
    from bastion.serving.explaining import DecisionExplainer

logger = logging.getLogger(__name__)


def _label(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class Prediction:
    """One instance's model output in the caller's terms, and the outcome it implies.

    ``raw_score`` is the model's own positive-class score when ``output["score"]`` is
    calibrated, else None.
    """

    output: dict[str, Any]
    outcome: Any
    raw_score: float | None = None


class LiveDeployment:
    """Assembled once at start-up from the spec; scores rows through the batcher."""

    def __init__(
        self,
        name: str,
        spec: Deployment,
        version: ModelVersion,
        adapter: ModelAdapter,
        metrics: ServingMetrics,
        pseudonymizer: Pseudonymizer | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.version = version
        self.adapter = adapter
        self.guard = DeploymentGuard(name, spec.guard, version, metrics, pseudonymizer)
        self.columns = version.input_signature.names
        self._classes = [_label(c) for c in adapter.classes]
        self._class_keys = [str(c) for c in self._classes]
        self.policy: DecisionPolicy | None = None
        if spec.policy is not None:
            self.policy = DecisionPolicy(
                spec.policy,
                task=adapter.task,
                classes=self._classes,
                where=f"deployments.{name}.policy",
            )
        self.calibration = self._calibration(version)
        #: set by the service at start-up when the spec asks for explanations
        self.explainer: DecisionExplainer | None = None
        self._metrics = metrics
        self._decision_counts: dict[tuple[str, str], Counter] = {}
        batch_sizes = metrics.batch_size.labels(name)
        model_seconds = metrics.model_duration.labels(name)

        def observe(rows: int, seconds: float) -> None:
            batch_sizes.observe(rows)
            model_seconds.observe(seconds)

        self.batcher: MicroBatcher[Instance] = MicroBatcher(
            self._predict_rows,
            max_batch_size=spec.batching.max_batch_size,
            max_wait_ms=spec.batching.max_wait_ms,
            name=name,
            on_batch=observe,
            max_queue_rows=spec.limits.max_queue_rows,
            max_queue_delay_ms=spec.limits.max_queue_delay_ms,
        )
        metrics.model_info.labels(name, version.name, str(version.version), version.framework).set(
            1
        )
        metrics.queue_depth.labels(name).set_function(lambda: self.batcher.queue_depth)

    @property
    def task(self) -> str:
        return self.adapter.task

    def _calibration(self, version: ModelVersion) -> Calibration | None:
        stored = version.calibration
        if stored is None:
            return None
        if self.adapter.task != "classification" or len(self._classes) != 2:
            logger.warning(
                "%s has a calibration but is not a binary classifier; serving it uncalibrated",
                version.ref,
            )
            return None
        return Calibration.from_dict(stored)

    def count_decision(self, outcome: Any, source: str) -> None:
        """Count one decision; label children are made once per (outcome, source)."""
        # A regressor's value is no label: without a policy its decisions count as "value".
        label = "value" if isinstance(outcome, float) else str(outcome)
        child = self._decision_counts.get((label, source))
        if child is None:
            child = self._metrics.decisions.labels(self.name, label, source)
            self._decision_counts[(label, source)] = child
        child.inc()

    def _predict_rows(self, rows: list[Instance]) -> Predictions:
        return self.adapter.predict_records(rows, self.columns)

    def interpret(self, result: Predictions, *, calibrate: bool = False) -> list[Prediction]:
        """Turn raw model output rows into predictions and outcomes.

        With `calibrate` and a calibrated version, the positive-class probability is the
        calibrated one (score, probabilities and label alike) and ``raw_score`` keeps the
        model's own.
        """
        if self.adapter.task == "regression":
            return [Prediction({"value": float(v)}, float(v)) for v in result.reshape(-1)]
        binary = len(self._classes) == 2
        if calibrate and self.calibration is not None:
            raw = result[:, 1].astype(np.float64)
            score = self.calibration.transform(raw)
            calibrated = np.column_stack([1.0 - score, score])
            predictions = self._classified(calibrated, binary)
            for prediction, raw_score in zip(predictions, raw.tolist(), strict=True):
                prediction.raw_score = raw_score
                prediction.output["raw_score"] = raw_score
            return predictions
        return self._classified(result, binary)

    def _classified(self, result: Predictions, binary: bool) -> list[Prediction]:
        predictions = []
        for probabilities in result:
            best = int(np.argmax(probabilities))
            output: dict[str, Any] = {
                "label": self._classes[best],
                "probabilities": dict(zip(self._class_keys, probabilities.tolist(), strict=True)),
            }
            if binary:
                output["score"] = float(probabilities[1])
            predictions.append(Prediction(output, self._classes[best]))
        return predictions
