"""A model of provider prompt caches: what re-sent history really costs, turn by turn.

Providers cache the *prefix* of a request. A request whose rendered payload (system prompt, then the
messages, in order) starts exactly like an earlier one reads that prefix from the cache at a fraction of the
input price; anything after the first difference is processed, and billed, again. So a trimmer that drops
the oldest turn on every request moves the start of the payload and pays full price on every turn, while
one that keeps its cut point still keeps the cache.

Profiles are data (``PROFILES``), not code branches. Rules and prices were checked on 2026-11-25 against:
- OpenAI, "Prompt caching" guide, https://developers.openai.com/docs/guides/prompt-caching : automatic for
  prompts of 1,024 tokens or more, exact prefix matches only, hits in 128-token increments, no extra fee for
  writes; in-memory retention keeps prefixes 5-10 minutes of inactivity (at most one hour); extended
  retention (``prompt_cache_retention="24h"``, the default for organisations without ZDR according to the
  installed openai 3.57 SDK's docstring) keeps them up to 24 hours. Reads are billed at the model's
  cached-input price (the ``cache_read`` column of lib.pricing).
- Anthropic, "Prompt caching", https://platform.claude.com/docs/en/build-with-claude/prompt-caching :
  ``cache_control`` breakpoints (at most 4); a 5-minute TTL (writes 1.25x input) or 1-hour TTL (writes 2x
  input), both refreshed on every hit; reads 0.1x input; hits are looked up at a breakpoint and up to 20
  blocks before it; a minimum cacheable prefix of 1,024 tokens for most models, 2,048 or 4,096 for some
  (the model table below, from the same page as mirrored by docs.orq.ai/docs/proxy/prompt-caching).

Simplifications, stated so nothing here teaches something false: prefixes are matched at message
boundaries (a real cache may also match part of the first differing message); token counts are
tiktoken's (approximate for Claude); the +3 reply-priming tokens are never cached; figures are SIMULATED.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from lib.pricing import DEFAULT_PRICES, Price, find_price
from lib.tokens import REPLY_PRIMING, WIRE_KEYS, content_text
from lib.trimming import SYSTEM_ROLES, per_message_counts

Message = Mapping[str, Any]
CacheStatus = Literal["first", "kept", "broken", "expired", "short", "off"]
PER_MILLION = 1_000_000


@dataclass(frozen=True)
class CacheProfile:
    """How one provider's prompt cache decides hits, and what it charges."""

    id: str
    label: str
    min_prefix: int  # a prefix shorter than this is never cached
    granularity: int  # cached tokens are min_prefix + a multiple of this (1 = exact)
    ttl_seconds: float  # an entry unused for this long is gone
    write_multiplier: float  # x input price, for tokens written to the cache
    read_multiplier: float | None  # x input price for cache reads; None = the model's cached-input price
    # "every": every prefix processed is cached (OpenAI). "breakpoints": only the prefixes ending at a
    # cache_control breakpoint (Anthropic): the system prompt and the last message of the payload.
    store: Literal["every", "breakpoints"] = "every"
    lookback: int | None = None  # breakpoints: how many messages before a breakpoint a hit may end
    min_prefix_by_model: tuple[tuple[str, int], ...] = ()  # (model name prefix, minimum), longest wins
    source: str = ""

    def min_prefix_for(self, model: str) -> int:
        matches = [(len(name), tokens) for name, tokens in self.min_prefix_by_model if model.startswith(name)]
        return max(matches)[1] if matches else self.min_prefix

    def read_rate(self, price: Price) -> float:
        if self.read_multiplier is not None:
            return price.input * self.read_multiplier
        return price.input if price.cache_read is None else price.cache_read

    def write_rate(self, price: Price) -> float:
        return price.input * self.write_multiplier


_OPENAI_SOURCE = "https://developers.openai.com/docs/guides/prompt-caching (checked 2026-11-25)"
_ANTHROPIC_SOURCE = "https://platform.claude.com/docs/en/build-with-claude/prompt-caching (checked 2026-11-25)"
_ANTHROPIC_MINIMUMS = (("claude-opus-4-5", 4096), ("claude-opus-4-6", 4096), ("claude-haiku-4-5", 4096),
                       ("claude-sonnet-4-6", 2048), ("claude-3-haiku", 2048), ("claude-3-5-haiku", 2048))
