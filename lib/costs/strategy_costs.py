"""What a stored session would have cost under each trimming strategy, caching on and off.

The inspector asks "what if this conversation had been trimmed another way?". Answering it re-runs the
trimmer for every turn; calling ``trim_history`` 1,000 times would re-count and copy the whole history each
time (quadratic), so this builds the history's index once (exact counts, prefix sums, rendered keys) and
asks the trimmer's own planning functions (``plan_turns``, ``plan_cache_aware``) for each turn's cut:
the same decisions, O(log n) each. Each turn's payload then goes through ``lib.costs.cache_model.PromptCache``.

A turn's candidates are what the chat sends: the system prompt, the history before the turn, its user message.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lib.context import DEFAULT_LOW_WATER, HistoryIndex, plan_cache_aware, plan_turns
from lib.core import Price
from lib.costs.cache_model import PromptCache, TurnCache, uncached_turn, wire_key
from lib.costs.cache_profiles import CacheProfile, get_profile
from lib.tokens import estimate_tokens, reply_priming

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
class _Plan:
    """One turn's payload as positions: ``head`` (system messages kept in front), then ``start..end-1``.

    Every strategy sends such a shape, so a plan is O(system messages) whatever the payload's length:
    replaying "none" over 5,000 turns never builds 5,000 growing position lists.
    """

    head: tuple[int, ...]
    start: int
    end: int

    @property
    def size(self) -> int:
        return len(self.head) + self.end - self.start

    def at(self, i: int) -> int:
        return self.head[i] if i < len(self.head) else self.start + i - len(self.head)

    def suffix(self, keep: int) -> list[int]:
        """The positions from payload index ``keep`` on."""
        return [*self.head[keep:], *range(self.start + max(0, keep - len(self.head)), self.end)]

    def positions(self) -> list[int]:
        return self.suffix(0)


@dataclass(frozen=True)
class _Session:
    """A history indexed once: system prompt at position 0 (when set), then the stored messages."""

    items: list[Message]
    index: HistoryIndex
    keys: list[str]
    estimates: list[int]  # the seed's chars/4 prefix sums: estimates[i] = estimate of items[:i]
    totals: list[int]  # exact prefix sums over every item: totals[i] = tokens of items[:i]
    system_run: list[int]  # system_run[i] = how many system messages follow each other from position i
    system_totals: list[int]  # system_totals[k] = tokens of the first k system messages
    user_positions: list[int]
    timestamps: list[float] | None

    @classmethod
    def build(cls, history: Sequence[Message], *, model: str, system_prompt: str) -> _Session:
        system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
        items: list[Message] = [*system, *history]
        index = HistoryIndex.build(items, model)
        estimates = list(itertools.accumulate((estimate_tokens(m.get("content", "")) for m in items), initial=0))
        totals = list(itertools.accumulate(index.counts, initial=0))
        run = [0] * (len(items) + 1)
        for i in reversed(index.system):  # positions ascending, so i + 1 is done before i
            run[i] = run[i + 1] + 1
        users = list(index.starts)
        stamps = [t for t in (items[i].get("ts") for i in users) if isinstance(t, int | float)]
        timestamps = [float(t) for t in stamps] if len(stamps) == len(users) else None
        system_totals = list(itertools.accumulate((index.counts[i] for i in index.system), initial=0))
        return cls(items, index, [wire_key(m) for m in items], estimates, totals, run, system_totals, users,
                   timestamps)

    def payload(self, strategy: str, user: int, budget: int, *, low_water: float, cut: int | None) -> _Plan | None:
        """What is sent at the turn whose user message is at ``user``; None when the turn overflows."""
        end = user + 1
        if strategy == "none":
            return _Plan((), 0, end)
        if strategy == "seed":
            return self._seed(end, budget)
        index = self.index_until(end)
        if index.payload_tokens(user, end) > budget:
            return None
        if strategy == "turns":
            start = plan_turns(index, end, user, budget)
        elif strategy == "cache-aware":
            start = plan_cache_aware(index, end, user, budget, low_water=low_water, cut=cut)
        else:
            raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(REPLAY_STRATEGIES)}")
        return _Plan(tuple(self.index.system[: bisect.bisect_left(self.index.system, start)]), start, end)

    def index_until(self, end: int) -> HistoryIndex:
        """The index as the trimmer builds it for ``items[:end]``: system messages stored later (an imported
        session may hold some) are not sent at this turn, so they must not count against its budget."""
        system = self.index.system
        before = bisect.bisect_left(system, end)
        if before == len(system):
            return self.index
        return replace(self.index, system_tokens=self.system_totals[before])

    def _seed(self, end: int, budget: int) -> _Plan:
        # The seed keeps items[0] and removes index 1 while its estimate is over budget and > 4 messages
        # remain: the payload is items[0] + items[k:end] for the smallest such k (at most end - 3).
        first = self.estimates[1]
        last = max(1, end - 3)
        k = bisect.bisect_left(range(1, last + 1), True,
                               key=lambda j: first + self.estimates[end] - self.estimates[j] <= budget) + 1
        return _Plan((0,), min(k, last), end)

    def tokens(self, plan: _Plan) -> int:
        return sum(self.index.counts[i] for i in plan.head) + self.totals[plan.end] - self.totals[plan.start]

    def system_count(self, plan: _Plan) -> int:
        """How many leading payload messages are system messages (Anthropic's first breakpoint)."""
        for n, i in enumerate(plan.head):
            if self.system_run[i] == 0:
                return n
        return len(plan.head) + min(self.system_run[plan.start], plan.end - plan.start)

    def first_free(self, plan: _Plan) -> int | None:
        """The first non-system position sent (a "cache-aware" cut)."""
        free = next((i for i in plan.head if self.system_run[i] == 0), None)
        if free is None and plan.start + self.system_run[plan.start] < plan.end:
            free = plan.start + self.system_run[plan.start]
        return free

    def common(self, a: _Plan, b: _Plan) -> int:
        """How many leading messages two payloads share, by rendered content (what a cache compares)."""
        n = min(a.size, b.size)
        if a.head == b.head and a.start == b.start:
            return n
        keys = self.keys
        return next((i for i in range(n) if keys[a.at(i)] != keys[b.at(i)]), n)


def replay_payloads(
    history: Sequence[Message], *, model: str, budget: int, strategy: str, system_prompt: str = "",
    low_water: float = DEFAULT_LOW_WATER,
) -> list[list[Message] | None]:
    """Every turn's payload (the messages themselves) under one strategy; None for a turn that overflowed."""
    session = _Session.build(history, model=model, system_prompt=system_prompt)
    return [None if p is None else [session.items[i] for i in p.positions()]
            for p in _plans(session, strategy, budget, low_water)]


def _plans(session: _Session, strategy: str, budget: int, low_water: float) -> list[_Plan | None]:
    plans: list[_Plan | None] = []
    cut: int | None = None
    for user in session.user_positions:
        plan = session.payload(strategy, user, budget, low_water=low_water, cut=cut)
        plans.append(plan)
        if plan is not None:
            free = session.first_free(plan)
            cut = cut if free is None else free
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
    session: _Session, plans: list[_Plan | None], strategy: str, profile: CacheProfile | None, model: str,
    prices: Mapping[str, Price] | None, stamps: list[float] | None,
) -> SessionTotals:
    totals = SessionTotals(strategy, None if profile is None else profile.id)
    cache = None if profile is None else PromptCache(profile, model=model, prices=prices)
    previous: _Plan | None = None
    for turn, plan in enumerate(plans):
        if plan is None:
            totals.turns.append(None)
            continue
        if cache is None:
            totals.turns.append(uncached_turn(session.tokens(plan) + reply_priming(model), model=model,
                                              prices=prices))
            continue
        # Only what differs from the previous payload goes to the cache: O(change), not O(payload).
        keep = 0 if previous is None else session.common(previous, plan)
        new = plan.suffix(keep)
        totals.turns.append(cache.request_suffix(keep, [session.keys[i] for i in new],
                                                 [session.index.counts[i] for i in new],
                                                 system_messages=session.system_count(plan),
                                                 now=None if stamps is None else stamps[turn]))
        previous = plan
    return totals
