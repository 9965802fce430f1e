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

from lib.context.manual import MANUAL_STRATEGIES, ManualChoice, locate
from lib.context.payload import SYSTEM_ROLES, ContextOverflowError, TrimResult, payload_problems
from lib.core import HistoryLabError
from lib.tokens import (
    REPLY_PRIMING,
    EncodingUnavailable,
    choose_encoding,
    encoding_for,
    estimate_tokens,
    message_tokens,
    reply_priming,
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

    ``payload_tokens(start, end)`` is the exact size of "every system message + messages[start:end]", plus
    ``fixed``: what is sent whatever the cut (tool definitions, pinned turns kept outside this list).
    """

    counts: list[int]
    system: list[int]  # positions of system/developer messages, always sent
    starts: list[int]  # positions of user messages: where a whole turn begins
    prefix: list[int]  # prefix[i] = tokens of the non-system messages before position i
    system_tokens: int
    counter: str
    fixed: int = 0
    pinned_tokens: int = 0  # the part of ``fixed`` that is pinned turns (named in an overflow)
    priming: int = REPLY_PRIMING  # what a payload costs besides its messages (lib.tokens.reply_priming)

    @classmethod
    def build(cls, messages: Sequence[Message], model: str, *, fixed: int = 0) -> HistoryIndex:
        counts, counter = per_message_counts(messages, model)
        return cls.from_counts(messages, counts, counter, fixed=fixed, priming=reply_priming(model))

    @classmethod
    def from_counts(cls, messages: Sequence[Message], counts: Sequence[int], counter: str, *, fixed: int = 0,
                    pinned_tokens: int = 0, priming: int = REPLY_PRIMING) -> HistoryIndex:
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
        return cls(list(counts), system, starts, prefix, system_tokens, counter, fixed, pinned_tokens, priming)

    def payload_tokens(self, start: int, end: int) -> int:
        return self.priming + self.fixed + self.system_tokens + self.prefix[end] - self.prefix[start]

    def check_floor(self, budget: int, *, max_tokens: int, reserve_tokens: int) -> int:
        """Position of the newest user message, once sure it fits with the system prompt (else raise)."""
        if not self.starts:
            raise ValueError("Nothing to send: the history has no user message.")
        required = self.payload_tokens(self.starts[-1], len(self.counts))
        if required > budget:
            raise ContextOverflowError(required=required, budget=budget, max_tokens=max_tokens,
                                       reserve_tokens=reserve_tokens, pinned_tokens=self.pinned_tokens,
                                       tool_tokens=self.fixed - self.pinned_tokens)
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
    choice: ManualChoice | None = None,
    tool_tokens: int = 0,
) -> TrimResult:
    """Choose which messages go into the payload. Never mutates ``messages``.

    ``cut`` and ``low_water`` matter only for "cache-aware": pass the previous turn's ``TrimResult.cut``.
    ``choice`` ("You choose", lib.context.manual): turns pinned (always sent) and left out (never sent), for
    the whole-turn strategies. ``tool_tokens``: the tool definitions sent with the payload, counted by
    ``lib.tokens.count_tool_tokens``; they are part of every payload, so the budget holds them first. The
    seed ignores them, as the tutorial's loop does (it counts message content only): its payload can then
    be over budget, and the turn's badges say so.
    """
    if max_tokens <= 0 or reserve_tokens < 0 or tool_tokens < 0:
        raise ValueError("max_tokens must be positive and reserve_tokens and tool_tokens must not be negative")
    if not 0 < low_water <= 1:
        raise ValueError(f"low_water must be in (0, 1], got {low_water}")
    if choice and strategy not in MANUAL_STRATEGIES:
        raise ValueError(f"Pinned and left-out turns layer over the whole-turn strategies "
                         f"({', '.join(MANUAL_STRATEGIES)}), not {strategy!r}.")
    budget = max_tokens - reserve_tokens
    if strategy == "seed":
        # Imported here because lib.context.seed builds on this module (TrimResult, payload_problems).
        from lib.context.seed import seed_trim

        return seed_trim(messages, budget)
    if strategy in ("turns", "cache-aware"):
        return _trim_whole_turns(messages, budget, model=model, strategy=strategy, max_tokens=max_tokens,
                                 reserve_tokens=reserve_tokens, low_water=low_water, cut=cut,
                                 choice=choice or ManualChoice(), tool_tokens=tool_tokens)
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
    reserve_tokens: int, low_water: float, cut: str | None, choice: ManualChoice, tool_tokens: int,
) -> TrimResult:
    counts, counter = per_message_counts(messages, model)
    notes: list[str] = []
    chosen = None
    # The strategy plans over the turns nobody chose: left-out turns are gone, pinned turns are kept aside and
    # their tokens held in ``fixed``, so every turn is still whole and the newest user message still last.
    free = list(range(len(messages)))
    if choice:
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        chosen = locate(messages, choice, system_roles=SYSTEM_ROLES, newest=users[-1] if users else -1)
        notes += chosen.notes
        free = [i for i in free if i not in chosen.pinned and i not in chosen.left_out]
    pinned_tokens = sum(counts[i] for i in chosen.pinned) if chosen else 0
    candidates = [messages[i] for i in free]
    priming = reply_priming(model)
    index = HistoryIndex.from_counts(candidates, [counts[i] for i in free], counter,
                                     fixed=tool_tokens + pinned_tokens, pinned_tokens=pinned_tokens, priming=priming)
    end, newest = len(candidates), index.check_floor(budget, max_tokens=max_tokens, reserve_tokens=reserve_tokens)
    if strategy == "turns":
        start = plan_turns(index, end, newest, budget)
    else:
        position = _position_of(candidates, cut)
        if cut is not None and position is None:
            notes.append("The previous cut is not in this history any more; trimming started afresh.")
        start = plan_cache_aware(index, end, newest, budget, low_water=low_water, cut=position)
    sent = {free[i] for i in range(start, end)} | {free[i] for i in index.system}
    if chosen:
        sent |= chosen.pinned
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        (kept if i in sent else dropped).append(dict(m))
    before = priming + tool_tokens + sum(counts)
    first = candidates[start].get("id") if start < end else None
    return TrimResult(kept, dropped, before, index.payload_tokens(start, end), budget, strategy, counter=counter,
                      notes=notes, cut=None if first is None else str(first),
                      pinned_ids=_ids_at(messages, chosen.pinned) if chosen else (),
                      left_out_ids=_ids_at(messages, chosen.left_out) if chosen else (), tool_tokens=tool_tokens)


def _ids_at(messages: Sequence[Message], positions: frozenset[int]) -> tuple[str, ...]:
    return tuple(str(messages[i]["id"]) for i in sorted(positions) if messages[i].get("id") is not None)


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
