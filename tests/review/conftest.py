"""A review queue over a real database (SQLite and PostgreSQL) with a clock tests move."""

from __future__ import annotations

import pytest

from bastion.monitor.metrics import ServingMetrics
from bastion.review import ReviewQueue
from bastion.store import Database
from tests.review.cases import MovableClock, review_spec


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def metrics() -> ServingMetrics:
    return ServingMetrics()


@pytest.fixture
def queue(database: Database, clock: MovableClock, metrics: ServingMetrics) -> ReviewQueue:
    return ReviewQueue(database, review_spec(), metrics, clock)
