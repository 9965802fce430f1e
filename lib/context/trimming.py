"""Shape the payload to fit the context window. The stored history is never trimmed.

Strategies (``STRATEGY_LABELS`` holds the names pages show):
- ``"turns"`` drops whole turns, oldest first, on exact chat-format counts: the most history that fits.
- ``"cache-aware"`` keeps every guarantee of "turns" but moves its cut point rarely: it keeps the previous
  turn's cut while the payload fits, then drops down to ``low_water × budget`` in one step. Dropping the
  oldest turn on every request changes the payload's prefix every turn, so the provider's prompt cache
  never hits; a cut that stays put keeps the prefix byte-identical and the re-sent history cheap.
- ``"seed"`` gives exactly what the seed's ``trimHistory`` gives, faults included, so they can be shown. It is
  computed by ``lib.context.seed`` in O(n log n): the seed's own loop is O(n²), and any history a client sends
  or a session grows to reaches this function. ``trim_seed_literal`` keeps that loop, capped at
  ``LITERAL_SEED_MAX_MESSAGES``, as the reference the fast version is tested against.
- ``"summary"`` (client-side compaction) needs a summariser and a stored summary, so it lives in
  ``lib.context.compaction.compact_history``; ``trim_history`` refuses it with a pointer there.

The turn strategies work on an index of the history (per-message counts and prefix sums) so the same
planning functions serve one payload here and a whole session's replay in ``lib.costs.cache_model``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lib.context.payload import SYSTEM_ROLES, ContextOverflowError, TrimResult, payload_problems
from lib.core import HistoryLabError
from lib.tokens import (
    REPLY_PRIMING,
    EncodingUnavailable,
    choose_encoding,
    encoding_for,
    estimate_tokens,
    message_tokens,
)

Strategy = Literal["turns", "cache-aware", "seed", "summary"]
# What trim_history itself can do; "summary" goes through lib.context.compaction.
STRATEGIES: tuple[str, ...] = ("turns", "cache-aware", "seed")
STRATEGY_LABELS: dict[str, str] = {
    "turns": "Whole turns (safe)",
    "cache-aware": "Whole turns, cache-friendly",
    "seed": "Tutorial's trimHistory (naive)",
    "summary": "Summarise old turns",
}
STRATEGY_HELP: dict[str, str] = {
    "turns": "Drops the oldest whole turns until the payload fits. Always a valid request, but once the "
             "window is full it drops a turn on every request, so the prompt cache misses every time.",
    "cache-aware": "Drops old turns in one larger step (down to 70% of the budget) and then keeps the same "
                   "starting point while the payload fits, so the prompt's prefix stays identical and the "
                   "provider's cache keeps hitting.",
    "seed": "The tutorial's trimHistory: removes the second message while the chars/4 estimate is over "
            "budget. Can start with an assistant message or split a tool call from its result.",
    "summary": "Replaces the oldest turns with one summary message after the system prompt; the newest "
               "turns stay verbatim. Costs one extra summarisation request when it compacts.",
}
DEFAULT_LOW_WATER = 0.7
# The literal loop recounts every message after each removal: about n²/2 estimates, so 2,500 messages cost
# about 3 million (under a second) while 16,000 cost 128 million (close to a minute of CPU).
LITERAL_SEED_MAX_MESSAGES = 2_500
Message = Mapping[str, Any]


class LiteralSeedTooLarge(HistoryLabError, ValueError):
    """The quadratic literal seed loop was asked to run on more messages than it accepts."""

    def __init__(self, *, messages: int, limit: int) -> None:
        self.messages = messages
        self.limit = limit
        super().__init__(
            f"The literal seed loop is O(n²) and runs on at most {limit:,} messages; got {messages:,}. "
            'Use trim_history(..., strategy="seed"), which returns the same result in O(n log n).'
        )


@dataclass(frozen=True)
class HistoryIndex:
    """Per-message counts of a candidate list, and prefix sums over its non-system messages.

    ``payload_tokens(start, end)`` is the exact size of "every system message + messages[start:end]".
    """

    counts: list[int]
    system: list[int]  # positions of system/developer messages, always sent
    starts: list[int]  # positions of user messages: where a whole turn begins
    prefix: list[int]  # prefix[i] = tokens of the non-system messages before position i
    system_tokens: int
    counter: str

    @classmethod
    def build(cls, messages: Sequence[Message], model: str) -> HistoryIndex:
        counts, counter = per_message_counts(messages, model)
        system: list[int] = []
        starts: list[int] = []
        prefix = [0]
        total = system_tokens = 0
        for i, m in enumerate(messages):  # one pass: positions and prefix sums together
            role = m.get("role")
            if role in SYSTEM_ROLES:
                system.append(i)
                system_tokens += counts[i]
            else:
                total += counts[i]
                if role == "user":
                    starts.append(i)
            prefix.append(total)
        return cls(counts, system, starts, prefix, system_tokens, counter)

    def payload_tokens(self, start: int, end: int) -> int:
        return REPLY_PRIMING + self.system_tokens + self.prefix[end] - self.prefix[start]

    def check_floor(self, budget: int, *, max_tokens: int, reserve_tokens: int) -> int:
        """Position of the newest user message, once sure it fits with the system prompt (else raise)."""
        if not self.starts:
            raise ValueError("Nothing to send: the history has no user message.")
        required = self.payload_tokens(self.starts[-1], len(self.counts))
        if required > budget:
            raise ContextOverflowError(required=required, budget=budget, max_tokens=max_tokens,
                                       reserve_tokens=reserve_tokens)
        return self.starts[-1]

    def newest_slot(self, newest: int) -> int:
        """Index into ``starts`` of the user message at position ``newest``."""
        return bisect.bisect_right(self.starts, newest) - 1

    def slot_of(self, position: int) -> int | None:
        i = bisect.bisect_left(self.starts, position)
        return i if i < len(self.starts) and self.starts[i] == position else None

    def first_fitting(self, lo: int, hi: int, end: int, limit: int) -> int | None:
        """The earliest turn start in ``starts[lo:hi]`` whose suffix fits ``limit``.

        Suffixes shrink as the start moves later, so a binary search finds it: O(log n) per payload.
        """
        i = bisect.bisect_left(range(lo, hi), True, key=lambda k: self.payload_tokens(self.starts[k], end) <= limit)
        return self.starts[lo + i] if lo + i < hi else None


def plan_turns(index: HistoryIndex, end: int, newest: int, budget: int) -> int:
    """"turns": the earliest turn start whose suffix fits (greedy, newest turns first). Caller checks the floor."""
    start = index.first_fitting(0, index.newest_slot(newest) + 1, end, budget)
    return newest if start is None else start


def plan_cache_aware(
    index: HistoryIndex, end: int, newest: int, budget: int, *, low_water: float, cut: int | None
) -> int:
    """"cache-aware": keep ``cut`` while it fits; otherwise drop to ``low_water × budget`` in one step."""
    hi = index.newest_slot(newest) + 1
    slot = None if cut is None or cut > newest else index.slot_of(cut)
    if slot is None:
        slot = 0  # a fresh start: the same rule from the beginning of the history
    if index.payload_tokens(index.starts[slot], end) <= budget:
        return index.starts[slot]
    start = index.first_fitting(slot, hi, end, math.floor(low_water * budget))
    return newest if start is None else start


def trim_history(
    messages: Sequence[Message],
    max_tokens: int = 80_000,
    *,
    model: str = "gpt-4o-mini",
    strategy: str = "turns",
    reserve_tokens: int = 0,
    low_water: float = DEFAULT_LOW_WATER,
    cut: str | None = None,
) -> TrimResult:
    """Choose which messages go into the payload. Never mutates ``messages``.

    ``cut`` and ``low_water`` matter only for "cache-aware": pass the previous turn's ``TrimResult.cut``.
    """
    if max_tokens <= 0 or reserve_tokens < 0:
        raise ValueError("max_tokens must be positive and reserve_tokens must not be negative")
    if not 0 < low_water <= 1:
        raise ValueError(f"low_water must be in (0, 1], got {low_water}")
    budget = max_tokens - reserve_tokens
    if strategy == "seed":
        # Imported here because lib.context.seed builds on this module (TrimResult, payload_problems).
        from lib.context.seed import seed_trim

        return seed_trim(messages, budget)
    if strategy in ("turns", "cache-aware"):
        return _trim_whole_turns(messages, budget, model=model, strategy=strategy, max_tokens=max_tokens,
                                 reserve_tokens=reserve_tokens, low_water=low_water, cut=cut)
    if strategy == "summary":
        raise ValueError("The 'summary' strategy needs a summariser: call lib.context.compaction.compact_history.")
    raise ValueError(f"Unknown trimming strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def trim_seed_literal(
    messages: Sequence[Message], budget: int, *, max_messages: int = LITERAL_SEED_MAX_MESSAGES
) -> TrimResult:
    """The seed's trimHistory as written: recount everything, splice index 1, repeat. O(n²) on purpose.

    The reference that lib.context.seed (what ``trim_history`` runs) is tested against. Raises
    ``LiteralSeedTooLarge`` beyond ``max_messages``; only a benchmark that measures the loop raises the cap.
    """
    if len(messages) > max_messages:
        raise LiteralSeedTooLarge(messages=len(messages), limit=max_messages)
    work = list(messages)
    removed: set[int] = set()
    positions = list(range(len(work)))

    def total() -> int:
        return sum(estimate_tokens(m.get("content", "")) for m in work)

    before = total()
    current = before
    while current > budget and len(work) > 4:
        del work[1]
        removed.add(positions.pop(1))
        current = total()
    kept = [dict(m) for i, m in enumerate(messages) if i not in removed]
    dropped = [dict(m) for i, m in enumerate(messages) if i in removed]
    return TrimResult(kept, dropped, before, current, budget, "seed", counter="chars/4",
                      notes=payload_problems(kept), cut=_first_conversation_id(kept))


def _trim_whole_turns(
    messages: Sequence[Message], budget: int, *, model: str, strategy: str, max_tokens: int,
    reserve_tokens: int, low_water: float, cut: str | None,
) -> TrimResult:
    index = HistoryIndex.build(messages, model)
    end, newest = len(messages), index.check_floor(budget, max_tokens=max_tokens, reserve_tokens=reserve_tokens)
    notes: list[str] = []
    if strategy == "turns":
        start = plan_turns(index, end, newest, budget)
    else:
        position = _position_of(messages, cut)
        if cut is not None and position is None:
            notes.append("The previous cut is not in this history any more; trimming started afresh.")
        start = plan_cache_aware(index, end, newest, budget, low_water=low_water, cut=position)
    # In history order: the system messages before the cut, then everything from it (a contiguous suffix).
    system = set(index.system)
    kept = [dict(messages[i]) for i in index.system if i < start]
    kept += (dict(m) for m in messages[start:])
    dropped = [dict(m) for i, m in enumerate(messages[:start]) if i not in system]
    return TrimResult(kept, dropped, index.payload_tokens(0, end), index.payload_tokens(start, end), budget,
                      strategy, counter=index.counter, notes=notes, cut=_first_conversation_id(kept))


def _position_of(messages: Sequence[Message], message_id: str | None) -> int | None:
    if message_id is None:
        return None
    for i in range(len(messages) - 1, -1, -1):  # the cut is usually recent: search from the end
        if messages[i].get("id") == message_id:
            return i if messages[i].get("role") == "user" else None
    return None


def _first_conversation_id(payload: Sequence[Message]) -> str | None:
    first = next((m for m in payload if m.get("role") not in SYSTEM_ROLES), None)
    return None if first is None or first.get("id") is None else str(first["id"])


def per_message_counts(messages: Sequence[Message], model: str) -> tuple[list[int], str]:
    """Exact chat-format tokens of every message, or chars/4 + framing when the encoding can't load."""
    try:
        encoding_for(model)
    except EncodingUnavailable:
        # Degrade to the estimate (plus framing) rather than refuse to build a payload.
        return [estimate_tokens(m.get("content", "")) + 3 for m in messages], "chars/4"
    return [message_tokens(m, model) for m in messages], choose_encoding(model).name
