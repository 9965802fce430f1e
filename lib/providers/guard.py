"""Stopping a reply stream from outside: the client left, or the stream ran past its time limit.

    guard = StreamGuard(time_limit=300)
    reply = provider.stream(messages, model=..., guard=guard)   # checked before the request and on every event
    guard.stop()      # from any thread: the client is gone

The provider checks the guard before it opens the request and on every event it reads, empty ones
included, so a stream of empty deltas stops as soon as a non-empty one would. A provider that sends
nothing at all never reaches a check, so the guard also *aborts*: whoever holds the connection registers
a callback (``on_abort``) that cuts it, and ``stop()`` or the time limit runs it from whichever thread
notices first. The time limit is kept by one thread for every armed guard (``DEADLINES``) from the moment
the stream is armed, so it holds while the worker is blocked reading.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from lib.core import HistoryLabError
from lib.providers.errors import ProviderError

log = logging.getLogger(__name__)


class StreamStopped(HistoryLabError, RuntimeError):
    """The consumer of the stream went away; the caller records the turn as interrupted."""

    def __init__(self) -> None:
        super().__init__("The client went away before the reply finished, so the provider stream was closed.")


class StreamTimeLimit(ProviderError):
    """The reply stream ran longer than its total time limit and was closed."""

    def __init__(self, limit: float) -> None:
        super().__init__(
            f"The reply did not finish within {limit:g} s (STREAM_TIME_LIMIT), so the provider stream was closed. "
            "Your message is saved; send it again, ask for a shorter reply, or raise STREAM_TIME_LIMIT if such "
            "long replies are expected.")
        self.limit = limit


class StreamGuard:
    """A stop flag and a total time limit for one reply stream, shared by the worker and its consumer.

    Thread-safe. ``time_limit`` (seconds, None for none) counts from ``arm()``. Abort callbacks run at most
    once each, under a lock, so a callback unregistered by the worker can no longer run afterwards.
    """

    def __init__(self, *, time_limit: float | None = None) -> None:
        self.time_limit = time_limit
        self._lock = threading.Lock()
        self._stopped = False
        self._expired = False
        self._deadline: float | None = None
        self._deadline_key: int | None = None
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next_id = 0

    def __repr__(self) -> str:
        return f"StreamGuard(time_limit={self.time_limit!r}, stopped={self._stopped}, expired={self._expired})"

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def expired(self) -> bool:
        return self._expired

    @property
    def tripped(self) -> bool:
        return self._stopped or self._expired

    def remaining(self) -> float | None:
        """Seconds left before the time limit (None when there is none or the stream is not armed)."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def arm(self) -> None:
        """Start the clock (idempotent). The timer aborts the stream even while the worker is blocked."""
        with self._lock:
            if self.time_limit is None or self._deadline is not None:
                return
            self._deadline = time.monotonic() + self.time_limit
            self._deadline_key = DEADLINES.add(self._deadline, self.expire)

    def disarm(self) -> None:
        """The stream is over: drop its deadline and forget the callbacks."""
        with self._lock:
            if self._deadline_key is not None:
                DEADLINES.cancel(self._deadline_key)
                self._deadline_key = None
            self._callbacks.clear()

    def check(self) -> None:
        """Raise StreamStopped or StreamTimeLimit when the stream must end; else return at once."""
        if self._stopped:
            raise StreamStopped()
        if self._expired or (self._deadline is not None and time.monotonic() >= self._deadline):
            self._expired = True
            assert self.time_limit is not None
            raise StreamTimeLimit(self.time_limit)

    def stop(self) -> None:
        """The consumer left: stop at the next check, and cut the connection now."""
        self._trip(expired=False)

    def expire(self) -> None:
        """The time limit passed: stop at the next check, and cut the connection now."""
        self._trip(expired=True)

    def on_abort(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Register ``callback`` to cut the connection; returns the function that unregisters it.

        When the guard has already tripped, the callback runs at once.
        """
        with self._lock:
            if not self.tripped:
                key = self._next_id
                self._next_id += 1
                self._callbacks[key] = callback

                def unregister() -> None:
                    with self._lock:
                        self._callbacks.pop(key, None)

                return unregister
        _run(callback)
        return lambda: None

    def _trip(self, *, expired: bool) -> None:
        with self._lock:
            if expired:
                self._expired = True
            else:
                self._stopped = True
            callbacks, self._callbacks = list(self._callbacks.values()), {}
            # Run under the lock: once unregister() returns, the connection is the worker's again.
            for callback in callbacks:
                _run(callback)


class Deadlines:
    """Calls each function at its deadline, from one thread for all of them.

    Every turn arms a guard, and a timer thread per guard cost each turn a thread start (about 0.15 ms of a
    10-message API turn, measured in the server) plus a thread per running stream. Here one daemon thread,
    started on first use, sleeps until the earliest deadline. Cancelled entries are removed at once, so the
    heap holds only the streams running now.
    """

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: float, call: Callable[[], None]) -> int:
        """Call ``call`` once ``time.monotonic()`` reaches ``deadline``; returns the key that cancels it."""
        with self._wake:
            key = next(self._keys)
            heapq.heappush(self._heap, (deadline, key, call))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="stream-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][1] == key:
                self._wake.notify()  # the new deadline is the earliest: sleep less
            return key

    def cancel(self, key: int) -> None:
        """Forget ``key`` (harmless when it has already run or was cancelled)."""
        with self._wake:
            for index, entry in enumerate(self._heap):
                if entry[1] == key:
                    self._heap[index] = self._heap[-1]
                    self._heap.pop()
                    heapq.heapify(self._heap)
                    return

    def pending(self) -> int:
        with self._wake:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._wake:
                while True:
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        _, _, call = heapq.heappop(self._heap)
                        break
                    self._wake.wait(wait)
            _run(call)  # outside the lock: it takes the guard's lock and cuts a connection


DEADLINES = Deadlines()


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # noqa: BLE001 - cutting a connection that is already gone is not an error
        log.debug("Aborting a provider stream failed", exc_info=True)
