"""The explanation of a stored decision: as stored, or recomputed with the model it used.

`GET /v1/decisions/{id}/explanation` answers from ``decisions.explanation`` when the
decision was explained when it was made. Otherwise the explanation is computed now with the
exact model version the decision recorded (loaded from the registry: the deployment may
serve a newer one by now), over the decision's stored inputs, and stored back so the next
request reads it. The stored inputs are the redacted ones: a personal field the guard
redacted is explained as stored, not as the caller sent it.

Loaded versions and their explainers are kept in a small LRU cache, so explaining many old
decisions does not reload a model for each.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bastion.errors import ArtifactError, Conflict, InvalidInput, NotFound, SpecError
from bastion.explain.config import ExplainConfig
from bastion.registry import ModelVersion, Registry
from bastion.serving.decision_log import DecisionLog, Record
from bastion.serving.explaining import explanation_record
from bastion.spec import Spec

if TYPE_CHECKING:
    from bastion.explain import Explainer

#: loaded model versions (with their explainers) kept for on-request explanations
CACHED_VERSIONS = 4


class ExplanationService:
    """Stored or recomputed explanations of decisions. Blocking: call from worker threads.

    `live_explainer(name, version)` returns the explainer a running deployment already
    holds for that exact version, if any, so the served version is never loaded twice.
    """

    def __init__(
        self,
        registry: Registry,
        decision_log: DecisionLog,
        spec: Spec,
        live_explainer: Callable[[str, str, int], Explainer | None],
        *,
        cache_size: int = CACHED_VERSIONS,
    ) -> None:
        self.registry = registry
        self.decision_log = decision_log
        self.spec = spec
        self._live_explainer = live_explainer
        self._cache: OrderedDict[tuple[str, int, str], tuple[ModelVersion, Explainer]] = (
            OrderedDict()
        )
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def config(self, deployment: str) -> ExplainConfig:
        spec = self.spec.deployments.get(deployment)
        if spec is None or spec.explain is None:
            return ExplainConfig()
        return spec.explain

    def explanation(self, decision_id: str) -> dict[str, Any]:
        record = self.decision_log.get(decision_id)
        if record is None:
            raise NotFound(f"no decision with id {decision_id!r}")
        stored = record.get("explanation")
        if stored is None:
            stored = self._recompute(record)
            self.decision_log.store_explanation(decision_id, stored)
        return {**stored, "model": record["model"], "decision_id": decision_id}

    def _recompute(self, record: Record) -> dict[str, Any]:
        if not record["outputs"]:
            raise Conflict(
                f"decision {record['decision_id']} was made without a model output (the "
                "model failed or timed out and the policy's fallback decided): there is no "
                "model score to explain"
            )
        deployment = record["deployment"]
        config = self.config(deployment)
        name, number = record["model"]["name"], int(record["model"]["version"])
        version, explainer = self._explainer(deployment, name, number, config)
        inputs = record["inputs"]
        missing = [c for c in version.input_signature.names if c not in inputs]
        if missing:
            raise Conflict(
                f"decision {record['decision_id']} has no stored value for "
                f"{', '.join(missing)}; its model cannot be run on it again"
            )
        row = {c: inputs[c] for c in version.input_signature.names}
        try:
            (explained,) = explainer.explain([row])
        except Exception as exc:  # a stored value the model cannot take any more
            raise InvalidInput(
                f"the model {name}:{number} could not be explained on the stored inputs of "
                f"decision {record['decision_id']}: {type(exc).__name__}"
            ) from exc
        return explanation_record(
            explained, explainer, config, row, record["outcome"], computed="on_request"
        )

    def _explainer(
        self, deployment: str, name: str, number: int, config: ExplainConfig
    ) -> tuple[ModelVersion, Explainer]:
        key = (name, number, deployment)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        from bastion.explain import build_explainer  # heavy: only when first needed

        live = self._live_explainer(deployment, name, number)
        try:
            version = self.registry.get(f"{name}:{number}")
            explainer = live or build_explainer(self.registry.load(version), version, config)
        except NotFound:
            raise Conflict(
                f"model version {name}:{number} is no longer in the registry; its decisions "
                "can no longer be explained"
            ) from None
        except ArtifactError as exc:
            raise Conflict(f"model version {name}:{number} cannot be loaded: {exc}") from None
        except SpecError as exc:
            raise InvalidInput(
                f"model version {name}:{number} cannot be explained: {exc}"
            ) from None
        with self._lock:
            self._cache[key] = (version, explainer)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return version, explainer
