from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import Overloaded
from bastion.runtime.batcher import MicroBatcher, Result


class Poisoned(ValueError):
    """What the fake model raises when a poison row is in its batch."""


@dataclass
class FakeModel:
    """Doubles each row; raises on poison rows; records every call it receives."""

    poison: frozenset[int] = frozenset()
    delay: float = 0.0
    calls: list[list[int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, rows: list[int]) -> Result:
        with self._lock:
            self.calls.append(list(rows))
        if self.delay:
            time.sleep(self.delay)
        bad = [row for row in rows if row in self.poison]
        if bad:
            raise Poisoned(f"poison row {bad[0]}")
        return np.asarray([2.0 * row + 1.0 for row in rows])


Outcome = tuple[str, object]


def _outcome(call: Callable[[], Result]) -> Outcome:
    try:
        return ("ok", call().tolist())
    except Exception as exc:
        return ("error", (type(exc), str(exc)))


async def _submit_all(batcher: MicroBatcher[int], requests: Sequence[list[int]]) -> list[Outcome]:
    results = await asyncio.gather(
        *(batcher.submit(rows) for rows in requests), return_exceptions=True
    )
    outcomes: list[Outcome] = []
    for result in results:
        if isinstance(result, BaseException):
            outcomes.append(("error", (type(result), str(result))))
        else:
            outcomes.append(("ok", result.tolist()))
    return outcomes


#: (rows in the request, whether the request is poison): about one request in four is
requests_strategy = st.lists(
    st.tuples(st.integers(min_value=1, max_value=5), st.sampled_from([False, False, False, True])),
    min_size=1,
    max_size=25,
)


@settings(max_examples=50, deadline=None)
@given(
    specs=requests_strategy,
    max_batch_size=st.integers(min_value=1, max_value=16),
    max_wait_ms=st.integers(min_value=0, max_value=3),
)
def test_batcher_results_equal_one_by_one_results(
    specs: list[tuple[int, bool]], max_batch_size: int, max_wait_ms: int
) -> None:
    requests: list[list[int]] = []
    poison: set[int] = set()
    next_row = 0
    for size, poisoned in specs:
        rows = list(range(next_row, next_row + size))
        next_row += size
        requests.append(rows)
        if poisoned:
            poison.add(rows[-1])
    model = FakeModel(frozenset(poison))
    expected = [_outcome(functools.partial(model, rows)) for rows in requests]
    model.calls.clear()

    async def scenario() -> list[Outcome]:
        batcher = MicroBatcher(model, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)
        try:
            return await _submit_all(batcher, requests)
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) == expected
    owner = {row: index for index, rows in enumerate(requests) for row in rows}
    for call in model.calls:
        assert call == sorted(call), "rows reach the model in submission order"
        if len({owner[row] for row in call}) > 1:
            assert len(call) <= max_batch_size


def test_batcher_merges_concurrent_requests_into_fewer_calls() -> None:
    model = FakeModel(delay=0.01)

    async def scenario() -> list[Outcome]:
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_ms=2)
        try:
            return await _submit_all(batcher, [[row] for row in range(20)])
        finally:
            await batcher.close()

    outcomes = asyncio.run(scenario())

    assert outcomes == [("ok", [2.0 * row + 1.0]) for row in range(20)]
    assert len(model.calls) < 20
    assert max(len(call) for call in model.calls) <= 8
    assert sorted(row for call in model.calls for row in call) == list(range(20))


def test_batcher_merges_requests_arriving_while_the_model_is_busy() -> None:
    model = FakeModel(delay=0.05)

    async def scenario() -> list[Outcome]:
        batcher = MicroBatcher(model, max_batch_size=64, max_wait_ms=1)
        try:
            first = asyncio.ensure_future(batcher.submit([0]))
            await asyncio.sleep(0.005)  # the model is now busy with request 0
            rest = await _submit_all(batcher, [[1], [2], [3]])
            return [("ok", (await first).tolist()), *rest]
        finally:
            await batcher.close()

    outcomes = asyncio.run(scenario())

    assert [o[1] for o in outcomes] == [[1.0], [3.0], [5.0], [7.0]]
    assert model.calls == [[0], [1, 2, 3]]


