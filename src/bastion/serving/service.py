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
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bastion.errors import BastionError, ModelFailure, ModelTimeout, NotFound, Overloaded
from bastion.guard.pseudonym import Pseudonymizer
from bastion.monitor.metrics import ServingMetrics
from bastion.policy.engine import rule_features
from bastion.registry import ArtifactStore, Registry
from bastion.review import ReviewMonitor, ReviewQueue
from bastion.serving.decision_log import DecisionLog, Record, TaskRecord
from bastion.serving.deployment import LiveDeployment, Prediction
from bastion.serving.explaining import DecisionExplainer
from bastion.serving.explanations import ExplanationService
from bastion.serving.guard import GuardedBatch
from bastion.serving.ids import uuid7
from bastion.serving.policy_stage import PolicyStage, Routed
from bastion.serving.retention import RetentionJob
from bastion.serving.subjects import SubjectService
from bastion.settings import Settings
from bastion.spec import Spec
from bastion.store import Database

if TYPE_CHECKING:
    from bastion.explain import Explainer

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


#: requests with more rows than this evaluate their policy in a worker thread
INLINE_POLICY_ROWS = 32


@dataclass(frozen=True)
class Decision:
    decision_id: str
    deployment: str
    model_name: str
    model_version: int
    output: dict[str, Any]
    outcome: Any
    latency_ms: float
    guard: dict[str, Any]
    #: the ``policy`` block (None without a policy, and on the pure inference path)
    policy: dict[str, Any] | None = None
    #: reason codes of an explained adverse decision
    reasons: list[dict[str, Any]] | None = None

    def as_response(self) -> dict[str, Any]:
        response = {
            "decision_id": self.decision_id,
            "deployment": self.deployment,
            "model": {"name": self.model_name, "version": self.model_version},
            "prediction": self.output,
            "outcome": self.outcome,
            "guard": self.guard,
            "latency_ms": round(self.latency_ms, 3),
        }
        if self.policy is not None:
            response["policy"] = self.policy
            response["fallback"] = self.policy["fallback"]
        if self.reasons is not None:
            response["reasons"] = self.reasons
        return response


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

    async def _policy(
        self,
        stage: PolicyStage,
        deployment: LiveDeployment,
        batch: GuardedBatch,
        subject_ids: list[str | None],
        predictions: list[Prediction | None],
        *,
        api: str,
        ids: list[str],
        keys: list[str | None],
        now: datetime,
    ) -> list[Routed]:
        version = deployment.version
        features = [rule_features(row) for row in batch.feature_rows]
        requests = [
            {
                "deployment": deployment.name,
                "model": {"name": version.name, "version": version.version},
                "subject_present": subject_id is not None,
                "api": api,
            }
            for subject_id in subject_ids
        ]
        if len(features) > INLINE_POLICY_ROWS:
            results = await asyncio.get_running_loop().run_in_executor(
                None, stage.evaluate, features, predictions, requests
            )
        else:
            results = stage.evaluate(features, predictions, requests)
        return [
            stage.route(result, prediction, f, r, decision_id=i, subject_key=key, now=now)
            for result, prediction, f, r, i, key in zip(
                results, predictions, features, requests, ids, keys, strict=True
            )
        ]

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
            routed = await self._policy(
                stage,
                deployment,
                batch,
                subject_ids,
                predictions,
                api=api,
                ids=ids,
                keys=keys,
                now=now,
            )
            outcomes = [r.result.outcome for r in routed]
            sources = [r.result.source for r in routed]
        else:
            outcomes = [p.outcome if p is not None else None for p in predictions]
            sources = ["model"] * len(predictions)
        explanations = await self._explanations(
            deployment if explain else None, batch, predictions, outcomes
        )
        latency_ms = (time.perf_counter() - started) * 1000
        decisions: list[Decision] = []
        records: list[Record] = []
        tasks: list[TaskRecord] = []
        for i, prediction in enumerate(predictions):
            output = {} if prediction is None else prediction.output
            block = None
            if stage is not None and routed is not None:
                block = stage.block(routed[i], prediction)
                task = routed[i].task
                if task is not None:
                    tasks.append(task)
            explanation = explanations[i]
            reasons = None
            if explanation is not None and explanation["reasons"]:
                reasons = explanation["reasons"]
            decisions.append(
                Decision(
                    decision_id=ids[i],
                    deployment=deployment.name,
                    model_name=version.name,
                    model_version=version.version,
                    output=output,
                    outcome=outcomes[i],
                    latency_ms=latency_ms,
                    guard=batch.guards[i],
                    policy=block,
                    reasons=reasons,
                )
            )
            records.append(
                {
                    "id": ids[i],
                    "created_at": now,
                    "deployment": deployment.name,
                    "model_name": version.name,
                    "model_version": version.version,
                    "subject_key": keys[i],
                    "inputs": batch.stored_rows[i],
                    "outputs": output,
                    "outcome": outcomes[i],
                    "latency_ms": latency_ms,
                    "guard": batch.guards[i],
                    "policy": block,
                    "explanation": explanation,
                }
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

    async def _explanations(
        self,
        deployment: LiveDeployment | None,
        batch: GuardedBatch,
        predictions: list[Prediction | None],
        outcomes: list[Any],
    ) -> list[dict[str, Any] | None]:
        """Explanations of the rows the deployment explains at decision time (None else)."""
        out: list[dict[str, Any] | None] = [None] * len(predictions)
        explainer = None if deployment is None else deployment.explainer
        if explainer is None:
            return out
        wanted = [
            i
            for i, (prediction, outcome) in enumerate(zip(predictions, outcomes, strict=True))
            if prediction is not None and explainer.wants(outcome)
        ]
        explained = await explainer.explain(
            [batch.model_rows[i] for i in wanted], [outcomes[i] for i in wanted]
        )
        for i, explanation in zip(wanted, explained, strict=True):
            out[i] = explanation
        return out

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
