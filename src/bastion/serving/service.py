"""The serving service: what `/v1` and `/v2` routes call, independent of either protocol.

`score` is pure inference (the OIP routes): the model's output, recorded. `decide` (the
`/v1` decide route) adds the decision layer: the version's score calibration, the
deployment's policy (rules, bands, fallback when the model fails), review routing and
explanations, all recorded with the decision in one durable write.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bastion.errors import BastionError, ModelFailure, ModelTimeout, NotFound, Overloaded
from bastion.guard.pseudonym import Pseudonymizer
from bastion.monitor.metrics import ServingMetrics
from bastion.registry import ArtifactStore, Registry
from bastion.review import ReviewMonitor, ReviewQueue
from bastion.serving.decision_log import DecisionLog, Record, TaskRecord
from bastion.serving.decisions import Decision, Rows, assemble
from bastion.serving.deployment import LiveDeployment, Prediction
from bastion.serving.explaining import DecisionExplainer
from bastion.serving.explanations import ExplanationService
from bastion.serving.guard import GuardedBatch
from bastion.serving.ids import uuid7
from bastion.serving.policy_stage import PolicyStage, Routed, request_meta
from bastion.serving.retention import RetentionJob
from bastion.serving.subjects import SubjectService
from bastion.settings import Settings
from bastion.spec import Spec
from bastion.store import Database

if TYPE_CHECKING:
    from bastion.explain import Explainer
    from bastion.monitor.runner import MonitorRunner

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


__all__ = ["Decision", "ServingService", "build_service"]


class ServingService:
    """Loads every deployment of a spec and scores requests for them.

    Start-up resolves each deployment's model reference once and builds its policy and
    explainer; a spec that names a model that does not exist or cannot load, or whose
    policy or explanation method cannot apply to the model, fails start-up with the
    reason, rather than failing requests later.
    """

    def __init__(
        self,
        spec: Spec,
        registry: Registry,
        decision_log: DecisionLog,
        pseudonymizer: Pseudonymizer,
        metrics: ServingMetrics,
        clock: Clock,
    ) -> None:
        self.spec = spec
        self.registry = registry
        self.decision_log = decision_log
        self.pseudonymizer = pseudonymizer
        self.metrics = metrics
        self.clock = clock
        self.deployments: dict[str, LiveDeployment] = {}
        self.stages: dict[str, PolicyStage] = {}
        self.ready = False
        metrics.decision_log_pending.set_function(lambda: self.decision_log.pending)
        self.subjects = SubjectService(
            registry.database, pseudonymizer, decision_log.spool_dir, clock
        )
        self.retention = RetentionJob(
            self.subjects,
            {
                name: deployment.retention_days
                for name, deployment in spec.deployments.items()
                if deployment.retention_days is not None
            },
        )
        self.review = ReviewQueue(registry.database, spec, metrics, clock)
        self.review_monitor = ReviewMonitor(self.review, metrics)
        self.explanations = ExplanationService(registry, decision_log, spec, self._live_explainer)
        self.monitor: MonitorRunner | None = None
        if any(d.monitor is not None for d in spec.deployments.values()):
            from bastion.monitor.runner import MonitorRunner  # the numeric stack: only if used

            self.monitor = MonitorRunner(spec, registry, metrics, clock)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for name, deployment in self.spec.deployments.items():
                version = await loop.run_in_executor(None, self.registry.get, deployment.model)
                adapter = await loop.run_in_executor(None, self.registry.load, version)
                live = LiveDeployment(
                    name, deployment, version, adapter, self.metrics, self.pseudonymizer
                )
                self.deployments[name] = live
                if live.policy is not None:
                    self.stages[name] = PolicyStage(
                        name, live.policy, self.review_monitor, self.metrics
                    )
                if deployment.explain is not None:
                    from bastion.explain import build_explainer  # heavy: only when asked for

                    # May precompute tables over the model: off the event loop.
                    explainer = await loop.run_in_executor(
                        None, build_explainer, adapter, version, deployment.explain
                    )
                    live.explainer = DecisionExplainer(
                        name,
                        explainer,
                        deployment.explain,
                        self.metrics,
                        timeout_seconds=deployment.model_timeout_ms / 1000,
                    )
                logger.info("deployment %s serves %s (%s)", name, version.ref, version.framework)
        except BaseException:
            # A deployment that cannot serve fails start-up; release what was opened.
            await self._close_deployments()
            self.registry.database.dispose()
            raise
        await self.decision_log.start()
        await self.retention.start()
        await self.review_monitor.start()
        if self.monitor is not None:
            await self.monitor.start()
        # Models and start-up state live for the whole process: moving them out of the
        # collector's view keeps full collections (and their pauses) short under load.
        gc.collect()
        gc.freeze()
        self.ready = True

    async def _close_deployments(self) -> None:
        for live in self.deployments.values():
            await live.batcher.close()
            if live.explainer is not None:
                await live.explainer.close()

    async def close(self) -> None:
        """Finish queued model calls, then flush the decision log."""
        self.ready = False
        if self.monitor is not None:
            await self.monitor.stop()
        await self.review_monitor.stop()
        await self.retention.stop()
        await self._close_deployments()
        await self.decision_log.close()
        self.registry.database.dispose()

    def deployment(self, name: str) -> LiveDeployment:
        try:
            return self.deployments[name]
        except KeyError:
            known = ", ".join(sorted(self.deployments)) or "none"
            raise NotFound(f"no deployment named {name!r} (deployments: {known})") from None

    def _live_explainer(self, deployment: str, model: str, version: int) -> Explainer | None:
        live = self.deployments.get(deployment)
        if live is None or live.explainer is None:
            return None
        if (live.version.name, live.version.version) != (model, version):
            return None
        return live.explainer.explainer

    async def score(
        self,
        deployment: LiveDeployment,
        batch: GuardedBatch,
        subject_ids: list[str | None],
        *,
        api: str,
        started: float,
    ) -> list[Decision]:
        """Pure inference: score a guarded batch and record one durable decision per row
        (redacted inputs, the model's output as the outcome, the guard block)."""
        labels = (deployment.name, str(deployment.version.version), api)
        predictions = await self._predict(deployment, batch, labels, tolerate_failure=False)
        return await self._record(
            deployment, batch, subject_ids, predictions, labels, api=api, started=started
        )

    async def decide(
        self,
        deployment: LiveDeployment,
        batch: GuardedBatch,
        subject_ids: list[str | None],
        *,
        started: float,
    ) -> list[Decision]:
        """Score a guarded batch and decide each row by the deployment's policy.

        With a policy, a model that fails or times out does not fail the request: the rows
        are decided by the rules alone, else by the fallback (flagged ``fallback``).
        """
        api = "decide"
        labels = (deployment.name, str(deployment.version.version), api)
        stage = self.stages.get(deployment.name)
        predictions = await self._predict(
            deployment, batch, labels, tolerate_failure=stage is not None, calibrate=True
        )
        return await self._record(
            deployment,
            batch,
            subject_ids,
            predictions,
            labels,
            api=api,
            started=started,
            stage=stage,
            explain=True,
        )

    async def _predict(
        self,
        deployment: LiveDeployment,
        batch: GuardedBatch,
        labels: tuple[str, str, str],
        *,
        tolerate_failure: bool,
        calibrate: bool = False,
    ) -> list[Prediction | None]:
        """The rows' predictions; None for every row when the model failed or timed out and
        `tolerate_failure` (else the failure is raised as 502/504)."""
        try:
            result = await deployment.batcher.submit(
                batch.model_rows, timeout=deployment.spec.model_timeout_ms / 1000
            )
        except Overloaded as shed:
            self.metrics.requests.labels(*labels, "shed").inc()
            self.metrics.shed.labels(deployment.name, shed.reason).inc()
            raise
        except TimeoutError:
            self.metrics.requests.labels(*labels, "timeout").inc()
            if tolerate_failure:
                logger.warning(
                    "model of deployment %s timed out; deciding by the policy's fallback",
                    deployment.name,
                )
                return [None] * len(batch.model_rows)
            raise ModelTimeout(
                f"the model did not answer within {deployment.spec.model_timeout_ms:g} ms"
            ) from None
        except Exception as exc:
            self.metrics.requests.labels(*labels, "model_error").inc()
            logger.exception("model call failed for deployment %s", deployment.name)
            if tolerate_failure:
                return [None] * len(batch.model_rows)
            raise ModelFailure(
                f"the model of deployment {deployment.name} failed: {type(exc).__name__}"
            ) from exc
        return list(deployment.interpret(result, calibrate=calibrate))

    async def _record(
        self,
        deployment: LiveDeployment,
        batch: GuardedBatch,
        subject_ids: list[str | None],
        predictions: list[Prediction | None],
        labels: tuple[str, str, str],
        *,
        api: str,
        started: float,
        stage: PolicyStage | None = None,
        explain: bool = False,
    ) -> list[Decision]:
        now = self.clock()
        version = deployment.version
        ids = [uuid7() for _ in predictions]
        keys = [
            None if subject_id is None else self.pseudonymizer.pseudonymize(subject_id)
            for subject_id in subject_ids
        ]
        routed: list[Routed] | None = None
        if stage is not None:
            requests = [request_meta(deployment.name, version, s, api) for s in subject_ids]
            routed = await stage.decide(
                batch.feature_rows, predictions, requests, ids=ids, keys=keys, now=now
            )
            outcomes = [r.result.outcome for r in routed]
            sources = [r.result.source for r in routed]
        else:
            outcomes = [p.outcome if p is not None else None for p in predictions]
            sources = ["model"] * len(predictions)
        explanations: list[dict[str, Any] | None] = [None] * len(predictions)
        if explain and deployment.explainer is not None:
            explanations = await deployment.explainer.explain_decided(
                batch.model_rows, predictions, outcomes
            )
        latency_ms = (time.perf_counter() - started) * 1000
        blocks: list[dict[str, Any] | None] = [None] * len(predictions)
        tasks: list[TaskRecord] = []
        if stage is not None and routed is not None:
            blocks = [stage.block(r, p) for r, p in zip(routed, predictions, strict=True)]
            tasks = [r.task for r in routed if r.task is not None]
        decisions, records = assemble(
            deployment,
            batch,
            Rows(ids, keys, predictions, outcomes, blocks, explanations),
            now=now,
            latency_ms=latency_ms,
        )
        try:
            await self.decision_log.record(records, tasks)
        except BastionError:
            self.metrics.requests.labels(*labels, "unavailable").inc()
            raise
        if all(p is not None for p in predictions):
            self.metrics.requests.labels(*labels, "ok").inc()
        for outcome, source in zip(outcomes, sources, strict=True):
            deployment.count_decision(outcome, source)
        self.metrics.latency.labels(deployment.name, api).observe(time.perf_counter() - started)
        return decisions

    async def decision(self, decision_id: str) -> Record:
        record = await asyncio.get_running_loop().run_in_executor(
            None, self.decision_log.get, decision_id
        )
        if record is None:
            raise NotFound(f"no decision with id {decision_id!r}")
        return record

    async def explanation(self, decision_id: str) -> dict[str, Any]:
        """The decision's explanation: stored, or recomputed with the model version it used
        (and stored back)."""
        return await asyncio.get_running_loop().run_in_executor(
            None, self.explanations.explanation, decision_id
        )


def build_service(spec: Spec, settings: Settings, clock: Clock) -> ServingService:
    """Wire a service from settings: database, registry, decision log, pseudonymizer, metrics."""
    database = Database(settings.resolved_database_url)
    registry = Registry(database, ArtifactStore(settings.artifacts_dir), clock)
    metrics = ServingMetrics()
    decision_log = DecisionLog(
        database, settings.spool_dir, on_spool=metrics.decision_log_spooled.inc
    )
    pseudonymizer = Pseudonymizer.from_secret(settings.secret_key, settings.home / "secret.key")
    return ServingService(spec, registry, decision_log, pseudonymizer, metrics, clock)
