"""Adaptive micro-batching: concurrent requests merged into one model call, split back in order.

Requests queue per deployment. One worker coroutine takes everything waiting (up to
`max_batch_size` rows) and calls the model in a dedicated thread, so the event loop keeps
accepting requests while the model runs; those requests form the next batch. The batcher
waits up to `max_wait_ms` for more rows only when requests are arriving concurrently — an
idle deployment answers a lone request without delay.

The queue is bounded: past `max_queue_rows` waiting rows, or once the oldest waiting request
has waited `max_queue_delay_ms`, `submit` refuses new requests at once with `Overloaded`
(load shedding) rather than letting memory and latency grow without limit.

A failing batch is retried request by request, so one bad request never fails the requests
it happened to share a model call with: batched results equal one-by-one results.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from bastion.errors import Overloaded

Row = TypeVar("Row")
Result = npt.NDArray[Any]
BatchObserver = Callable[[int, float], None]


@dataclass
class _Pending(Generic[Row]):
    rows: Sequence[Row]
    future: asyncio.Future[Result]
    enqueued_at: float = field(default_factory=time.perf_counter)


class MicroBatcher(Generic[Row]):
    """Merge concurrent `submit` calls into calls of `predict(rows) -> array`.

    Parameters
    ----------
    predict:
        Called in a worker thread with a list of rows; returns an array whose first axis has
        one entry per row (shape ``(n_rows, ...)``).
    max_batch_size:
        Most rows per model call. A single request larger than this is still one call.
    max_wait_ms:
        Longest a request waits for others to join its batch, only under concurrent load.
    on_batch:
        Called after each model call with (rows, seconds); used for metrics.
    max_queue_rows:
        Most rows waiting for a model call; a request that would exceed it is refused
        (a request alone on an empty queue is always accepted).
    max_queue_delay_ms:
        Once the oldest waiting request has waited this long, new requests are refused.
    """

    def __init__(
        self,
        predict: Callable[[list[Row]], Result],
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 2.0,
        name: str = "model",
        on_batch: BatchObserver | None = None,
        max_queue_rows: int | None = None,
        max_queue_delay_ms: float | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        if max_queue_rows is not None and max_queue_rows < 1:
            raise ValueError(f"max_queue_rows must be >= 1, got {max_queue_rows}")
        if max_queue_delay_ms is not None and max_queue_delay_ms <= 0:
            raise ValueError(f"max_queue_delay_ms must be > 0, got {max_queue_delay_ms}")
        self.max_queue_rows = max_queue_rows
        self.max_queue_delay = None if max_queue_delay_ms is None else max_queue_delay_ms / 1000
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self._on_batch = on_batch
        self._queue: deque[_Pending[Row]] = deque()
        self._queued_rows = 0
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{name}")
        self._closed = False

    @property
    def queue_depth(self) -> int:
        """Rows waiting for a model call."""
        return self._queued_rows

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, rows: Sequence[Row], *, timeout: float | None = None) -> Result:
        """Predict `rows` as part of a batch; returns their results in order.

        After `timeout` seconds the caller gets `TimeoutError`; the model call itself cannot
        be interrupted and its result for these rows is discarded.
        """
        if self._closed:
            raise RuntimeError("batcher is closed")
        self._shed_if_overloaded(len(rows))
        self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._queue.append(_Pending(rows, future))
        self._queued_rows += len(rows)
        self._wakeup.set()
        if timeout is None:
            return await future
        # A timer on the future costs far less than asyncio.wait_for's extra task.
        timer = loop.call_later(timeout, _resolve, future, TimeoutError())
        try:
            return await future
        finally:
            timer.cancel()

    def _shed_if_overloaded(self, rows: int) -> None:
        """Raise `Overloaded` if `rows` more would break the queue's row or delay budget."""
        while self._queue and self._queue[0].future.done():
            # Abandoned (timed out or cancelled) requests at the head no longer wait.
            self._queued_rows -= len(self._queue.popleft().rows)
        if not self._queue:
            return
        retry_after = max(1, math.ceil(self.max_queue_delay or 1))
        if self.max_queue_rows is not None and self._queued_rows + rows > self.max_queue_rows:
            raise Overloaded(
                f"the deployment's queue is full ({self._queued_rows} rows waiting, at most "
                f"{self.max_queue_rows}); retry later",
                retry_after=retry_after,
                reason="queue_full",
            )
        waited = time.perf_counter() - self._queue[0].enqueued_at
        if self.max_queue_delay is not None and waited > self.max_queue_delay:
            raise Overloaded(
                f"requests are waiting {waited * 1000:.0f} ms for the model, over the "
                f"{self.max_queue_delay * 1000:g} ms budget; retry later",
                retry_after=retry_after,
                reason="queue_delay",
            )

    async def close(self) -> None:
        """Finish queued requests, then stop the worker and its thread."""
        self._closed = True
        if self._worker is not None:
            self._wakeup.set()
            await self._worker
            self._worker = None
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = await self._collect()
            try:
                await self._call(batch)
            except Exception as exc:
                # Never let the worker die (e.g. an `on_batch` observer raising): its requests
                # would wait forever. They get the error instead.
                for pending in batch:
                    _resolve(pending.future, exc)

    async def _collect(self) -> list[_Pending[Row]]:
        """Take waiting requests; linger for more only while requests keep arriving."""
        batch = self._take(self.max_batch_size, first=True)
        rows = sum(len(p.rows) for p in batch)
        if not batch or rows >= self.max_batch_size or self.max_wait <= 0 or self._closed:
            return batch
        # Let requests whose bodies are already read reach the queue; if any did, others
        # are likely in flight too, so wait (bounded) to fill the batch.
        await asyncio.sleep(0)
        deadline = batch[0].enqueued_at + self.max_wait
        while self._queue and rows < self.max_batch_size:
            more = self._take(self.max_batch_size - rows, first=False)
            batch.extend(more)
            rows += sum(len(p.rows) for p in more)
            remaining = deadline - time.perf_counter()
            if rows >= self.max_batch_size or remaining <= 0:
                break
            if self._queue and not more:
                # The next request does not fit; it heads the next batch (order is kept).
                break
            await asyncio.sleep(min(remaining, self.max_wait / 4))
        return batch

    def _take(self, limit: int, *, first: bool) -> list[_Pending[Row]]:
        """Pop waiting requests, in order, holding at most `limit` rows in all.

        When starting a batch (`first`), the head request is taken even if it alone exceeds
        `limit`, so an oversized request still runs (as a call of its own).
        """
        taken: list[_Pending[Row]] = []
        rows = 0
        while self._queue and ((first and not taken) or rows + len(self._queue[0].rows) <= limit):
            pending = self._queue.popleft()
            if pending.future.cancelled():
                self._queued_rows -= len(pending.rows)
                continue
            taken.append(pending)
            rows += len(pending.rows)
        self._queued_rows -= rows
        return taken

    async def _call(self, batch: list[_Pending[Row]]) -> None:
        if not batch:
            return
        loop = asyncio.get_running_loop()
        rows: list[Row] = [row for pending in batch for row in pending.rows]
        started = time.perf_counter()
        try:
            result = await loop.run_in_executor(self._executor, self._predict, rows)
            if len(result) != len(rows):
                raise ValueError(f"model returned {len(result)} results for {len(rows)} rows")
        except Exception as exc:
            if len(batch) == 1:
                _resolve(batch[0].future, exc)
            else:
                # Isolate the failure: each request gets exactly what it would get alone.
                for pending in batch:
                    await self._call([pending])
            return
        finally:
            if self._on_batch is not None:
                self._on_batch(len(rows), time.perf_counter() - started)
        offset = 0
        for pending in batch:
            end = offset + len(pending.rows)
            _resolve(pending.future, result[offset:end])
            offset = end


def _resolve(future: asyncio.Future[Result], outcome: Result | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(np.asarray(outcome))
