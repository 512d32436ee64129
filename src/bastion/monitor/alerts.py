"""`AlertEvaluator`: the spec's alert rules over each window's summary, with stored state.

Each deployment's ``monitor.alerts`` are CEL expressions over the window summary (the
variables ``features``, ``prediction``, ``dataset``, ``performance``, ``estimated``,
``reference`` and ``window``; see docs/alerts.md). They are compiled once, when the
evaluator is built. For every stored window each rule is evaluated and its state in
``alert_states`` moves:

- ``ok`` → ``pending`` when the condition holds, → ``firing`` once it has held for
  ``for_windows`` consecutive windows (straight to ``firing`` when ``for_windows`` is 1);
- ``pending`` or ``firing`` → ``ok`` as soon as the condition stops holding.

Every change is appended to ``alert_events`` (the history) in the same transaction, and
changes to and from ``firing`` are handed to the `Notifier` after the commit. Reading
state and history lives in :mod:`bastion.monitor.alert_views`, the summary's cleaning in
:mod:`bastion.monitor.alert_values` (both re-exported here).

A rule that fails at run time (a missing key, a type mismatch, a non-bool result) is
logged and counted in `errors`; its state stays as it was, and the other rules still run.
A window is judged once per rule: windows that end no later than the last judged one (a
restarted job, a second replica) change nothing. On PostgreSQL one transaction-scoped
advisory lock per deployment serialises replicas; on SQLite the write lock does.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import cel
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bastion.errors import FieldError, SpecError
from bastion.monitor.alert_values import clean_summary, referenced_values
from bastion.monitor.alert_views import AlertEvent, AlertStatus, alert_history, alert_states
from bastion.monitor.config import AlertRule
from bastion.policy.rules import compile_error, runtime_message
from bastion.spec import Spec
from bastion.store import Database
from bastion.store.tables import AlertEventRow, AlertStateRow

if TYPE_CHECKING:
    from bastion.monitor.notify import Notifier

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
State = Literal["ok", "pending", "firing"]

__all__ = [
    "AlertEvaluator",
    "AlertEvent",
    "AlertStatus",
    "Transition",
    "Window",
    "alert_history",
    "alert_states",
    "clean_summary",
    "referenced_values",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Window(Protocol):
    """What the evaluator reads from a window (`bastion.monitor.windows.WindowResult`)."""

    @property
    def deployment(self) -> str: ...
    @property
    def model_name(self) -> str: ...
    @property
    def model_version(self) -> int: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime: ...
    @property
    def rows(self) -> int: ...


Summarize = Callable[[Any], Mapping[str, Any]]


@dataclass(frozen=True)
class Transition:
    """One change of one alert's state, as stored in ``alert_events`` (``event_id``)."""

    event_id: int
    deployment: str
    rule: str
    severity: str
    from_state: State
    to_state: State
    at: datetime
    summary: str | None
    value: dict[str, Any]
    window: dict[str, Any]

    @property
    def notify(self) -> bool:
        """Firing and resolving are worth a message; pending and its retreat are not."""
        return self.to_state == "firing" or self.from_state == "firing"


@dataclass(frozen=True)
class _Compiled:
    rule: AlertRule
    program: cel.Program


@dataclass
class _Outcome:
    rule: AlertRule
    holds: bool | None
    error: str | None = None
    value: dict[str, Any] = field(default_factory=dict)


