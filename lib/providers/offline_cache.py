"""The offline model's prompt cache: simulated with lib.costs.cache_model's cache model, and labelled simulated.

The cache is the one the reference model's provider would keep (OpenAI caches automatically, Anthropic only
with prompt caching on), one per process and profile, as a provider's cache is shared by every request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from lib.core import Message, Usage, tools_hash
from lib.costs import PROFILES, PromptCache, TurnCache, profile_for_model
from lib.providers.base import ProviderOptions

# One simulated cache per process and profile, shared by every session, as a provider's cache is shared
# by every request of an organisation: a common system prompt hits across conversations too.
_CACHES: dict[tuple[str, str], tuple[PromptCache, float]] = {}
_CACHES_LOCK = threading.Lock()


def cache_profile_id(reference_model: str, options: ProviderOptions) -> str | None:
    """The cache the reference model's provider would use: OpenAI and Gemini cache automatically, Anthropic
    only with prompt caching on (cache_control), so "None" means no cache at all."""
    if reference_model.startswith("claude") and not options.prompt_caching:
        return None
    return profile_for_model(reference_model, ttl=options.cache_ttl)


def simulate_cache(messages: Sequence[Message], *, reference_model: str, options: ProviderOptions,
                   now: float | None = None, tool_tokens: int = 0) -> TurnCache | None:
    """This request through the process's simulated cache for the reference model; None when it has none.

    ``tool_tokens``: the exact size of ``options.tools``, which sit in the cached prefix beside the messages."""
    profile = cache_profile_id(reference_model, options)
    if profile is None:
        return None
    now = time.monotonic() if now is None else now
    with _CACHES_LOCK:
        cache, last = _CACHES.get((profile, reference_model), (None, now))
        # Every entry expires at most one TTL after the last request, so a cache idle that long is empty:
        # starting afresh is exact, and it keeps a long-running process from holding every prefix it saw.
        if cache is None or now - last > PROFILES[profile].ttl_seconds:
            cache = PromptCache(profile, model=reference_model)
        _CACHES[(profile, reference_model)] = (cache, now)
        tools = (tools_hash(options.tools), tool_tokens) if options.tools else None
        return cache.request(messages, now=now, tools=tools)


def reset_simulated_caches() -> None:
    """Forget every simulated cache entry (tests, or "start the demo again")."""
    with _CACHES_LOCK:
        _CACHES.clear()


def simulated_usage(input_tokens: int, output_tokens: int, cache: TurnCache | None, *,
                    options: ProviderOptions) -> Usage:
    """Usage with SIMULATED cache figures; input_tokens include the cached ones, as OpenAI reports them."""
    read = min(cache.cached_tokens, input_tokens) if cache else 0
    write = min(cache.write_tokens, input_tokens - read) if cache else 0
    one_hour = options.prompt_caching and options.cache_ttl == "1h"
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=read,
                 cache_write_tokens=write, cache_in_input=True, cache_write_5m=None if one_hour else write,
                 cache_write_1h=write if one_hour else None, simulated=True)
