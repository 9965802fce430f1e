"""A model of provider prompt caches: what re-sent history really costs, turn by turn.

Providers cache the *prefix* of a request. A request whose rendered payload (system prompt, then the
messages, in order) starts exactly like an earlier one reads that prefix from the cache at a fraction of the
input price; anything after the first difference is processed, and billed, again. So a trimmer that drops
the oldest turn on every request moves the start of the payload and pays full price on every turn, while
one that keeps its cut point still keeps the cache.

Profiles are data (``PROFILES``), not code branches; ``profile_for_model`` picks a model's. The OpenAI automatic
rules were checked on 2026-11-25, gpt-5.6's ``prompt_cache_options`` and Anthropic's per-model minimums on
2026-12-06 (sources beside ``PROFILES``), against:
- OpenAI, "Prompt caching" guide, https://developers.openai.com/docs/guides/prompt-caching : automatic for
  prompts of 1,024 tokens or more, exact prefix matches only, hits in 128-token increments, no extra fee for
  writes; in-memory retention keeps prefixes 5-10 minutes of inactivity (at most one hour); extended
  retention (``prompt_cache_retention="24h"``, the default for organisations without ZDR according to the
  installed openai 3.57 SDK's docstring) keeps them up to 24 hours. Reads are billed at the model's
  cached-input price (the ``cache_read`` column of lib.core.pricing).
- Anthropic, "Prompt caching", https://platform.claude.com/docs/en/build-with-claude/prompt-caching :
  ``cache_control`` breakpoints (at most 4); a 5-minute TTL (writes 1.25x input) or 1-hour TTL (writes 2x
  input), both refreshed on every hit; reads 0.1x input; hits are looked up at a breakpoint and up to 20
  blocks before it; a minimum cacheable prefix per model, from 512 to 4,096 tokens (``ANTHROPIC_MIN_PREFIX``).
- OpenAI gpt-5.6 and later: ``prompt_cache_options`` (openai 3.57): one implicit breakpoint, the latest 80
  considered with no lookback limit, a 30-minute or 12-hour minimum lifetime, writes billed at 1.25x input.

- Gemini, "Context caching", https://ai.google.dev/gemini-api/docs/caching (last updated 2026-10-13,
  checked 2026-12-06): implicit caching is on by default for Gemini 2.5 and newer, with no fee for writes
  and reads at the model's cached price; the minimum prefix is 4,096 tokens for the 3.x models and 2,048
  for 2.5 Flash and 2.5 Pro. The page gives no lifetime ("send requests with a similar prefix in a short
  amount of time"), so the profile assumes 5 minutes, like OpenAI's in-memory cache. Explicit context caches
  (TTL, storage priced per hour) are modelled in lib.costs.context_cache, not here.

Tool definitions are part of the cached prefix, where each provider puts them: Anthropic documents the order
tools, then system, then messages (the same prompt-caching page); OpenAI documents that tools are cached as
part of the prefix but not where, and its cookbook renders them into the system message after the
instructions, so the OpenAI profiles place them after the system prompt. Gemini documents neither; its
profile places them after the system instruction too (an explicit cache holds both). Either way, changing one tool
changes the prefix from that point on. (A breakpoint right after the tools alone is not modelled: a small
tool set is far below every minimum cacheable prefix.)

Simplifications, stated so nothing here teaches something false: prefixes are matched at message
boundaries (a real cache may also match part of the first differing message); token counts are
tiktoken's (approximate for Claude); the reply-priming tokens (+3, or Mistral's <s>) are never cached;
figures are SIMULATED.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from lib.context import SYSTEM_ROLES, per_message_counts
from lib.core import DEFAULT_PRICES, WIRE_KEYS, Price, find_price
from lib.costs.cache_profiles import (
    CacheProfile,
    get_profile,
)
from lib.tokens import content_text, reply_priming

Message = Mapping[str, Any]
CacheStatus = Literal["first", "kept", "broken", "expired", "short", "off"]
PER_MILLION = 1_000_000


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


def place_tools(profile: CacheProfile, keys: Sequence[str], tokens: Sequence[int], system_messages: int,
                tools: tuple[str, int] | None) -> tuple[list[str], list[int], int]:
    """The payload's keys and counts with the tool block where ``profile``'s provider renders it: first
    (Anthropic) or after the leading system messages (OpenAI). The block counts as one more leading
    "system" entry, so Anthropic's system breakpoint covers it."""
    keys, tokens = list(keys), list(tokens)
    if tools is None:
        return keys, tokens, system_messages
    at = 0 if profile.tools_first else system_messages
    keys.insert(at, "tools:" + tools[0])
    tokens.insert(at, tools[1])
    return keys, tokens, system_messages + 1