class AlertEvaluator:
    """Evaluates each deployment's alert rules over windows and keeps their state.

    `evaluate` and `evaluate_summary` block on the database: call them from a worker
    thread. `summarize` turns a window result into the CEL summary (the SERVICE helper's
    ``window_summary`` with the version's reference metrics); `notifier` receives the
    transitions worth a message after they are committed (None: history only).
    """

    def __init__(
        self,
        database: Database,
        spec: Spec,
        notifier: Notifier | None = None,
        clock: Clock = utcnow,
        *,
        summarize: Summarize | None = None,
    ) -> None:
        self.database = database
        self.spec = spec
        self.notifier = notifier
        self.clock = clock
        self._summarize = summarize
        #: run-time rule failures, by (deployment, rule)
        self.errors: Counter[tuple[str, str]] = Counter()
        self._rules = {
            name: _compile(name, d.monitor.alerts)
            for name, d in spec.deployments.items()
            if d.monitor
        }

    def rules(self, deployment: str) -> tuple[AlertRule, ...]:
        return tuple(c.rule for c in self._rules.get(deployment, ()))

    def evaluate(self, result: Window) -> list[Transition]:
        """Judge one stored window; a window below the deployment's ``min_rows`` is skipped."""
        deployment = self.spec.deployments.get(result.deployment)
        if (
            deployment is None
            or deployment.monitor is None
            or not self._rules.get(result.deployment)
        ):
            return []
        if result.rows < deployment.monitor.min_rows:
            return []
        if self._summarize is None:
            raise RuntimeError("AlertEvaluator.evaluate needs summarize= (the window summary)")
        window = {
            "model_name": result.model_name,
            "model_version": result.model_version,
            "started_at": result.started_at.isoformat(),
            "ended_at": result.ended_at.isoformat(),
            "rows": result.rows,
        }
        return self.evaluate_summary(
            result.deployment, self._summarize(result), window=window, ended_at=result.ended_at
        )

    def evaluate_summary(
        self,
        deployment: str,
        summary: Mapping[str, Any],
        *,
        window: Mapping[str, Any],
        ended_at: datetime,
    ) -> list[Transition]:
        """Evaluate `deployment`'s rules over `summary`, store the new states, notify.

        `window` describes the window in history and messages; `ended_at` orders windows
        (a window ending no later than a rule's last judged one leaves that rule alone).
        """
        compiled = self._rules.get(deployment, ())
        if not compiled:
            return []
        activation = clean_summary(summary)
        outcomes = self._run(deployment, compiled, activation)
        with self.database.transaction() as session:
            transitions = _apply(
                session, deployment, outcomes, dict(window), ended_at, self.clock()
            )
        if self.notifier is not None:
            for transition in transitions:
                if transition.notify:
                    self.notifier.submit(transition)
        return transitions

    def _run(
        self, deployment: str, compiled: Sequence[_Compiled], activation: dict[str, Any]
    ) -> list[_Outcome]:
        try:
            context = cel.Context(variables=activation)
        except Exception as exc:  # a value CEL cannot represent: no rule can run
            message = runtime_message(exc)
            return [self._failed(deployment, c.rule, message) for c in compiled]
        outcomes = []
        for c in compiled:
            try:
                result = c.program.execute(context)
            except Exception as exc:  # a run-time failure is counted, never raised
                outcomes.append(self._failed(deployment, c.rule, runtime_message(exc)))
                continue
            if not isinstance(result, bool):
                message = f"expected a bool result, got {type(result).__name__} {result!r}"
                outcomes.append(self._failed(deployment, c.rule, message))
                continue
            outcomes.append(
                _Outcome(c.rule, result, value=referenced_values(c.rule.when, activation))
            )
        return outcomes

    def _failed(self, deployment: str, rule: AlertRule, message: str) -> _Outcome:
        self.errors[(deployment, rule.name)] += 1
        logger.warning("alert rule %s of %s failed to evaluate: %s", rule.name, deployment, message)
        return _Outcome(rule, None, error=message)


def _compile(deployment: str, rules: Sequence[AlertRule]) -> tuple[_Compiled, ...]:
    compiled, errors = [], []
    for i, rule in enumerate(rules):
        try:
            compiled.append(_Compiled(rule, cel.compile(rule.when)))
        except Exception as exc:  # the cel library raises ValueError; be safe at the edge
            error = compile_error(i, rule.when, exc)
            errors.append(
                FieldError(f"deployments.{deployment}.monitor.alerts[{i}].when", error.message)
            )
    if errors:
        raise SpecError(f"invalid alert rules of {deployment}", errors)
    return tuple(compiled)


def _lock(session: Session, deployment: str) -> None:
    """Serialise evaluations of one deployment across replicas until the commit."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE alert_states SET id = id WHERE 0 = 1"))
    else:
        session.execute(
            select(func.pg_advisory_xact_lock(func.hashtext(f"bastion.alerts:{deployment}")))
        )


def _apply(
    session: Session,
    deployment: str,
    outcomes: Sequence[_Outcome],
    window: dict[str, Any],
    ended_at: datetime,
    now: datetime,
) -> list[Transition]:
    _lock(session, deployment)
    states = {
        row.name: row
        for row in session.scalars(
            select(AlertStateRow).where(AlertStateRow.deployment == deployment)
        )
    }
    events: list[tuple[AlertEventRow, _Outcome]] = []
    for outcome in outcomes:
        rule = outcome.rule
        row = states.get(rule.name)
        if row is None:
            row = AlertStateRow(
                deployment=deployment,
                name=rule.name,
                state="ok",
                consecutive=0,
                since=now,
                updated_at=now,
                details={},
            )
            session.add(row)
        details = dict(row.details or {})
        last = details.get("window_ended_at")
        if last is not None and datetime.fromisoformat(last) >= ended_at:
            continue  # judged already (a restart or another replica)
        details["window_ended_at"] = ended_at.isoformat()
        row.updated_at = now
        if outcome.holds is None:
            details["error"] = outcome.error
            row.details = details
            continue
        details.pop("error", None)
        details.update(value=outcome.value, window=window)
        row.details = details
        before = _state(row.state)
        if outcome.holds:
            row.consecutive += 1
            after: State = (
                "firing" if before == "firing" or row.consecutive >= rule.for_windows else "pending"
            )
        else:
            row.consecutive = 0
            after = "ok"
        if after == before:
            continue
        row.state, row.since = after, now
        event = AlertEventRow(
            deployment=deployment,
            name=rule.name,
            at=now,
            from_state=before,
            to_state=after,
            details={
                "severity": rule.severity,
                "summary": rule.summary,
                "value": outcome.value,
                "window": window,
            },
            notified_at=None,
            attempts=0,
        )
        session.add(event)
        events.append((event, outcome))
    session.flush()
    return [
        Transition(
            event_id=event.id,
            deployment=deployment,
            rule=o.rule.name,
            severity=o.rule.severity,
            from_state=_state(event.from_state),
            to_state=_state(event.to_state),
            at=now,
            summary=o.rule.summary,
            value=o.value,
            window=window,
        )
        for event, o in events
    ]


def _state(value: str) -> State:
    if value not in ("ok", "pending", "firing"):
        raise ValueError(f"unknown alert state {value!r}")
    return value  # type: ignore[return-value]
