"""The serving service: what `/v1` and `/v2` routes call, independent of either protocol."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.errors import BastionError, ModelFailure, ModelTimeout, NotFound, Overloaded
from bastion.guard.pseudonym import Pseudonymizer
from bastion.monitor.metrics import ServingMetrics
from bastion.registry import ArtifactStore, Registry
from bastion.serving.decision_log import DecisionLog, Record
from bastion.serving.deployment import LiveDeployment
from bastion.serving.guard import GuardedBatch
from bastion.serving.ids import uuid7
from bastion.serving.retention import RetentionJob
from bastion.serving.subjects import SubjectService
from bastion.settings import Settings
from bastion.spec import Spec
from bastion.store import Database

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


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

    def as_response(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "deployment": self.deployment,
            "model": {"name": self.model_name, "version": self.model_version},
            "prediction": self.output,
            "outcome": self.outcome,
            "guard": self.guard,
            "latency_ms": round(self.latency_ms, 3),
        }


class ServingService:
    """Loads every deployment of a spec and scores requests for them.

    Start-up resolves each deployment's model reference once; a spec that names a model that
    does not exist or cannot load fails start-up with the reason, rather than failing
    requests later.
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

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for name, deployment in self.spec.deployments.items():
                version = await loop.run_in_executor(None, self.registry.get, deployment.model)
                adapter = await loop.run_in_executor(None, self.registry.load, version)
                self.deployments[name] = LiveDeployment(
                    name, deployment, version, adapter, self.metrics, self.pseudonymizer
                )
                logger.info("deployment %s serves %s (%s)", name, version.ref, version.framework)
        except BaseException:
            # A deployment that cannot serve fails start-up; release what was opened.
            for live in self.deployments.values():
                await live.batcher.close()
            self.registry.database.dispose()
            raise
        await self.decision_log.start()
        await self.retention.start()
        # Models and start-up state live for the whole process: moving them out of the
        # collector's view keeps full collections (and their pauses) short under load.
        gc.collect()
        gc.freeze()
        self.ready = True

    async def close(self) -> None:
        """Finish queued model calls, then flush the decision log."""
        self.ready = False
        await self.retention.stop()
        for deployment in self.deployments.values():
            await deployment.batcher.close()
        await self.decision_log.close()
        self.registry.database.dispose()

    def deployment(self, name: str) -> LiveDeployment:
        try:
            return self.deployments[name]
        except KeyError:
            known = ", ".join(sorted(self.deployments)) or "none"
            raise NotFound(f"no deployment named {name!r} (deployments: {known})") from None

    async def score(
        self,
        deployment: LiveDeployment,
        batch: GuardedBatch,
        subject_ids: list[str | None],
        *,
        api: str,
        started: float,
    ) -> list[Decision]:
        """Score a guarded batch, record one durable decision per row (redacted inputs and
        the guard block), return them in order."""
        labels = (deployment.name, str(deployment.version.version), api)
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
            raise ModelTimeout(
                f"the model did not answer within {deployment.spec.model_timeout_ms:g} ms"
            ) from None
        except Exception as exc:
            self.metrics.requests.labels(*labels, "model_error").inc()
            logger.exception("model call failed for deployment %s", deployment.name)
            raise ModelFailure(
                f"the model of deployment {deployment.name} failed: {type(exc).__name__}"
            ) from exc
        predictions = deployment.interpret(result)
        now = self.clock()
        latency_ms = (time.perf_counter() - started) * 1000
        decisions: list[Decision] = []
        records: list[Record] = []
        version = deployment.version
        for row, guard, subject_id, prediction in zip(
            batch.stored_rows, batch.guards, subject_ids, predictions, strict=True
        ):
            decision = Decision(
                decision_id=uuid7(),
                deployment=deployment.name,
                model_name=version.name,
                model_version=version.version,
                output=prediction.output,
                outcome=prediction.outcome,
                latency_ms=latency_ms,
                guard=guard,
            )
            decisions.append(decision)
            records.append(
                {
                    "id": decision.decision_id,
                    "created_at": now,
                    "deployment": deployment.name,
                    "model_name": version.name,
                    "model_version": version.version,
                    "subject_key": (
                        None if subject_id is None else self.pseudonymizer.pseudonymize(subject_id)
                    ),
                    "inputs": row,
                    "outputs": prediction.output,
                    "outcome": prediction.outcome,
                    "latency_ms": latency_ms,
                    "guard": guard,
                }
            )
        try:
            await self.decision_log.record(records)
        except BastionError:
            self.metrics.requests.labels(*labels, "unavailable").inc()
            raise
        self.metrics.requests.labels(*labels, "ok").inc()
        self.metrics.latency.labels(deployment.name, api).observe(time.perf_counter() - started)
        return decisions

    async def decision(self, decision_id: str) -> Record:
        record = await asyncio.get_running_loop().run_in_executor(
            None, self.decision_log.get, decision_id
        )
        if record is None:
            raise NotFound(f"no decision with id {decision_id!r}")
        return record


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