PROFILES: dict[str, CacheProfile] = {
    profile.id: profile
    for profile in (
        CacheProfile("openai", "OpenAI automatic (in-memory, ~5-10 min)", 1024, 128, 5 * 60, 1.0, None,
                     source=_OPENAI_SOURCE),
        CacheProfile("openai-24h", "OpenAI automatic (extended, 24 h)", 1024, 128, 24 * 3600, 1.0, None,
                     source=_OPENAI_SOURCE),
        CacheProfile("anthropic-5m", "Anthropic cache_control (5 min)", 1024, 1, 5 * 60, 1.25, 0.1,
                     store="breakpoints", lookback=20, min_prefix_by_model=_ANTHROPIC_MINIMUMS,
                     source=_ANTHROPIC_SOURCE),
        CacheProfile("anthropic-1h", "Anthropic cache_control (1 hour)", 1024, 1, 3600, 2.0, 0.1,
                     store="breakpoints", lookback=20, min_prefix_by_model=_ANTHROPIC_MINIMUMS,
                     source=_ANTHROPIC_SOURCE),
    )
}


def get_profile(profile: CacheProfile | str | None) -> CacheProfile | None:
    """A profile by id (None = caching off)."""
    if profile is None or isinstance(profile, CacheProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"Unknown cache profile {profile!r}; choose one of {', '.join(PROFILES)}") from None


@dataclass(frozen=True)
class TurnCache:
    """One request through the cache. ``input_tokens = cached + written + uncached``. SIMULATED figures."""

    input_tokens: int
    cached_tokens: int
    write_tokens: int
    uncached_tokens: int
    cost: float | None  # US$ for the input side (output does not depend on the strategy); None = no price
    status: CacheStatus
    broken_at: int | None = None  # first payload index that differs from the previous request
    messages: int = 0
    cached_messages: int = 0  # how many leading payload messages the cache hit covers (for shading)
    simulated: bool = True

    @property
    def label(self) -> str:
        if self.status == "broken":
            return f"cache broken (prefix changed at message {self.broken_at})"
        return {"first": "cache written (first request)", "kept": "cache kept",
                "expired": "cache expired (prefix unchanged, TTL passed)",
                "short": "not cached (prefix below the provider's minimum)", "off": "caching off"}[self.status]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}


class _Node:
    __slots__ = ("children", "expires")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.expires: float | None = None  # None: no cache entry ends at this message boundary


def wire_key(message: Message) -> str:
    """The exact rendered form of a message as a provider sees it (ids, timestamps and meta excluded)."""
    return json.dumps({k: message[k] for k in WIRE_KEYS if message.get(k) is not None}, sort_keys=True,
                      ensure_ascii=False, default=content_text)