def test_batcher_answers_a_lone_request_without_waiting() -> None:
    model = FakeModel()

    async def scenario() -> float:
        batcher = MicroBatcher(model, max_batch_size=64, max_wait_ms=50)
        try:
            await batcher.submit([0])  # start the worker and its thread
            await asyncio.sleep(0.01)
            started = time.perf_counter()
            await batcher.submit([1])
            return time.perf_counter() - started
        finally:
            await batcher.close()

    # Not a performance check: a lingering batcher would take the full 50 ms.
    assert asyncio.run(scenario()) < 0.025


def test_batcher_runs_an_oversized_request_as_one_call() -> None:
    model = FakeModel(delay=0.01)

    async def scenario() -> list[Outcome]:
        batcher = MicroBatcher(model, max_batch_size=4, max_wait_ms=20)
        try:
            return await _submit_all(batcher, [[0, 1, 2], [3, 4, 5, 6, 7, 8], [9]])
        finally:
            await batcher.close()

    outcomes = asyncio.run(scenario())

    assert [o[0] for o in outcomes] == ["ok", "ok", "ok"]
    assert model.calls == [[0, 1, 2], [3, 4, 5, 6, 7, 8], [9]]


def test_batcher_isolates_a_failing_request() -> None:
    model = FakeModel(poison=frozenset({1}))

    async def scenario() -> list[Outcome]:
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_ms=0)
        try:
            return await _submit_all(batcher, [[0], [1], [2]])
        finally:
            await batcher.close()

    outcomes = asyncio.run(scenario())

    assert outcomes == [("ok", [1.0]), ("error", (Poisoned, "poison row 1")), ("ok", [5.0])]
    assert model.calls == [[0, 1, 2], [0], [1], [2]]


def test_batcher_fails_requests_when_the_model_returns_the_wrong_length() -> None:
    async def scenario() -> None:
        batcher: MicroBatcher[int] = MicroBatcher(lambda rows: np.zeros(len(rows) + 1))
        try:
            await batcher.submit([1, 2])
        finally:
            await batcher.close()

    with pytest.raises(ValueError, match="model returned 3 results for 2 rows"):
        asyncio.run(scenario())


def test_batcher_keeps_serving_after_a_waiting_request_is_cancelled() -> None:
    model = FakeModel(delay=0.05)

    async def scenario() -> list[float]:
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_ms=5)
        try:
            busy = asyncio.ensure_future(batcher.submit([0]))
            await asyncio.sleep(0.003)
            abandoned = asyncio.ensure_future(batcher.submit([1]))
            await asyncio.sleep(0)
            abandoned.cancel()
            await busy
            result = await asyncio.wait_for(batcher.submit([2]), timeout=1)
            return list(result.tolist())
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) == [5.0]
    assert [1] not in model.calls


def test_batcher_reports_each_model_call_to_the_observer() -> None:
    observed: list[tuple[int, float]] = []

    async def scenario() -> None:
        batcher = MicroBatcher(
            FakeModel(),
            max_batch_size=16,
            max_wait_ms=0,
            on_batch=lambda rows, seconds: observed.append((rows, seconds)),
        )
        try:
            await _submit_all(batcher, [[0, 1], [2]])
        finally:
            await batcher.close()

    asyncio.run(scenario())

    assert [rows for rows, _ in observed] == [3]
    assert all(seconds >= 0 for _, seconds in observed)


def test_batcher_survives_a_failing_observer() -> None:
    def observer(rows: int, seconds: float) -> None:
        raise RuntimeError("metrics backend down")

    async def scenario() -> list[Outcome]:
        batcher = MicroBatcher(FakeModel(), max_wait_ms=0, on_batch=observer)
        try:
            first = await _submit_all(batcher, [[0]])
            second = await asyncio.wait_for(_submit_all(batcher, [[1]]), timeout=1)
            return first + second
        finally:
            await batcher.close()

    outcomes = asyncio.run(scenario())

    assert [o[0] for o in outcomes] == ["error", "error"]


