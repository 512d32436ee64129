"""Explanations on the request path: contributions and reason codes for decided rows.

`DecisionExplainer` wraps one deployment's explainer (built once at start-up) in a
micro-batcher of its own: the rows of concurrent requests that need an explanation are
explained together in one worker thread, off the event loop, after the policy decided
which rows need one (``explain.mode``: ``all`` rows, or ``adverse`` outcomes only).

An explanation is never worth a failed decision: if the explainer fails or takes longer
than the deployment's model timeout, the decision is recorded without one (it can still be
computed later through ``GET /v1/decisions/{id}/explanation``) and the failure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bastion.explain.config import ExplainConfig
from bastion.monitor.metrics import ServingMetrics
from bastion.runtime.batcher import MicroBatcher, Result

if TYPE_CHECKING:
    # `bastion.explain` pulls in numerical libraries: imported where first needed, so a
    # server without explanations starts without them.
    from bastion.explain import Explainer, Explanation

logger = logging.getLogger(__name__)

Row = Mapping[str, Any]
#: most rows explained in one call; larger requests are still one call
MAX_EXPLAIN_BATCH = 256


def is_adverse(config: ExplainConfig, outcome: Any) -> bool:
    return isinstance(outcome, str) and outcome in config.adverse_outcomes


def explanation_record(
    explanation: Explanation,
    explainer: Explainer,
    config: ExplainConfig,
    features: Row,
    outcome: Any,
    *,
    computed: str,
) -> dict[str, Any]:
    """What ``decisions.explanation`` holds: the explanation, the reason codes of an adverse
    outcome (empty otherwise) and when it was computed (``at_decision``/``on_request``)."""
    from bastion.explain import reason_codes

    record: dict[str, Any] = explanation.to_dict()
    adverse = is_adverse(config, outcome)
    record["reasons"] = (
        reason_codes(explanation, config, features, explainer.reference) if adverse else []
    )
    record["computed"] = computed
    return record


class DecisionExplainer:
    """One deployment's explainer, batched and bounded in time."""

    def __init__(
        self,
        name: str,
        explainer: Explainer,
        config: ExplainConfig,
        metrics: ServingMetrics,
        *,
        timeout_seconds: float,
    ) -> None:
        self.name = name
        self.explainer = explainer
        self.config = config
        self.timeout_seconds = timeout_seconds
        duration = metrics.explanation_duration.labels(name, explainer.method)
        self._batcher: MicroBatcher[Row] = MicroBatcher(
            self._explain_rows,
            max_batch_size=MAX_EXPLAIN_BATCH,
            max_wait_ms=0,
            name=f"{name}-explain",
            on_batch=lambda _rows, seconds: duration.observe(seconds),
        )

    def wants(self, outcome: Any) -> bool:
        """Whether a row decided `outcome` is explained at decision time."""
        if self.config.mode == "all":
            return True
        return self.config.mode == "adverse" and is_adverse(self.config, outcome)

    def _explain_rows(self, rows: list[Row]) -> Result:
        explained = self.explainer.explain(rows)
        # An object array carries the explanations through the batcher's split by request.
        out = np.empty(len(explained), dtype=object)
        out[:] = explained
        return out

    async def explain(
        self, rows: Sequence[Row], outcomes: Sequence[Any]
    ) -> list[dict[str, Any] | None]:
        """``decisions.explanation`` for each row (None when it could not be computed)."""
        if not rows:
            return []
        try:
            explained = await self._batcher.submit(list(rows), timeout=self.timeout_seconds)
        except TimeoutError:
            logger.warning(
                "explanations for deployment %s took over %.0f ms; decided without them",
                self.name,
                self.timeout_seconds * 1000,
            )
            return [None] * len(rows)
        except Exception:
            logger.exception("explaining decisions of deployment %s failed", self.name)
            return [None] * len(rows)
        return [
            explanation_record(e, self.explainer, self.config, row, outcome, computed="at_decision")
            for e, row, outcome in zip(explained.tolist(), rows, outcomes, strict=True)
        ]

    async def explain_decided(
        self,
        rows: Sequence[Row],
        predictions: Sequence[object | None],
        outcomes: Sequence[Any],
    ) -> list[dict[str, Any] | None]:
        """Explanations of the rows the mode selects (scored rows only); None for the rest."""
        out: list[dict[str, Any] | None] = [None] * len(rows)
        wanted = [
            i
            for i, (prediction, outcome) in enumerate(zip(predictions, outcomes, strict=True))
            if prediction is not None and self.wants(outcome)
        ]
        explained = await self.explain([rows[i] for i in wanted], [outcomes[i] for i in wanted])
        for i, explanation in zip(wanted, explained, strict=True):
            out[i] = explanation
        return out

    async def close(self) -> None:
        await self._batcher.close()
