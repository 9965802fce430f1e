"""The cached prefix of each payload on the timeline, and whether the cache was kept or broken.

The figure shown is the provider-reported cache read when a turn's record has usage (the offline model's is
simulated, and labelled so); otherwise lib.costs.cache_model's simulation with the profile of the turn's provider. The
status (kept, broken at message k, expired, ...) always comes from replaying the session's payloads through
lib.costs.cache_model's ``PromptCache`` (one per profile and model, so a session that switched provider still works),
with each payload's messages rendered and counted once per stored message.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.core import DEFAULT_REFERENCE_MODEL, OFFLINE_PREFIX, Price, TurnRecord
from lib.costs import PROFILES, PromptCache, profile_for_model, wire_key
from lib.tokens import REPLY_PRIMING

Message = Mapping[str, Any]
OFFLINE_REFERENCE = DEFAULT_REFERENCE_MODEL


@dataclass(frozen=True)
class CacheView:
    """The cached prefix of one payload and the cache status, each with where it comes from."""

    cached_messages: int = 0  # leading payload messages wholly inside the cached prefix
    cached_tokens: int = 0  # as the source counts them
    extent: float = 0.0  # where the cached prefix ends, in the timeline's tokens (may end inside a message)
    source: str = "no cache figures"
    status: str | None = None  # lib.costs.cache_model status: first, kept, broken, expired, short
    label: str = "not sent"  # "cache kept", "cache broken (prefix changed at message 3)", ...
    status_source: str = ""


def cache_profile_for(record: TurnRecord, reference_model: str | None = None) -> tuple[str, str]:
    """(profile id, model) of the prompt cache the turn's provider would use; the offline model is cached
    as its reference model. The profile follows the model (lib.costs.profile_for_model), with the long TTL
    when the turn's usage shows long-TTL writes (Anthropic 1 h, OpenAI 12 h);
    Gemini models use Gemini's implicit cache."""
    model = record.model or OFFLINE_REFERENCE
    if record.provider == "offline" or model.startswith(OFFLINE_PREFIX):
        # The model the turn was priced and cached as when it was sent, else today's choice.
        model = record.priced_as or reference_model or OFFLINE_REFERENCE
    usage = record.usage
    ttl = "1h" if usage and usage.cache_write_1h else "12h" if usage and usage.cache_write_12h else None
    return profile_for_model(model, ttl=ttl), model


class SessionCache:
    """Replays one session's payloads, in turn order, through the caches of their providers."""

    def __init__(self, history: Sequence[Message], *, reference_model: str | None = None,
                 prices: Mapping[str, Price] | None = None) -> None:
        self.history = history
        self.reference_model = reference_model
        self.prices = prices
        self._keys: list[str | None] = [None] * len(history)  # rendered wire forms, by history position
        self._caches: dict[tuple[str, str], PromptCache] = {}

    def __repr__(self) -> str:
        return f"SessionCache(messages={len(self.history)}, caches={sorted(self._caches)})"

    def view(self, record: TurnRecord, *, head: Sequence[tuple[Message, int]], runs: Sequence[tuple[int, int]],
             tokens: Sequence[int]) -> CacheView:
        """The cache view of one turn. ``head``: the system prompt and summary sent before the stored
        messages, with their tokens; ``runs``: the stored messages sent, as [start, stop) history positions;
        ``tokens``: every stored message's tokens."""
        if record.failed:  # a rejected request never reaches a cache
            return CacheView(label="not cached: the request failed")
        profile, model = cache_profile_for(record, self.reference_model)
        cache = self._caches.get((profile, model))
        if cache is None:
            cache = self._caches[(profile, model)] = PromptCache(profile, model=model, prices=self.prices)
        # Slices, not per-message loops: a long untrimmed session re-sends thousands of messages per turn.
        keys = [wire_key(m) for m, _ in head]
        counts = [t for _, t in head]
        for start, stop in runs:
            keys += self._keys_between(start, stop)
            counts += tokens[start:stop]
        # The leading entries before the conversation (tool definitions, system prompt): Anthropic's first
        # breakpoint sits where they end.
        system = sum(1 for m, _ in head if m.get("role") in ("system", "tools"))
        simulated = cache.request_keys(keys, counts, system_messages=system, now=record.ts)
        status_source = f"simulated ({PROFILES[profile].label}, as {model})"
        usage = record.usage
        if usage is not None and usage.input_tokens is not None:
            extent = reported_extent(counts, usage.cache_read_tokens, usage.prompt_total)
            source = f"simulated by the offline model (as {model})" if usage.simulated else "provider-reported"
            return CacheView(messages_within(counts, extent), usage.cache_read_tokens, extent, source,
                             simulated.status, simulated.label, status_source)
        extent = float(min(simulated.cached_tokens, sum(counts)))
        return CacheView(messages_within(counts, extent), simulated.cached_tokens, extent, status_source,
                         simulated.status, simulated.label, status_source)

    def _keys_between(self, start: int, stop: int) -> list[str]:
        """Rendered wire forms of stored messages [start, stop), each rendered once however often re-sent.
        Only the positions asked for: the chat's window of 50 turns of a 10,000-message session sends its
        newest messages, and rendering everything before them cost a quarter of a second per rerun."""
        keys = self._keys
        for n in range(start, stop):
            if keys[n] is None:
                keys[n] = wire_key(self.history[n])
        return keys[start:stop]  # type: ignore[return-value]  # every entry in range was just filled


def reported_extent(tokens: Sequence[int], cached: int, total: int | None) -> float:
    """Where a reported cache read ends in our counts. The provider counts with its own tokenizer, so the
    read is taken as a share of its reported prompt and applied to our count of the same payload."""
    if cached <= 0 or not tokens:
        return 0.0
    ours = sum(tokens)
    share = cached / total * (ours + REPLY_PRIMING) if total else cached
    return float(min(share, ours))


def messages_within(tokens: Sequence[int], extent: float) -> int:
    """How many leading messages lie wholly inside a cached prefix ending at ``extent`` tokens."""
    return bisect.bisect_right(list(itertools.accumulate(tokens)), extent + 0.5) if extent > 0 else 0