def wire_key(message: Message) -> str:
    """The exact rendered form of a message as a provider sees it (ids, timestamps and meta excluded)."""
    return json.dumps({k: message[k] for k in WIRE_KEYS if message.get(k) is not None}, sort_keys=True,
                      ensure_ascii=False, default=content_text)


def common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    """How many leading items ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:  # the common case (a payload that only grew), compared at C speed
        return n
    return next(i for i in range(n) if a[i] != b[i])


class PromptCache:
    """A stateful simulator of one provider's cache for one conversation.

    Each ``request`` finds the longest previously cached prefix of the payload that is still alive
    (message boundaries, TTL by ``now``), then stores this payload's prefixes as the profile says.
    ``now=None`` means "no time passed since the previous request".

    The cost of a request is O(messages that changed since the previous request + lookback), not O(payload):
    the previous payload's trie path is kept and cut where the new payload differs, and (``store="every"``)
    all of its entries share one expiry cell. ``request_suffix`` takes the payload as that difference.
    """

    def __init__(self, profile: CacheProfile | str, *, model: str, prices: Mapping[str, Price] | None = None) -> None:
        resolved = get_profile(profile)
        if resolved is None:
            raise ValueError("PromptCache needs a cache profile; with caching off use uncached_turn")
        self.profile = resolved
        self.model = model
        self.price = find_price(model, prices if prices is not None else {p.model: p for p in DEFAULT_PRICES})
        self.min_prefix = resolved.min_prefix_for(model)
        # The trie of every payload prefix seen, flat (node ids, no object per node: a long replay builds
        # hundreds of thousands of nodes, which as objects would keep the garbage collector busy). Node 0 is
        # the empty prefix. A node's entry lives in a cell: _expiry[_cell_of[node]], -1 for no entry. In
        # "every" mode the entries of the latest payload share one cell, so refreshing the whole payload is
        # one assignment instead of one per message.
        # New nodes come in chains (one request's unseen tail) with consecutive ids: only a chain's first node
        # goes into _children; inside a chain, node v's child is v + 1 under the chain's next key. A trimmer
        # that shifts its payload every turn so adds one dict entry per turn, not one per message.
        self._children: dict[tuple[int, str], int] = {}
        self._chain_first: list[int] = []  # first node id of each chain, ascending
        self._chain_keys: list[list[str]] = []  # the keys of each chain's nodes
        self._cell_of: list[int] = [-1]
        self._expiry: list[float] = [-math.inf]
        self._cell = 0  # "every": the cell shared by the previous payload's entries
        self._started = False
        self._keys: list[str] = []  # the previous payload, rendered
        self._path: list[int] = []  # its trie nodes
        self._ends: list[int] = []  # its cumulative token counts
        self._now = 0.0

    def __repr__(self) -> str:
        return f"PromptCache(profile={self.profile.id!r}, model={self.model!r})"

    def request(self, payload: Sequence[Message], *, now: float | None = None,
                tools: tuple[str, int] | None = None) -> TurnCache:
        """``tools``: (a key that changes when any definition changes, their tokens), placed as the profile says."""
        counts, _ = per_message_counts(payload, self.model)
        system = next((i for i, m in enumerate(payload) if m.get("role") not in SYSTEM_ROLES), len(payload))
        keys, counts, system = place_tools(self.profile, [wire_key(m) for m in payload], counts, system, tools)
        return self.request_keys(keys, counts, system_messages=system, now=now)

    def request_keys(
        self, keys: Sequence[str], tokens: Sequence[int], *, system_messages: int = 0, now: float | None = None
    ) -> TurnCache:
        """``request`` for a payload already rendered to keys and counted (``tokens`` must follow the keys:
        equal keys, equal counts).

        ``system_messages``: how many leading messages are the system prompt (Anthropic's first breakpoint).
        """
        keys = list(keys)
        keep = common_prefix(self._keys, keys) if self._started else 0
        return self.request_suffix(keep, keys[keep:], tokens[keep:], system_messages=system_messages, now=now)

    def request_suffix(
        self, keep: int, keys: Sequence[str], tokens: Sequence[int], *, system_messages: int = 0,
        now: float | None = None,
    ) -> TurnCache:
        """``request_keys`` for the payload "the previous payload's first ``keep`` messages, then ``keys``".

        ``keep`` must be where the two payloads first differ (or the shorter one's length); the caller that
        knows how its payloads relate (lib.costs.strategy_costs) passes it without rendering the whole payload.
        """
        if not 0 <= keep <= len(self._keys) or len(keys) != len(tokens):
            raise ValueError(f"keep must be 0..{len(self._keys)} (the previous payload's length) and keys and "
                             "tokens must have the same length")
        self._now = self._now if now is None else now
        first, extends = not self._started, self._started and keep == len(self._keys)
        # A miss on an unchanged prefix is an expiry only if the previous payload could be cached at all.
        was_cacheable = bool(self._ends) and self._ends[-1] >= self.min_prefix
        tail = self._path[keep:]
        self._cut(keep)
        known = self._extend(keys, tokens)
        n, system_end = len(self._path), system_messages
        hit = self._deepest_hit(n, keep, known, system_end)
        matched = self._ends[hit - 1] if hit else 0
        cached = self._granular(matched)
        prefix_total = self._ends[-1] if self._ends else 0
        written = prefix_total - matched if prefix_total >= self.min_prefix else 0
        self._store(tail, keep, known, hit, system_end)
        self._started = True
        status: CacheStatus
        broken_at = None
        if prefix_total < self.min_prefix:  # nothing is written or read below the minimum, whatever changed
            status = "short"
        elif first:
            status = "first"
        elif not extends:  # the first message that differs; a shorter payload differs where it ends
            status, broken_at = "broken", keep
        elif hit:
            status = "kept"
        else:
            status = "expired" if was_cacheable else "first"
        total = prefix_total + reply_priming(self.model)
        return TurnCache(total, cached, written, total - cached - written, self._cost(total, cached, written),
                         status, broken_at, n, hit if cached else 0)

    def _cut(self, keep: int) -> None:
        del self._keys[keep:], self._path[keep:], self._ends[keep:]

    def _extend(self, keys: Sequence[str], tokens: Sequence[int]) -> int:
        """Walk (and grow) the trie below the kept prefix; returns how deep the nodes already existed.

        Below the first new node everything is new: those nodes get consecutive ids, added in bulk.
        """
        path, children, cell_of = self._path, self._children, self._cell_of
        self._ends.extend(itertools.islice(itertools.accumulate(tokens, initial=self._ends[-1] if self._ends else 0),
                                           1, None))
        self._keys.extend(keys)
        node = path[-1] if path else 0
        for i, key in enumerate(keys):
            child = children.get((node, key))
            if child is None:
                child = self._chain_child(node, key)
            if child is None:
                first = len(cell_of)
                children[(node, key)] = first
                self._chain_first.append(first)
                self._chain_keys.append(list(keys[i:]))
                cell_of.extend(itertools.repeat(-1, len(keys) - i))
                known = len(path)
                path.extend(range(first, first + len(keys) - i))
                return known
            path.append(child)
            node = child
        return len(path)

    def _chain_child(self, node: int, key: str) -> int | None:
        """``node``'s child under ``key`` inside its own chain, if it has one."""
        chain = bisect.bisect_right(self._chain_first, node) - 1
        if chain < 0:
            return None
        offset = node + 1 - self._chain_first[chain]
        chain_keys = self._chain_keys[chain]
        return node + 1 if offset < len(chain_keys) and chain_keys[offset] == key else None

    def _alive(self, node: int) -> bool:
        cell = self._cell_of[node]
        return cell >= 0 and self._expiry[cell] >= self._now

    def _deepest_hit(self, n: int, keep: int, known: int, system_end: int) -> int:
        """Depth (in messages) of the longest live cached prefix this request may read.

        Depths above ``known`` are nodes created by this request, with no entry. Depths keep+1..known are
        new to this payload and looked at one by one. In "every" mode the cached
        entries of depths 1..keep (the previous payload's) share ``self._cell``: alive together or not at all.
        """
        lookback = self.profile.lookback
        lowest = 1 if lookback is None else max(1, n - lookback)  # shallowest depth a hit may end at
        path = self._path
        for depth in range(known, max(keep, lowest - 1), -1):
            if self._alive(path[depth - 1]):
                return depth
        if self.profile.store == "every":
            if lowest <= keep and self._ends[keep - 1] >= self.min_prefix and self._expiry[self._cell] >= self._now:
                return keep
        else:
            for depth in range(keep, lowest - 1, -1):
                if self._alive(path[depth - 1]):
                    return depth
        if 1 <= system_end < lowest and self._alive(path[system_end - 1]):
            return system_end
        return 0

    def _store(self, tail: list[int], keep: int, known: int, hit: int, system_end: int) -> None:
        expires = self._now + self.profile.ttl_seconds
        if self.profile.store == "every":
            self._store_every(tail, keep, known, expires)
            return
        cell = len(self._expiry)
        self._expiry.append(expires)
        system_end = system_end if self.profile.system_breakpoint else 0
        for depth in (hit, system_end, len(self._path)):  # a hit refreshes its entry; breakpoints write theirs
            if depth and self._ends[depth - 1] >= self.min_prefix:
                self._cell_of[self._path[depth - 1]] = cell

    def _store_every(self, tail: list[int], keep: int, known: int, expires: float) -> None:
        """Every prefix long enough is written or refreshed: all of them end up sharing ``self._cell``.

        The previous payload's nodes share the old cell; the dropped ones (``tail``) must keep its expiry
        while the kept ones are refreshed, so whichever group is smaller moves to a cell of its own.
        """
        old, cell_of, path = self._cell, self._cell_of, self._path
        group = tail if len(tail) <= keep else path[:keep]
        if group or group is not tail:  # (moving an empty kept part still gives it a cell of its own)
            moved = len(self._expiry)
            self._expiry.append(self._expiry[old])
            for node in group:
                if cell_of[node] == old:
                    cell_of[node] = moved
            if group is not tail:
                self._cell = moved
        shared = self._cell
        self._expiry[shared] = expires
        start = max(keep, bisect.bisect_left(self._ends, self.min_prefix))
        for node in path[start:known]:
            cell_of[node] = shared
        if known < len(path):  # this request's own new nodes: consecutive ids
            first = path[known] + max(0, start - known)
            cell_of[first: path[-1] + 1] = itertools.repeat(shared, path[-1] + 1 - first)

    def _granular(self, matched: int) -> int:
        if matched < self.min_prefix:
            return 0
        step = max(1, self.profile.granularity)
        return self.min_prefix + (matched - self.min_prefix) // step * step

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
        return [uncached_turn(reply_priming(model) + sum(per_message_counts(p, model)[0]), model=model, prices=prices)
                for p in payloads]
    cache = PromptCache(resolved, model=model, prices=prices)
    return [cache.request(p, now=None if timestamps is None else timestamps[i]) for i, p in enumerate(payloads)]

