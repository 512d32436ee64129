"""Read one deployment's decisions of one model version in bounded chunks, with feedback.

A window may hold a million decisions; they are read `chunk_rows` at a time by keyset
pagination on ``(created_at, id)`` (the ``ix_decisions_deployment_created_at`` index), so
memory stays bounded and each query is cheap. Each chunk comes with the latest feedback
label of its decisions (joined on ``decision_id``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from bastion.store import Database
from bastion.store.tables import DecisionRow, FeedbackRow


@dataclass(frozen=True)
class Bounds:
    """Which decisions a window holds: one model version, ``start <= created_at < end``;
    with `first` set, the window starts at that decision (``(created_at, id) >= first``)."""

    deployment: str
    model_name: str
    model_version: int
    start: datetime
    end: datetime
    first: tuple[datetime, str] | None = None
    #: whether decisions at exactly `end` belong to the window (a rows window: yes)
    end_inclusive: bool = False


@dataclass(frozen=True)
class Chunk:
    """Decisions in log order: ids, redacted inputs, outputs, and the latest feedback
    label of each decision that has one (with its review sampling probability, if any)."""

    ids: list[str]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    labels: dict[str, tuple[Any, float | None]]


def _where(bounds: Bounds) -> ColumnElement[bool]:
    upper = (
        DecisionRow.created_at <= bounds.end
        if bounds.end_inclusive
        else DecisionRow.created_at < bounds.end
    )
    clauses = [
        DecisionRow.deployment == bounds.deployment,
        DecisionRow.model_name == bounds.model_name,
        DecisionRow.model_version == bounds.model_version,
        DecisionRow.created_at >= bounds.start,
        upper,
    ]
    if bounds.first is not None:
        clauses.append(_after(*bounds.first, inclusive=True))
    return and_(*clauses)


def _after(at: datetime, decision_id: str, *, inclusive: bool) -> ColumnElement[bool]:
    same = DecisionRow.id >= decision_id if inclusive else DecisionRow.id > decision_id
    # The plain lower bound lets the (deployment, created_at) index start the scan at `at`;
    # the OR alone makes SQLite scan from the window's start for every chunk.
    return and_(
        DecisionRow.created_at >= at,
        or_(DecisionRow.created_at > at, and_(DecisionRow.created_at == at, same)),
    )


def count(database: Database, bounds: Bounds) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).where(_where(bounds))) or 0)


def chunks(database: Database, bounds: Bounds, chunk_rows: int) -> Iterator[Chunk]:
    """The window's decisions, oldest first, `chunk_rows` at a time (one short transaction
    per chunk, so a long window never holds a connection or a snapshot for its whole read)."""
    after: tuple[datetime, str] | None = None
    while True:
        query = select(
            DecisionRow.id, DecisionRow.created_at, DecisionRow.inputs, DecisionRow.outputs
        ).where(_where(bounds))
        if after is not None:
            query = query.where(_after(*after, inclusive=False))
        query = query.order_by(DecisionRow.created_at, DecisionRow.id).limit(chunk_rows)
        with database.transaction() as session:
            rows = session.execute(query).all()
            if not rows:
                return
            first, last = (rows[0].created_at, rows[0].id), (rows[-1].created_at, rows[-1].id)
            labels = _labels(session, bounds, first, last)
        yield Chunk(
            [row.id for row in rows],
            [row.inputs or {} for row in rows],
            [row.outputs or {} for row in rows],
            labels,
        )
        after = last


def _labels(
    session: Session, bounds: Bounds, first: tuple[datetime, str], last: tuple[datetime, str]
) -> dict[str, tuple[Any, float | None]]:
    """The latest feedback of each decision of the chunk from `first` to `last` (a later
    label corrects an earlier one). Joined on the same index range as the chunk, rather
    than an IN list of thousands of ids."""
    upto = or_(
        DecisionRow.created_at < last[0],
        and_(DecisionRow.created_at == last[0], DecisionRow.id <= last[1]),
    )
    query = (
        select(FeedbackRow.decision_id, FeedbackRow.label, FeedbackRow.sampling_probability)
        .join(DecisionRow, DecisionRow.id == FeedbackRow.decision_id)
        .where(_where(bounds), _after(*first, inclusive=True), DecisionRow.created_at <= last[0])
        .where(upto)
        .order_by(FeedbackRow.created_at, FeedbackRow.id)
    )
    return {
        row.decision_id: (row.label, row.sampling_probability) for row in session.execute(query)
    }


def latest_version(
    database: Database, deployment: str, end: datetime, *, inclusive: bool, start: datetime | None
) -> tuple[str, int] | None:
    """The model version of the deployment's newest decision before `end` (after `start`)."""
    upper = DecisionRow.created_at <= end if inclusive else DecisionRow.created_at < end
    query = select(DecisionRow.model_name, DecisionRow.model_version).where(
        DecisionRow.deployment == deployment, upper
    )
    if start is not None:
        query = query.where(DecisionRow.created_at >= start)
    query = query.order_by(DecisionRow.created_at.desc(), DecisionRow.id.desc()).limit(1)
    with database.transaction() as session:
        row = session.execute(query).first()
    return None if row is None else (row.model_name, row.model_version)


def nth_newest(
    database: Database, deployment: str, model: tuple[str, int], end: datetime, rows: int
) -> tuple[datetime, str] | None:
    """``(created_at, id)`` of the `rows`-th newest decision of one version up to `end`
    (the oldest one when there are fewer)."""
    base = select(DecisionRow.created_at, DecisionRow.id).where(
        DecisionRow.deployment == deployment,
        DecisionRow.model_name == model[0],
        DecisionRow.model_version == model[1],
        DecisionRow.created_at <= end,
    )
    with database.transaction() as session:
        row = session.execute(
            base.order_by(DecisionRow.created_at.desc(), DecisionRow.id.desc())
            .offset(rows - 1)
            .limit(1)
        ).first()
        if row is None:
            row = session.execute(base.order_by(DecisionRow.created_at, DecisionRow.id)).first()
    return None if row is None else (row.created_at, row.id)
