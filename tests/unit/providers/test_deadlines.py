"""Stream time limits: one thread keeps every armed guard's deadline, and a disarmed guard leaves nothing."""

from __future__ import annotations

import threading
import time

from lib.providers import StreamGuard
from lib.providers.guard import DEADLINES, Deadlines


def test_deadlines_run_in_order_once_each_and_a_cancelled_one_never_runs():
    deadlines, ran, done = Deadlines(), [], threading.Event()
    now = time.monotonic()
    deadlines.add(now + 0.15, lambda: (ran.append("late"), done.set()))
    cancelled = deadlines.add(now + 0.05, lambda: ran.append("cancelled"))
    deadlines.add(now + 0.10, lambda: ran.append("early"))
    deadlines.cancel(cancelled)
    deadlines.cancel(cancelled)  # twice is harmless
    assert done.wait(5)
    assert ran == ["early", "late"] and deadlines.pending() == 0


def test_a_sooner_deadline_added_later_wakes_the_thread():
    deadlines, fired = Deadlines(), threading.Event()
    deadlines.add(time.monotonic() + 60, lambda: None)  # the thread now sleeps for a minute
    started = time.monotonic()
    deadlines.add(time.monotonic() + 0.05, fired.set)
    assert fired.wait(5) and time.monotonic() - started < 30


def test_arming_guards_starts_no_thread_per_stream_and_disarming_leaves_no_deadline():
    guards = [StreamGuard(time_limit=300) for _ in range(20)]
    guards[0].arm()  # the shared thread exists from the first armed guard on
    before, pending = threading.active_count(), DEADLINES.pending()
    for guard in guards[1:]:
        guard.arm()
    assert threading.active_count() == before
    assert DEADLINES.pending() == pending + 19
    for guard in guards:
        guard.disarm()
    assert DEADLINES.pending() == pending - 1
    assert not any(guard.expired for guard in guards)


def test_an_armed_guard_expires_at_its_limit_and_cuts_the_connection():
    guard, cut = StreamGuard(time_limit=0.05), threading.Event()
    guard.on_abort(cut.set)
    guard.arm()
    assert cut.wait(5) and guard.expired
    guard.disarm()
