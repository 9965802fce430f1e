"""What a stored session would have cost under each trimming strategy, caching on and off.

The inspector asks "what if this conversation had been trimmed another way?". Answering it re-runs the
trimmer for every turn; calling ``trim_history`` 1,000 times would re-count and copy the whole history each
time (quadratic), so this builds the history's index once (exact counts, prefix sums, rendered keys) and
asks the trimmer's own planning functions (``plan_turns``, ``plan_cache_aware``) for each turn's cut:
the same decisions, O(log n) each. Each turn's payload then goes through ``lib.caching.PromptCache``.

A turn's candidates are what the chat sends: the system prompt, the history before the turn, its user message.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lib.caching import CacheProfile, PromptCache, TurnCache, get_profile, uncached_turn, wire_key
from lib.pricing import Price
from lib.tokens import REPLY_PRIMING, estimate_tokens
from lib.trimming import DEFAULT_LOW_WATER, HistoryIndex, plan_cache_aware, plan_turns

Message = Mapping[str, Any]
# "none" sends everything, untrimmed: the baseline the others are measured against.
REPLAY_STRATEGIES: tuple[str, ...] = ("turns", "cache-aware", "seed", "none")


@dataclass
class SessionTotals:
    """One strategy under one cache profile (``profile=None``: caching off) over a whole session."""

    strategy: str
    profile: str | None
    turns: list[TurnCache | None] = field(default_factory=list)  # None: that turn overflowed, nothing sent

    @property
    def sent(self) -> list[TurnCache]:
        return [t for t in self.turns if t is not None]

    @property
    def tokens_sent(self) -> int:
        return sum(t.input_tokens for t in self.sent)

    @property
    def cached_tokens(self) -> int:
        return sum(t.cached_tokens for t in self.sent)

    @property
    def write_tokens(self) -> int:
        return sum(t.write_tokens for t in self.sent)

    @property
    def cost(self) -> float | None:
        costs = [t.cost for t in self.sent]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)

    @property
    def hit_rate(self) -> float:
        """Share of the input tokens sent that were read from the cache."""
        return self.cached_tokens / self.tokens_sent if self.tokens_sent else 0.0

    @property
    def max_payload(self) -> int:
        return max((t.input_tokens for t in self.sent), default=0)

    @property
    def overflowed(self) -> int:
        return sum(t is None for t in self.turns)

    def cumulative_cost(self) -> list[float | None]:
        running: float | None = 0.0
        out: list[float | None] = []
        for turn in self.turns:
            if running is not None and turn is not None:
                running = None if turn.cost is None else running + turn.cost
            out.append(running)
        return out


@dataclass(frozen=True)
class _Session:
    """A history indexed once: system prompt at position 0 (when set), then the stored messages."""

    items: list[Message]
    index: HistoryIndex
    keys: list[str]
    estimates: list[int]  # the seed's chars/4 prefix sums: estimates[i] = estimate of items[:i]
    user_positions: list[int]
    timestamps: list[float] | None

    @classmethod
    def build(cls, history: Sequence[Message], *, model: str, system_prompt: str) -> _Session:
        system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
        items: list[Message] = [*system, *history]
        index = HistoryIndex.build(items, model)
        estimates = [0]
        for m in items:
            estimates.append(estimates[-1] + estimate_tokens(m.get("content", "")))
        users = list(index.starts)
        stamps = [t for t in (items[i].get("ts") for i in users) if isinstance(t, int | float)]
        timestamps = [float(t) for t in stamps] if len(stamps) == len(users) else None
        return cls(items, index, [wire_key(m) for m in items], estimates, users, timestamps)

    def payload(self, strategy: str, user: int, budget: int, *, low_water: float, cut: int | None) -> list[int] | None:
        """Positions sent at the turn whose user message is at ``user``; None when the turn overflows."""
        end = user + 1
        if strategy == "none":
            return list(range(end))
        if strategy == "seed":
            return self._seed(end, budget)
        if self.index.payload_tokens(user, end) > budget:
            return None
        if strategy == "turns":
            start = plan_turns(self.index, end, user, budget)
        elif strategy == "cache-aware":
            start = plan_cache_aware(self.index, end, user, budget, low_water=low_water, cut=cut)
        else:
            raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(REPLAY_STRATEGIES)}")
        system = self.index.system[: bisect.bisect_left(self.index.system, start)]
        return [*system, *range(start, end)]

    def _seed(self, end: int, budget: int) -> list[int]:
        # The seed keeps items[0] and removes index 1 while its estimate is over budget and > 4 messages
        # remain: the payload is items[0] + items[k:end] for the smallest such k (at most end - 3).
        first = self.estimates[1]
        last = max(1, end - 3)
        k = bisect.bisect_left(range(1, last + 1), True,
                               key=lambda j: first + self.estimates[end] - self.estimates[j] <= budget) + 1
        return [0, *range(min(k, last), end)]

    def tokens(self, positions: Sequence[int]) -> list[int]:
        return [self.index.counts[i] for i in positions]

    def system_count(self, positions: Sequence[int]) -> int:
        system = set(self.index.system)
        return next((n for n, i in enumerate(positions) if i not in system), len(positions))


def replay_payloads(
    history: Sequence[Message], *, model: str, budget: int, strategy: str, system_prompt: str = "",
    low_water: float = DEFAULT_LOW_WATER,
) -> list[list[Message] | None]:
    """Every turn's payload (the messages themselves) under one strategy; None for a turn that overflowed."""
    session = _Session.build(history, model=model, system_prompt=system_prompt)
    return [None if p is None else [session.items[i] for i in p]
            for p in _plans(session, strategy, budget, low_water)]


