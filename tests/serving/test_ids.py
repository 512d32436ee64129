"""Decision ids are valid, unique, time-ordered UUIDv7s."""

from __future__ import annotations

import time
import uuid

from bastion.serving.ids import uuid7


def test_uuid7_is_a_version_7_rfc_uuid() -> None:
    parsed = uuid.UUID(uuid7())

    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_uuid7_is_unique_and_ordered_by_time() -> None:
    earlier = [uuid7() for _ in range(1000)]
    time.sleep(0.002)
    later = uuid7()

    assert len(set(earlier)) == 1000
    assert all(later > value for value in earlier)


def test_uuid7_starts_with_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    millis = uuid.UUID(uuid7()).int >> 80
    after = time.time_ns() // 1_000_000

    assert before <= millis <= after
