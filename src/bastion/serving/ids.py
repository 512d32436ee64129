"""Decision ids: UUID version 7 (RFC 9562), time-ordered.

Random (v4) ids land on a different index page for every insert, so commits slow down as
the decision log grows; v7 ids start with the millisecond timestamp and append near the
end of the index instead.
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> str:
    """A new UUIDv7 as a string: 48-bit Unix milliseconds, version 7, 74 random bits."""
    millis = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((random >> 62) & 0xFFF) << 64  # 12 bits of rand_a
    value |= 0b10 << 62  # RFC 9562 variant
    value |= random & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))
