"""The API's own bounded pool for chat turns, so slow providers cannot take the threads everything else needs.

A turn holds one thread (the provider SDKs block) and one provider connection for as long as the reply
streams. Run in the event loop's default executor (min(32, CPUs + 4) threads: 6 on a 2-core machine), a few
slow streams held every thread, and every later turn waited behind them, headers sent and nothing more, then
sent its provider request long after its client had gone.

Here a turn takes a slot without waiting (``acquire``): when all ``size`` slots are busy the request is
refused at once with 503 ``server_busy``, before anything is stored or sent. A slot is released only when
the last piece of work it started has finished, so the number of running turn threads never exceeds
``size``, and a slot always finds a free thread.

    slot = turn_pool(settings.max_concurrent_turns).acquire()     # ServerBusy (503) when full
    prepared = await slot.run(begin, body, settings)
    future = slot.submit(work)      # started now; the slot stays held until it ends
    slot.close()                    # no more work: release once the running work ends
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from lib.api.errors import ApiError

T = TypeVar("T")
# A client refused with 503 may try again after this many seconds (sent as Retry-After).
RETRY_AFTER_S = 5


class ServerBusy(ApiError):
    """Every turn slot is taken; nothing was stored or sent."""

    def __init__(self, size: int) -> None:
        super().__init__(
            503, "server_busy",
            f"The server is already running {size} chat turns (MAX_CONCURRENT_TURNS), the most it runs at once. "
            f"Nothing was stored or sent; try again in a few seconds.", retryAfter=RETRY_AFTER_S)


class TurnPool:
    """``size`` slots, each running at most one piece of work at a time on the pool's own threads."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a turn pool needs at least one slot")
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="turn")
        self._lock = threading.Lock()
        self._in_use = 0

    def __repr__(self) -> str:
        return f"TurnPool(size={self.size}, in_use={self._in_use})"

    @property
    def in_use(self) -> int:
        return self._in_use

    def acquire(self) -> TurnSlot:
        """A slot, or ServerBusy at once: a request never queues behind slow turns."""
        with self._lock:
            if self._in_use >= self.size:
                raise ServerBusy(self.size)
            self._in_use += 1
        return TurnSlot(self)

    def _release(self) -> None:
        with self._lock:
            self._in_use -= 1


class TurnSlot:
    """One turn's hold on the pool. Work runs one piece at a time; the slot is freed after ``close()`` once
    no work is running (so a worker still winding down after its client left keeps its slot)."""

    def __init__(self, pool: TurnPool) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._running = 0
        self._closed = False
        self._released = False
        self.started = False  # whether any work was submitted

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Start ``fn(*args)`` on a pool thread now; an asyncio future of its result."""
        with self._lock:
            if self._released:
                raise RuntimeError("this turn slot was already released")
            self._running += 1
            self.started = True
        work = self._pool._executor.submit(fn, *args)
        # Released from the worker thread itself: the slot is freed even if the event loop that started the
        # work has gone (a test's asyncio.run, a server shutting down).
        work.add_done_callback(self._done)
        return asyncio.wrap_future(work)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    def close(self) -> None:
        """No more work will be submitted: release the slot once the running work has ended (idempotent)."""
        with self._lock:
            self._closed = True
        self._maybe_release()

    def _done(self, _future: Future[Any]) -> None:
        with self._lock:
            self._running -= 1
        self._maybe_release()

    def _maybe_release(self) -> None:
        with self._lock:
            if self._released or not self._closed or self._running:
                return
            self._released = True
        self._pool._release()


_POOLS: dict[int, TurnPool] = {}
_POOLS_LOCK = threading.Lock()


def turn_pool(size: int) -> TurnPool:
    """The process's pool of ``size`` slots (one per size, so every app in this process shares it)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(size)
        if pool is None:
            pool = _POOLS[size] = TurnPool(size)
        return pool
