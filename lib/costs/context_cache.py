"""Gemini's explicit context caches: when to create one, and what a conversation costs with them.

An explicit cache (``caches.create``) holds a prefix of the request (the system instruction and the first
contents) for a TTL; a request names it in ``cachedContent`` and sends only the rest. Billing (Gemini API
pricing and caching pages, checked 2026-12-06): creating it processes its tokens at the input price, every
request reads them at the cached price, and storage costs ``Price.cache_storage`` per million tokens per hour
of the TTL set (deleting it sooner does not refund the rest). Implicit caching (lib.costs.cache_model's "gemini"
profile) has no storage fee and no guarantee.

``plan_explicit`` is the one policy, used by the Gemini adapter for real caches and by
``compare_explicit_implicit`` for the simulation: reuse the deepest live cache that is a prefix of this
request; create a new one over the whole stable prefix (everything before the new message) when there is
none, or when the history added since the live one is itself at least the model's minimum. A prefix below
the minimum is never cached (the API refuses it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.context import per_message_counts
from lib.core import DEFAULT_PRICES, Price, find_price
from lib.costs.cache_model import PROFILES, PromptCache
from lib.tokens import REPLY_PRIMING

Message = Mapping[str, Any]
PER_MILLION = 1_000_000
IMPLICIT_PROFILE = "gemini"
# A cache that would expire within this many seconds is not reused: it could vanish mid-request.
REUSE_MARGIN_S = 30.0


@dataclass(frozen=True)
class CachePlan:
    """What one request does with explicit caches. Depths count leading contents (0 = the system
    instruction alone); None = no cache."""

    reuse: int | None  # the live cache this request names
    create: int | None  # a new cache over this many leading contents, named instead
    reason: str

    @property
    def depth(self) -> int | None:
        return self.create if self.create is not None else self.reuse


def plan_explicit(tokens_upto: Sequence[int], live: Sequence[int], *, min_tokens: int,
                  has_system: bool) -> CachePlan:
    """``tokens_upto[k]``: tokens of the system instruction plus the first ``k`` stable contents, for
    ``k = 0..stable`` (so ``len(tokens_upto) - 1`` contents are stable); ``live``: depths with a live cache."""
    stable = len(tokens_upto) - 1
    lowest = 0 if has_system else 1
    usable = [d for d in live if lowest <= d <= stable]
    best = max(usable) if usable else None
    whole = tokens_upto[stable] if stable >= lowest else 0
    if best is None:
        if stable >= lowest and whole >= min_tokens:
            return CachePlan(None, stable, f"created a cache over the stable prefix ({whole:,} tokens)")
        return CachePlan(None, None, f"not cached: the stable prefix ({whole:,} tokens) is below the model's "
                                     f"minimum of {min_tokens:,}")
    added = whole - tokens_upto[best]
    if best < stable and added >= min_tokens:
        return CachePlan(None, stable, f"created a new cache: {added:,} tokens were added since the live one")
    return CachePlan(best, None, f"reused the live cache over {best} content(s)"
                     + (f"; the {added:,} tokens added since stay uncached (below the minimum of "
                        f"{min_tokens:,})" if added else ""))


# -- simulation: explicit against implicit, for one conversation -------------------------------------------


@dataclass(frozen=True)
class CacheTurn:
    """One request's input side under one caching mode, in tokens and US$ (SIMULATED)."""

    input_tokens: int
    cached_tokens: int
    created_tokens: int  # put into a new explicit cache by this request
    cost: float | None  # uncached + cached reads + creation + storage for the TTL
    storage_cost: float | None
    note: str = ""


@dataclass(frozen=True)
class CacheComparison:
    model: str
    ttl_hours: float
    explicit: list[CacheTurn]
    implicit: list[CacheTurn]
    uncached: list[CacheTurn]
    min_tokens: int

    @staticmethod
    def total(turns: Sequence[CacheTurn]) -> float | None:
        costs = [t.cost for t in turns]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)


def compare_explicit_implicit(payloads: Sequence[Sequence[Message]], *, model: str, ttl_hours: float = 1.0,
                              seconds_between: float = 60.0,
                              prices: Mapping[str, Price] | None = None) -> CacheComparison:
    """Each turn's payload (system first, then the messages, the new one last) under an explicit cache
    (``plan_explicit``), implicit caching (lib.costs.cache_model's "gemini" profile) and no cache. Counts are tiktoken's
    (approximate for Gemini); turns are ``seconds_between`` apart. SIMULATED figures."""
    table = prices if prices is not None else {p.model: p for p in DEFAULT_PRICES}
    price = find_price(model, table)
    min_tokens = PROFILES[IMPLICIT_PROFILE].min_prefix_for(model)
    implicit_cache = PromptCache(IMPLICIT_PROFILE, model=model, prices=table)
    live: dict[tuple[str, ...], float] = {}  # cached prefix (rendered) -> expiry, in simulated seconds
    explicit: list[CacheTurn] = []
    implicit: list[CacheTurn] = []
    uncached: list[CacheTurn] = []
    for turn, payload in enumerate(payloads):
        now = turn * seconds_between
        counts, _ = per_message_counts(payload, model)
        has_system = bool(payload) and payload[0].get("role") == "system"
        head = 1 if has_system else 0
        contents = list(payload[head:])
        keys = [repr(sorted(m.items())) for m in payload]
        total = sum(counts) + REPLY_PRIMING
        tokens_upto = [sum(counts[: head + k]) for k in range(len(contents))]  # stable = all but the newest
        depths = [k for k in range(len(tokens_upto)) if live.get(tuple(keys[: head + k]), -1.0) - now > REUSE_MARGIN_S]
        plan = plan_explicit(tokens_upto, depths, min_tokens=min_tokens, has_system=has_system)
        created = 0
        if plan.create is not None:
            created = tokens_upto[plan.create]
            live[tuple(keys[: head + plan.create])] = now + ttl_hours * 3600
        cached = tokens_upto[plan.depth] if plan.depth is not None else 0
        explicit.append(_explicit_turn(price, total, cached, created, ttl_hours, plan.reason))
        implicit_turn = implicit_cache.request(payload, now=now)
        implicit.append(CacheTurn(implicit_turn.input_tokens, implicit_turn.cached_tokens, 0, implicit_turn.cost, 0.0,
                                  implicit_turn.label))
        uncached.append(_explicit_turn(price, total, 0, 0, ttl_hours, "no cache"))
    return CacheComparison(model, ttl_hours, explicit, implicit, uncached, min_tokens)


def _explicit_turn(price: Price | None, total: int, cached: int, created: int, ttl_hours: float,
                   note: str) -> CacheTurn:
    if price is None:
        return CacheTurn(total, cached, created, None, None, note)
    read = price.input if price.cache_read is None else price.cache_read
    write = price.input if price.cache_write is None else price.cache_write
    storage = None if created and price.cache_storage is None else \
        created * ttl_hours * (price.cache_storage or 0.0) / PER_MILLION
    cost = None if storage is None else \
        ((total - cached) * price.input + cached * read + created * write) / PER_MILLION + storage
    return CacheTurn(total, cached, created, cost, storage, note)

