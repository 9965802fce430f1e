"""The running cost of a session: each stored reply's cost, summed in history order, kept per process.

A reply's cost (and the cost of the summarisation request its turn made, ``summary_cost``) is in its stored
meta, so the running total needs no turn record. The chat reads the whole history on every rerun anyway;
what must not happen on every rerun is parsing 5,000 replies' meta again (0.2 s at the 10,000-message cap,
paid by every new browser tab). So the sums are kept once per process and session, and only messages new
since the last call are parsed. Every browser tab of one process sees the same store, so they share them.

The cache is checked against the history it is given, never trusted blindly: a history that no longer
starts with the same message (the cap dropped the oldest, or the session was replaced) or that no longer
has the message the sums ended on at the same place is summed again from scratch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lib.core import ReplyMeta

Message = Mapping[str, Any]
MAX_SESSIONS = 256  # sessions whose sums are kept; the least recently used are forgotten first


@dataclass(frozen=True)
class RunningCosts:
    """Sums over the ``count`` messages of one history, as of one call."""

    cumulative: Sequence[float]  # shared, append-only; entry ``offset + i`` covers history[: i + 1]
    unpriced_cumulative: Sequence[int]
    offset: int
    count: int

    @property
    def total(self) -> float:
        return self.before(self.count)

    @property
    def unpriced(self) -> int:
        """Replies with no cost (no price for their model, or no usage reported)."""
        end = self.offset + self.count - 1
        base = self.unpriced_cumulative[self.offset - 1] if self.offset else 0
        return self.unpriced_cumulative[end] - base if self.count else 0

    def before(self, position: int | None) -> float:
        """The cost of the replies stored before message ``position`` (0 for the first, or unknown)."""
        if not position or position > self.count:
            return 0.0
        base = self.cumulative[self.offset - 1] if self.offset else 0.0
        return self.cumulative[self.offset + position - 1] - base


@dataclass
class _Sums:
    """Sums over every message seen since the session was first read; the store's cap drops the oldest
    messages from the front, which moves ``offset`` (the entry of the history's first message) forward."""

    ids: list[object] = field(default_factory=list)
    cumulative: list[float] = field(default_factory=list)
    unpriced: list[int] = field(default_factory=list)
    offset: int = 0


_lock = threading.Lock()
_sums: OrderedDict[str, _Sums] = OrderedDict()


def running_costs(session_id: str, history: Sequence[Message]) -> RunningCosts:
    """The running costs of ``history``, the session's stored messages in order."""
    with _lock:
        sums = _sums.get(session_id)
        if sums is None or not _align(sums, history):
            sums = _Sums()
        _extend(sums, history)
        _sums[session_id] = sums
        _sums.move_to_end(session_id)
        while len(_sums) > MAX_SESSIONS:
            _sums.popitem(last=False)
        # No copy: the lists only ever grow by appending (a reset or a compaction makes new lists), so the
        # entries this caller reads never change while another tab extends them.
        return RunningCosts(sums.cumulative, sums.unpriced, sums.offset, len(history))


def forget(session_id: str) -> None:
    """Drop a session's sums (deleted sessions, tests)."""
    with _lock:
        _sums.pop(session_id, None)


def _align(sums: _Sums, history: Sequence[Message]) -> bool:
    """Move ``offset`` to the history's first message; False when the history is not the one summed."""
    if not history or not sums.ids:
        return False
    first = history[0].get("id")
    if first is None:
        return False
    if sums.ids[sums.offset] != first:
        try:  # the cap dropped the oldest messages: a few entries further on
            sums.offset = sums.ids.index(first, sums.offset)
        except ValueError:
            return False
    known = len(sums.ids) - sums.offset
    if known > len(history) or history[known - 1].get("id") != sums.ids[-1]:
        return False
    if sums.offset > len(sums.ids) // 2:  # keep the lists about as long as the history
        _rebase(sums)
    return True


def _rebase(sums: _Sums) -> None:
    cut, cost_base = sums.offset, sums.cumulative[sums.offset - 1]
    unpriced_base = sums.unpriced[sums.offset - 1]
    sums.ids = sums.ids[cut:]
    sums.cumulative = [c - cost_base for c in sums.cumulative[cut:]]
    sums.unpriced = [u - unpriced_base for u in sums.unpriced[cut:]]
    sums.offset = 0


def _extend(sums: _Sums, history: Sequence[Message]) -> None:
    total = sums.cumulative[-1] if sums.cumulative else 0.0
    unpriced = sums.unpriced[-1] if sums.unpriced else 0
    for message in history[len(sums.ids) - sums.offset:]:
        if message.get("role") == "assistant":
            meta = ReplyMeta.from_json(message.get("meta"))
            unpriced += meta.cost is None
            total += (meta.cost or 0.0) + (meta.summary_cost or 0.0)
        sums.ids.append(message.get("id"))
        sums.cumulative.append(total)
        sums.unpriced.append(unpriced)
