"""One live deployment: its model version, loaded adapter, guard and micro-batcher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bastion.guard.pseudonym import Pseudonymizer
from bastion.monitor.metrics import ServingMetrics
from bastion.registry import ModelVersion
from bastion.runtime import ModelAdapter, Predictions
from bastion.runtime.batcher import MicroBatcher
from bastion.serving.guard import DeploymentGuard
from bastion.serving.inputs import Instance
from bastion.spec import Deployment


def _label(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class Prediction:
    """One instance's model output in the caller's terms, and the outcome it implies."""

    output: dict[str, Any]
    outcome: Any


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

    def _predict_rows(self, rows: list[Instance]) -> Predictions:
        return self.adapter.predict_records(rows, self.columns)

    def interpret(self, result: Predictions) -> list[Prediction]:
        """Turn raw model output rows into predictions and outcomes."""
        if self.adapter.task == "regression":
            return [Prediction({"value": float(v)}, float(v)) for v in result.reshape(-1)]
        predictions = []
        binary = len(self._classes) == 2
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
