"""Turns the server never finished, found on read: a killed process writes nothing more, so no writer can mark them.

A turn's user message is stored before the provider is called and its record after the reply, so a process
killed in between (kill -9, out of memory, a power cut) leaves a user message with no reply and no record.
The readers (GET /api/chat/{id}, the chat page) show such a turn as "interrupted (server stopped)" once the
process that ran it is gone:

- every user message a turn stores carries ``meta.runner``: the boot, pid and start time of its process;
- on the machine that ran it, a process that is gone, or a pid now held by another process, is certain;
- a turn run elsewhere (several machines on one Redis), or stored without a runner (an import), counts as
  stopped once a later turn began after it or once it is older than ``STALE_TURN_SECONDS``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from lib.core import TurnRecord, read_turns

META_RUNNER = "runner"
STATUS = "interrupted (server stopped)"
MESSAGE = ("The server stopped while this turn was running: no reply and no record were saved. Your message "
           "is kept; send it again.")
# Far longer than any stream runs: a turn on another machine this old, with no record, is not coming back.
STALE_TURN_SECONDS = 30 * 60
RunnerState = Literal["alive", "gone", "unknown"]


@dataclass(frozen=True)
class InterruptedTurn:
    turn: int
    user_id: str
    ts: float | None

    def to_json(self) -> dict[str, Any]:
        """Shaped like a turn record's failure fields, plus ``derived`` (nothing of it is stored)."""
        return {"turn": self.turn, "ts": self.ts, "user_id": self.user_id, "status": STATUS, "error": MESSAGE,
                "error_type": "ServerStopped", "derived": True}


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:  # not Linux: the host name stands in (a reboot then reads as "unknown", not "gone")
        return os.uname().nodename if hasattr(os, "uname") else "host"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None when it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the name before ")" may hold spaces


@cache
def runner_token() -> str:
    """This process, as ``boot:pid:start`` (the start time tells a reused pid from the original)."""
    pid = os.getpid()
    return f"{_boot_id()}:{pid}:{_start_time(pid) or ''}"


def runner_state(token: object) -> RunnerState:
    if not isinstance(token, str) or token.count(":") < 2:
        return "unknown"
    boot, pid_text, start = token.rsplit(":", 2)
    if boot != _boot_id() or not pid_text.isdigit():
        return "unknown"  # another machine (or this one before a reboot, where the host name stands in)
    pid = int(pid_text)
    if start:
        return "alive" if _start_time(pid) == start else "gone"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except OSError:
        return "alive"  # it exists, under another user
    return "alive"


def _is_turn_start(message: Mapping[str, Any]) -> bool:
    meta = message.get("meta")
    return message.get("role") == "user" and not (isinstance(meta, Mapping) and "summary" in meta)


def unanswered(history: Sequence[Mapping[str, Any]]) -> list[int]:
    """Positions of the user messages that no assistant message follows before the next user message."""
    found: list[int] = []
    for n, message in enumerate(history):
        if _is_turn_start(message):
            found.append(n)
        elif message.get("role") == "assistant" and found and found[-1] == n - 1:
            found.pop()
    return found


def interrupted_turns(history: Sequence[Mapping[str, Any]], records: Sequence[TurnRecord], *,
                      now: float | None = None) -> list[InterruptedTurn]:
    """The turns of ``history`` that have no reply, no record, and no running process to finish them."""
    recorded = {r.user_id: r.turn for r in records if r.user_id and r.turn is not None}
    starts = [n for n, m in enumerate(history) if _is_turn_start(m)]
    gaps = [n for n in unanswered(history) if history[n].get("id") not in recorded]
    if not gaps:
        return []
    now = time.time() if now is None else now
    numbers = _numbers(history, starts, recorded)
    found = []
    for n in gaps:
        message = history[n]
        meta = message.get("meta")
        state = runner_state(meta.get(META_RUNNER) if isinstance(meta, Mapping) else None)
        ts = message.get("ts") if isinstance(message.get("ts"), int | float) else None
        later = n != starts[-1]
        if state == "gone" or state == "unknown" and (later or ts is None or now - ts > STALE_TURN_SECONDS):
            found.append(InterruptedTurn(numbers[n], str(message.get("id")), ts))
    return found


def with_interrupted(history: Sequence[Mapping[str, Any]], turns: Sequence[Any]) -> list[Any]:
    """The stored turn records with an entry for each interrupted turn (``derived``: true), in turn order."""
    recorded = {t.get("user_id") for t in turns if isinstance(t, Mapping)}
    if all(history[n].get("id") in recorded for n in unanswered(history)):
        return list(turns)  # the usual case: no record is parsed
    derived = [t.to_json() for t in interrupted_turns(history, read_turns(turns))]

    def number(entry: Any) -> int:
        turn = entry.get("turn") if isinstance(entry, Mapping) else None
        return turn if isinstance(turn, int) else 0

    return sorted([*turns, *derived], key=number)


def _numbers(history: Sequence[Mapping[str, Any]], starts: Sequence[int],
             recorded: Mapping[Any, int]) -> dict[int, int]:
    """Each turn start's number, counted from the newest recorded turn (the oldest may be capped away)."""
    anchor = next((k for k in range(len(starts) - 1, -1, -1) if history[starts[k]].get("id") in recorded), None)
    base = recorded[history[starts[anchor]].get("id")] - anchor if anchor is not None else 1
    return {n: base + k for k, n in enumerate(starts)}
