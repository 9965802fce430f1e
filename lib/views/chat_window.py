"""Which part of a long conversation the chat draws: the newest N turns, or N turns from a chosen one.

Plain data (no streamlit), so it is cheap to test. The browser, not the server, is what slows a long chat
down: drawing 10,000 messages on every rerun took 42 s per interaction, and drawing the newest 50 turns
made "own message shown" ~20x faster. So the chat draws a window of turns, reads only the turn records of
that window (one slice of the store's list, plus the record before it for the difference and cache
status), and offers "show earlier" and a jump to any turn.

A turn is a user message and everything after it up to the next user message. Messages before the first
user message (left by the store's cap) form a turn of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_WINDOW = 50
STEP = 50


@dataclass(frozen=True)
class Window:
    """Turns ``[first, last)`` of ``total`` (indices into ``turn_spans``); ``follow``: track the newest turn."""

    first: int
    last: int
    total: int
    follow: bool = True

    @property
    def earlier(self) -> int:
        return self.first

    @property
    def later(self) -> int:
        return self.total - self.last

    def __len__(self) -> int:
        return self.last - self.first


def turn_spans(history: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """``[start, stop)`` message positions of every turn, in order."""
    if not history:
        return []
    starts = [n for n, message in enumerate(history) if message.get("role") == "user"]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return [(start, stop) for start, stop in zip(starts, [*starts[1:], len(history)], strict=True)]


def window(total: int, *, size: int = DEFAULT_WINDOW, start: int | None = None) -> Window:
    """The newest ``size`` turns (``start`` None), or ``size`` turns from turn index ``start``."""
    size = max(1, size)
    if start is None:
        return Window(max(0, total - size), total, total)
    first = min(max(0, start), max(0, total - 1))
    return Window(first, min(total, first + size), total, follow=False)


def first_turn_number(total: int, turn_count: int) -> int:
    """The turn number of turn index 0: the store's counter counts every turn ever begun, and the cap may
    have dropped the oldest messages, so numbers are counted back from the newest turn."""
    return max(1, turn_count - total + 1)


def index_of_turn(turn: int, *, total: int, turn_count: int) -> int:
    """The turn index that shows turn number ``turn`` (clamped to the conversation)."""
    return min(max(0, turn - first_turn_number(total, turn_count)), max(0, total - 1))


def record_slice(win: Window, *, turn_count: int) -> tuple[int, int]:
    """Positions ``[start, end)`` in the store's turn-record list that cover the window.

    Record k (0-based) is turn k + 1 when every turn left a record. One record before the window is read
    too (the first drawn turn's difference and cache status compare with it), and one after, in case a
    turn left no record (an interrupted page). Records are matched to messages by ``user_id`` afterwards.
    """
    offset = turn_count - win.total
    start = max(0, win.first + offset - 1)
    end = min(turn_count, max(start, win.last + offset + 1))
    return start, end
