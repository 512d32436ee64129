from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, func, insert, select, text, update

from bastion.errors import InvalidInput
from bastion.store import Database
from bastion.store.audit import (
    GENESIS_HASH,
    AuditEvent,
    AuditLog,
    event_hash,
    state_digest,
)
from bastion.store.tables import AuditEventRow

T0 = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
AUDIT = AuditEventRow.metadata.tables["audit_events"]


def _append(database: Database, n: int = 1, **fields: Any) -> list[AuditEvent]:
    events = []
    with database.transaction() as session:
        for i in range(n):
            values: dict[str, Any] = {
                "actor": "alice",
                "action": "model.registered",
                "target": f"credit:{i + 1}",
                "after": {"version": i + 1},
                "details": {"sha256": f"{i:064d}"},
                "at": T0 + timedelta(minutes=i),
                **fields,
            }
            events.append(AuditLog.append(session, **values))
    return events


def _verify(database: Database) -> Any:
    with database.transaction() as session:
        return AuditLog.verify(session)


def _forge(database: Database, *, id: int, prev_hash: str, hash: str | None = None) -> None:
    """Insert a row behind AuditLog's back, with a hash that is valid for its contents."""
    fields: dict[str, Any] = {
        "id": id,
        "at": T0,
        "actor": "mallory",
        "action": "key.created",
        "target": "key-1",
        "before_digest": None,
        "after_digest": None,
        "details": {},
    }
    with database.transaction() as session:
        session.execute(
            insert(AUDIT).values(
                **fields, prev_hash=prev_hash, hash=hash or event_hash(prev_hash, **fields)
            )
        )


def _shift_ids_from(database: Database, first: int) -> None:
    """Make room at `first` by renumbering every later row (two steps keep ids unique)."""
    with database.transaction() as session:
        session.execute(update(AUDIT).where(AUDIT.c.id >= first).values(id=AUDIT.c.id + 1000))
        session.execute(update(AUDIT).where(AUDIT.c.id >= 1000).values(id=AUDIT.c.id - 999))


def test_append_links_each_event_to_the_previous_one(database: Database) -> None:
    first, second, third = _append(database, 3)

    assert [first.id, second.id, third.id] == [1, 2, 3]
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash


def test_append_hash_follows_the_documented_construction(database: Database) -> None:
    event = _append(database, details={"b": 1, "a": [1, 2]})[0]

    body = orjson.dumps(
        {
            "id": 1,
            "at": "2026-11-26T12:00:00.123456+00:00",
            "actor": "alice",
            "action": "model.registered",
            "target": "credit:1",
            "before_digest": None,
            "after_digest": event.after_digest,
            "details": {"a": [1, 2], "b": 1},
        },
        option=orjson.OPT_SORT_KEYS,
    )
    assert event.hash == hashlib.sha256(GENESIS_HASH.encode() + body).hexdigest()


def test_append_stores_only_digests_of_before_and_after(database: Database) -> None:
    state = {"stage": "production", "tags": {"team": "risk", "cost": "low"}}

    event = _append(database, before=None, after=state)[0]

    reordered = {"tags": {"cost": "low", "team": "risk"}, "stage": "production"}
    expected = hashlib.sha256(orjson.dumps(reordered, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert event.before_digest is None
    assert event.after_digest == expected == state_digest(state)
    with database.transaction() as session:
        row = session.execute(select(AUDIT)).one()
    assert "production" not in str(tuple(row))


def test_append_stores_details_as_they_read_back(database: Database) -> None:
    _append(database, details={"ids": (1, 2), "at": T0})

    with database.transaction() as session:
        (event,) = AuditLog.list(session)

    assert event.details == {"ids": [1, 2], "at": "2026-11-26T12:00:00.123456+00:00"}
    assert _verify(database).intact


def _append_then_fail(database: Database) -> None:
    with database.transaction() as session:
        AuditLog.append(session, actor="alice", action="model.registered", target="x", at=T0)
        raise KeyError("the change failed")


def test_append_rolls_back_with_the_callers_transaction(database: Database) -> None:
    with pytest.raises(KeyError):
        _append_then_fail(database)

    assert _verify(database).events == 0
    assert _append(database)[0].id == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"at": datetime(2026, 1, 1)}, "at must be a timezone-aware datetime"),
        ({"actor": ""}, "actor must be 1 to 128 characters, got 0"),
        ({"target": "x" * 257}, "target must be 1 to 256 characters, got 257"),
        ({"details": {"value": {1, 2}}}, "must be JSON-able"),
        ({"after": object()}, "must be JSON-able"),
    ],
)
def test_append_refuses_invalid_fields(
    database: Database, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        _append(database, **fields)


def test_list_returns_newest_first_with_a_limit(database: Database) -> None:
    _append(database, 5)

    with database.transaction() as session:
        events = AuditLog.list(session, limit=3)

    assert [e.id for e in events] == [5, 4, 3]


def test_list_filters_by_action_actor_target_and_time(database: Database) -> None:
    _append(database, 3)
    _append(database, 1, actor="bob", action="model.stage_changed", target="credit:2")

    with database.transaction() as session:
        by_action = AuditLog.list(session, action="model.stage_changed")
        by_actor = AuditLog.list(session, actor="alice")
        by_target = AuditLog.list(session, target="credit:2")
        by_time = AuditLog.list(
            session, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2)
        )

    assert [e.id for e in by_action] == [4]
    assert [e.id for e in by_actor] == [3, 2, 1]
    assert [e.id for e in by_target] == [4, 2]
    assert [e.id for e in by_time] == [2]