def test_batcher_close_finishes_queued_work_then_refuses_more() -> None:
    model = FakeModel(delay=0.005)

    async def scenario() -> tuple[list[Outcome], str]:
        batcher = MicroBatcher(model, max_batch_size=2, max_wait_ms=1)
        pending = [asyncio.ensure_future(batcher.submit([row])) for row in range(7)]
        await asyncio.sleep(0)
        assert batcher.queue_depth == 7
        await batcher.close()
        assert all(future.done() for future in pending)
        with pytest.raises(RuntimeError, match="closed") as caught:
            await batcher.submit([99])
        return [("ok", future.result().tolist()) for future in pending], str(caught.value)

    outcomes, message = asyncio.run(scenario())

    assert outcomes == [("ok", [2.0 * row + 1.0]) for row in range(7)]
    assert message == "batcher is closed"
    assert sum(len(call) for call in model.calls) == 7


def test_batcher_close_without_requests_is_clean() -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(FakeModel())
        await batcher.close()
        with pytest.raises(RuntimeError, match="closed"):
            await batcher.submit([1])

    asyncio.run(scenario())


def test_batcher_reports_queue_depth() -> None:
    model = FakeModel(delay=0.05)

    async def scenario() -> list[int]:
        batcher = MicroBatcher(model, max_batch_size=2, max_wait_ms=0)
        try:
            busy = asyncio.ensure_future(batcher.submit([0]))
            await asyncio.sleep(0.003)
            queued = [asyncio.ensure_future(batcher.submit([row, row])) for row in (1, 2)]
            await asyncio.sleep(0)
            depth_while_busy = batcher.queue_depth
            await asyncio.gather(busy, *queued)
            return [depth_while_busy, batcher.queue_depth]
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) == [4, 0]


def test_batcher_rejects_a_batch_size_below_one() -> None:
    with pytest.raises(ValueError, match="max_batch_size must be >= 1, got 0"):
        MicroBatcher(FakeModel(), max_batch_size=0)


def test_batcher_rejects_a_negative_wait() -> None:
    with pytest.raises(ValueError, match="max_wait_ms must be >= 0, got -5"):
        MicroBatcher(FakeModel(), max_wait_ms=-5)


def test_batcher_sheds_requests_past_the_queue_rows_bound() -> None:
    async def scenario() -> tuple[list[Outcome], int]:
        batcher = MicroBatcher(FakeModel(delay=0.05), max_batch_size=2, max_queue_rows=4)
        deepest = 0

        async def submit(row: int) -> Result:
            nonlocal deepest
            try:
                return await batcher.submit([row])
            finally:
                deepest = max(deepest, batcher.queue_depth)

        tasks = [asyncio.create_task(submit(row)) for row in range(40)]
        await asyncio.sleep(0)
        deepest = max(deepest, batcher.queue_depth)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.close()
        outcomes = [
            ("error", type(r)) if isinstance(r, BaseException) else ("ok", r.tolist())
            for r in results
        ]
        return outcomes, deepest

    outcomes, deepest = asyncio.run(scenario())

    shed = [o for o in outcomes if o == ("error", Overloaded)]
    assert deepest <= 4
    assert len(shed) == 36  # all 40 arrive before the first model call: 4 queue, 36 shed
    assert all(o[0] == "ok" or o == ("error", Overloaded) for o in outcomes)


def test_batcher_sheds_once_the_oldest_request_waited_past_the_delay_budget() -> None:
    async def scenario() -> tuple[str, str]:
        batcher = MicroBatcher(FakeModel(delay=0.3), max_batch_size=1, max_queue_delay_ms=50)
        busy = asyncio.create_task(batcher.submit([1]))
        await asyncio.sleep(0.01)  # the model is now busy with row 1
        waiting = asyncio.create_task(batcher.submit([2]))
        await asyncio.sleep(0.1)  # row 2 has waited past the budget
        try:
            await batcher.submit([3])
            refused = "accepted"
        except Overloaded as exc:
            refused = f"{exc.reason} {exc.retry_after}"
        await asyncio.gather(busy, waiting)
        accepted_again = (await batcher.submit([4])).tolist()
        await batcher.close()
        return refused, str(accepted_again)

    refused, accepted_again = asyncio.run(scenario())

    assert refused == "queue_delay 1"
    assert accepted_again == "[9.0]"


def test_batcher_accepts_a_large_request_on_an_empty_queue() -> None:
    async def scenario() -> list[float]:
        batcher = MicroBatcher(FakeModel(), max_queue_rows=2)
        result = await batcher.submit([1, 2, 3])
        await batcher.close()
        return list(result.tolist())

    assert asyncio.run(scenario()) == [3.0, 5.0, 7.0]