def _plans(session: _Session, strategy: str, budget: int, low_water: float) -> list[list[int] | None]:
    plans: list[list[int] | None] = []
    cut: int | None = None
    system = set(session.index.system)
    for user in session.user_positions:
        positions = session.payload(strategy, user, budget, low_water=low_water, cut=cut)
        plans.append(positions)
        if positions is not None:
            cut = next((i for i in positions if i not in system), cut)
    return plans


def session_costs(
    history: Sequence[Message],
    *,
    model: str,
    budget: int,
    system_prompt: str = "",
    reserve_tokens: int = 0,
    low_water: float = DEFAULT_LOW_WATER,
    strategies: Sequence[str] = REPLAY_STRATEGIES,
    profiles: Sequence[CacheProfile | str | None] = ("openai", None),
    prices: Mapping[str, Price] | None = None,
    use_timestamps: bool = True,
) -> list[SessionTotals]:
    """Every (strategy, profile) pair's per-turn cache figures and cost; profile None = caching off.

    Timestamps of the user messages (``ts``) drive the cache TTL when every turn has one and
    ``use_timestamps`` is set; otherwise the turns are taken to follow each other without a pause.
    """
    if budget - reserve_tokens <= 0:
        raise ValueError("The budget must be larger than the tokens reserved for the reply.")
    session = _Session.build(history, model=model, system_prompt=system_prompt)
    stamps = session.timestamps if use_timestamps else None
    out = []
    for strategy in strategies:
        plans = _plans(session, strategy, budget - reserve_tokens, low_water)
        for profile in profiles:
            out.append(_simulate(session, plans, strategy, get_profile(profile), model, prices, stamps))
    return out


def _simulate(
    session: _Session, plans: list[list[int] | None], strategy: str, profile: CacheProfile | None, model: str,
    prices: Mapping[str, Price] | None, stamps: list[float] | None,
) -> SessionTotals:
    totals = SessionTotals(strategy, None if profile is None else profile.id)
    cache = None if profile is None else PromptCache(profile, model=model, prices=prices)
    for turn, positions in enumerate(plans):
        if positions is None:
            totals.turns.append(None)
            continue
        tokens = session.tokens(positions)
        if cache is None:
            totals.turns.append(uncached_turn(sum(tokens) + REPLY_PRIMING, model=model, prices=prices))
            continue
        totals.turns.append(cache.request_keys([session.keys[i] for i in positions], tokens,
                                               system_messages=session.system_count(positions),
                                               now=None if stamps is None else stamps[turn]))
    return totals