def test_list_refuses_a_limit_below_one(database: Database) -> None:
    with (
        pytest.raises(InvalidInput, match="limit must be at least 1, got 0"),
        database.transaction() as session,
    ):
        AuditLog.list(session, limit=0)


def test_verify_reports_an_empty_log_intact(database: Database) -> None:
    report = _verify(database)

    assert report.intact
    assert (report.events, report.head_hash) == (0, GENESIS_HASH)


def test_verify_reports_an_untouched_chain_intact(database: Database) -> None:
    events = _append(database, 4)

    report = _verify(database)

    assert report.intact
    assert report.events == 4
    assert report.head_hash == events[-1].hash


def test_verify_detects_a_column_edited_with_raw_sql(database: Database) -> None:
    _append(database, 4)
    with database.transaction() as session:
        session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = 2"))

    report = _verify(database)

    assert report.broken is not None
    assert (report.broken.id, report.broken.kind) == (2, "edited")
    assert "event 2 was edited" in report.broken.reason
    assert report.events == 1


@pytest.mark.parametrize(
    "values",
    [
        {"at": T0 + timedelta(microseconds=1)},
        {"action": "model.deleted"},
        {"target": "credit:9"},
        {"after_digest": "0" * 64},
        {"details": {"sha256": "forged"}},
        {"hash": "f" * 64},
    ],
)
def test_verify_detects_every_edited_column(database: Database, values: dict[str, Any]) -> None:
    _append(database, 4)
    with database.transaction() as session:
        session.execute(update(AUDIT).where(AUDIT.c.id == 3).values(**values))

    report = _verify(database)

    assert report.broken is not None
    assert (report.broken.id, report.broken.kind) == (3, "edited")


def test_verify_detects_a_forged_row_appended_with_a_wrong_prev_hash(
    database: Database,
) -> None:
    _append(database, 3)
    _forge(database, id=4, prev_hash="e" * 64)

    report = _verify(database)

    assert report.broken is not None
    assert (report.broken.id, report.broken.kind) == (4, "inserted")
    assert report.events == 3


def test_verify_detects_a_row_inserted_in_the_middle(database: Database) -> None:
    events = _append(database, 4)
    _shift_ids_from(database, 3)
    _forge(database, id=3, prev_hash=events[1].hash)

    report = _verify(database)

    assert report.broken is not None
    assert (report.broken.id, report.broken.kind) == (3, "inserted")
    assert "event 3 was inserted: event 4 links to event 2" in report.broken.reason


def test_verify_detects_a_rewritten_row_through_its_successor(database: Database) -> None:
    events = _append(database, 3)
    with database.transaction() as session:
        session.execute(delete(AUDIT).where(AUDIT.c.id == 2))
    _forge(database, id=2, prev_hash=events[0].hash)

    report = _verify(database)

    assert report.broken is not None
    assert (report.broken.id, report.broken.kind) == (3, "inserted")
    assert "event 2 was rewritten" in report.broken.reason


@pytest.mark.parametrize(("deleted", "reported"), [((2,), 3), ((1,), 2), ((2, 3), 4)])
def test_verify_detects_deleted_rows(
    database: Database, deleted: tuple[int, ...], reported: int
) -> None:
    _append(database, 4)
    with database.transaction() as session:
        session.execute(delete(AUDIT).where(AUDIT.c.id.in_(deleted)))

    report = _verify(database)

    assert report.broken is not None
    assert (report.broken.id, report.broken.kind) == (reported, "deleted")
    assert f"missing before event {reported}" in report.broken.reason


def test_verify_walks_the_chain_across_batches(database: Database) -> None:
    _append(database, 7)
    with database.transaction() as session:
        session.execute(delete(AUDIT).where(AUDIT.c.id == 6))

    with database.transaction() as session:
        report = AuditLog.verify(session, batch_size=2)

    assert report.broken is not None
    assert (report.broken.id, report.events) == (7, 5)


def test_append_waits_for_an_uncommitted_append_and_links_to_it(database: Database) -> None:
    first_appended = threading.Event()
    release_first = threading.Event()
    second_done = threading.Event()
    results: dict[str, AuditEvent] = {}

    def first() -> None:
        with database.transaction() as session:
            results["first"] = AuditLog.append(
                session, actor="a", action="x.first", target="t", at=T0
            )
            first_appended.set()
            release_first.wait(10)

    def second() -> None:
        first_appended.wait(10)
        with database.transaction() as session:
            session.scalar(select(func.count()).select_from(AUDIT))
            results["second"] = AuditLog.append(
                session, actor="b", action="x.second", target="t", at=T0
            )
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    blocked = not second_done.wait(0.5)
    release_first.set()
    for thread in threads:
        thread.join(15)

    assert blocked
    assert results["second"].prev_hash == results["first"].hash
    assert _verify(database).events == 2


def test_concurrent_appends_form_one_unbroken_chain(database: Database) -> None:
    writers, per_writer = 8, 6
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            start.wait(10)
            for i in range(per_writer):
                with database.transaction() as session:
                    AuditLog.append(
                        session,
                        actor=f"writer-{writer}",
                        action="test.append",
                        target=f"item:{i}",
                        after={"writer": writer, "i": i},
                        at=datetime.now(UTC),
                    )
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert failures == []
    report = _verify(database)
    assert report.intact
    assert report.events == writers * per_writer
    with database.transaction() as session:
        hashes = session.scalars(select(AUDIT.c.prev_hash)).all()
    assert len(set(hashes)) == writers * per_writer