class PromptCache:
    """A stateful simulator of one provider's cache for one conversation.

    Each ``request`` finds the longest previously cached prefix of the payload that is still alive
    (message boundaries, TTL by ``now``), then stores this payload's prefixes as the profile says.
    ``now=None`` means "no time passed since the previous request".
    """

    def __init__(self, profile: CacheProfile | str, *, model: str, prices: Mapping[str, Price] | None = None) -> None:
        resolved = get_profile(profile)
        if resolved is None:
            raise ValueError("PromptCache needs a cache profile; with caching off use uncached_turn")
        self.profile = resolved
        self.model = model
        self.price = find_price(model, prices if prices is not None else {p.model: p for p in DEFAULT_PRICES})
        self.min_prefix = resolved.min_prefix_for(model)
        self._root = _Node()
        self._previous: list[str] | None = None
        self._path: list[_Node] = []  # the previous request's nodes, reused when a payload only grows
        self._now = 0.0

    def __repr__(self) -> str:
        return f"PromptCache(profile={self.profile.id!r}, model={self.model!r})"

    def request(self, payload: Sequence[Message], *, now: float | None = None) -> TurnCache:
        counts, _ = per_message_counts(payload, self.model)
        system = next((i for i, m in enumerate(payload) if m.get("role") not in SYSTEM_ROLES), len(payload))
        return self.request_keys([wire_key(m) for m in payload], counts, system_messages=system, now=now)

    def request_keys(
        self, keys: Sequence[str], tokens: Sequence[int], *, system_messages: int = 0, now: float | None = None
    ) -> TurnCache:
        """``request`` for a payload already rendered to keys and counted (the fast path).

        ``system_messages``: how many leading messages are the system prompt (Anthropic's first breakpoint).
        """
        self._now = self._now if now is None else now
        keys = list(keys)
        ends = list(itertools.accumulate(tokens))
        system_end = system_messages
        previous = self._previous
        # A payload that only appends to the previous one (no trimming this turn) reuses its path: one
        # C-level list comparison instead of a walk, so long untrimmed sessions stay fast.
        extends = previous is not None and keys[: len(previous)] == previous
        path = self._walk(keys, self._path if extends else [])
        hit = self._deepest_hit(path, len(keys), system_end)
        matched = ends[hit - 1] if hit else 0
        cached = self._granular(matched)
        prefix_total = ends[-1] if ends else 0
        written = prefix_total - matched if prefix_total >= self.min_prefix else 0
        self._store(path, ends, hit, system_end)
        status, broken_at = self._status(keys, extends, hit, prefix_total)
        self._previous, self._path = keys, path
        total = prefix_total + REPLY_PRIMING
        return TurnCache(total, cached, written, total - cached - written, self._cost(total, cached, written),
                         status, broken_at, len(keys), hit if cached else 0)

    def _walk(self, keys: list[str], known: list[_Node]) -> list[_Node]:
        """The trie nodes of every prefix of ``keys``; ``known`` are those of a prefix already walked."""
        path = list(known)
        node = path[-1] if path else self._root
        for key in keys[len(path):]:
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Node()
            path.append(child)
            node = child
        return path

    def _alive(self, node: _Node) -> bool:
        return node.expires is not None and node.expires >= self._now

    def _deepest_hit(self, path: list[_Node], n: int, system_end: int) -> int:
        """Depth (in messages) of the longest live cached prefix this request may read."""
        lookback = self.profile.lookback
        for depth in range(n, 0, -1):
            reachable = lookback is None or n - depth <= lookback or depth == system_end
            if reachable and self._alive(path[depth - 1]):
                return depth
        return 0

    def _store(self, path: list[_Node], ends: list[int], hit: int, system_end: int) -> None:
        expires = self._now + self.profile.ttl_seconds
        if self.profile.store == "every":  # every prefix long enough is written or refreshed
            for node in itertools.islice(path, bisect.bisect_left(ends, self.min_prefix), None):
                node.expires = expires
            return
        for depth in (hit, system_end, len(path)):  # a hit refreshes its entry; breakpoints write theirs
            if depth and ends[depth - 1] >= self.min_prefix:
                path[depth - 1].expires = expires

    def _granular(self, matched: int) -> int:
        if matched < self.min_prefix:
            return 0
        step = max(1, self.profile.granularity)
        return self.min_prefix + (matched - self.min_prefix) // step * step

    def _status(
        self, keys: list[str], extends: bool, hit: int, prefix_total: int
    ) -> tuple[CacheStatus, int | None]:
        previous = self._previous
        if previous is None:
            return "first", None
        if not extends:  # the first message that differs; a shorter payload differs where it ends
            differs = next((i for i, (a, b) in enumerate(zip(previous, keys, strict=False)) if a != b), len(keys))
            return "broken", differs
        if prefix_total < self.min_prefix:
            return "short", None
        return ("kept", None) if hit else ("expired", None)

    def _cost(self, total: int, cached: int, written: int) -> float | None:
        if self.price is None:
            return None
        uncached = total - cached - written
        return (uncached * self.price.input + cached * self.profile.read_rate(self.price)
                + written * self.profile.write_rate(self.price)) / PER_MILLION


def uncached_turn(tokens: int, *, model: str, prices: Mapping[str, Price] | None = None) -> TurnCache:
    """A request with caching off: every input token at the input price."""
    price = find_price(model, prices if prices is not None else {p.model: p for p in DEFAULT_PRICES})
    cost = None if price is None else tokens * price.input / PER_MILLION
    return TurnCache(tokens, 0, 0, tokens, cost, "off")


def simulate_session(
    payloads: Sequence[Sequence[Message]],
    profile: CacheProfile | str | None,
    *,
    model: str = "gpt-4o-mini",
    timestamps: Sequence[float] | None = None,
    prices: Mapping[str, Price] | None = None,
) -> list[TurnCache]:
    """Send a session's payloads, in order, through one profile's cache (None = caching off)."""
    if timestamps is not None and len(timestamps) != len(payloads):
        raise ValueError("timestamps must have one entry per payload")
    resolved = get_profile(profile)
    if resolved is None:
        return [uncached_turn(REPLY_PRIMING + sum(per_message_counts(p, model)[0]), model=model, prices=prices)
                for p in payloads]
    cache = PromptCache(resolved, model=model, prices=prices)
    return [cache.request(p, now=None if timestamps is None else timestamps[i]) for i, p in enumerate(payloads)]

