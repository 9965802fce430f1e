"""Every cache figure the providers report, read into one ``Usage``.

The SDK objects are read with ``getattr`` defaults on purpose: local OpenAI-compatible servers and older
API versions leave fields out, and a missing figure must read as "not reported", never crash a turn.
The SDKs do not check the types of what a server sends, so a figure that is not a plausible count (a
string, a negative number, more tokens than any request can hold) reads as "not reported" too: stored or
priced, it would crash the turn or show an absurd cost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lib.core import Usage, as_int, field_of

# Far above every context window (a few million tokens at most): a larger figure is a broken server.
MAX_REPORTED_TOKENS = 100_000_000


def token_count(value: Any) -> int | None:
    """``value`` as a token count, or None when it is not one (wrong type, negative, absurdly large)."""
    count = as_int(value)
    return count if count is not None and 0 <= count <= MAX_REPORTED_TOKENS else None


def _int(value: Any) -> int:
    return token_count(value) or 0


def diagnostics_text(value: Any) -> str | None:
    """A provider's cache diagnostics as compact JSON (shown as it came), or None when absent."""
    value = _plain(value)
    if value is None or (isinstance(value, Mapping) and not value):
        return None
    return json.dumps(value, sort_keys=True, default=str)


def _plain(value: Any, *, exclude_none: bool = True) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=exclude_none)
    if exclude_none and isinstance(value, Mapping):  # parsed JSON: as model_dump shows the same fields
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if exclude_none and isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# Why a cache missed, in words. OpenAI: ``prompt_cache_diagnostics`` (openai 3.57, responses/response.py);
# Anthropic: ``diagnostics.cache_miss_reason`` (anthropic 2.13, types/cache_miss_*.py).
MISS_REASONS = {
    "model_changed": "the model changed", "prompt_cache_key_changed": "the prompt_cache_key changed",
    "tools_changed": "the tools changed", "text_format_changed": "the text format changed",
    "reasoning_effort_changed": "the reasoning effort changed", "verbosity_changed": "the verbosity changed",
    "context_compacted": "the context was compacted", "input_changed": "the input changed",
    "service_tier_changed": "the service tier changed", "system_changed": "the system prompt changed",
    "messages_changed": "an earlier message changed (not only new ones appended)",
    "previous_message_not_found": "the provider no longer has the previous request to compare with",
    "comparison_response_not_found": "the provider no longer has the previous response to compare with",
    "unavailable": "the provider could not diagnose it",
}


def cache_miss_text(value: Any) -> str | None:
    """Why the cache missed, from either provider's diagnostics; None for a hit or no diagnostics."""
    data = _plain(value, exclude_none=False)  # Anthropic's null reason means "pending": keep it
    if not isinstance(data, Mapping):
        return None
    if "cache_miss_reason" in data:  # Anthropic: {"cache_miss_reason": {...} or null}
        reason = _plain(data["cache_miss_reason"])
        if reason is None:
            return "diagnosis still pending (the reply was sent before the comparison finished)"
        data = reason if isinstance(reason, Mapping) else {}
    kind = data.get("reason") if data.get("type") == "cache_miss" else data.get("type")
    if not isinstance(kind, str) or kind == "cache_hit":
        return None
    words = MISS_REASONS.get(kind, kind.replace("_", " "))
    missed = token_count(data.get("cache_missed_tokens", data.get("cache_missed_input_tokens")))
    return f"{words} (about {missed:,} tokens not read from the cache)" if missed else words


def openai_usage(usage: Any, diagnostics: Any = None, *, responses: bool = False) -> Usage:
    """Chat Completions (``prompt_tokens``, ``prompt_tokens_details``) or Responses (``input_tokens``,
    ``input_tokens_details``). Both count cached tokens inside the input tokens.

    A server that sends no ``cached_tokens`` (vLLM without --enable-prompt-tokens-details, an old Ollama)
    reads as "not reported": 0 would claim that nothing was cached. gpt-5.6 and later split the writes by
    TTL in ``cache_write_tokens_details`` (``ttl_30m_tokens``, ``ttl_12h_tokens``).
    """
    prefix, output = ("input", "output_tokens") if responses else ("prompt", "completion_tokens")
    details = field_of(usage, f"{prefix}_tokens_details")
    cached = token_count(field_of(details, "cached_tokens"))
    split = field_of(details, "cache_write_tokens_details")
    return Usage(
        input_tokens=token_count(field_of(usage, f"{prefix}_tokens")),
        output_tokens=token_count(field_of(usage, output)),
        cache_read_tokens=cached or 0,
        cache_write_tokens=_int(field_of(details, "cache_write_tokens")),
        cache_in_input=True, diagnostics=diagnostics_text(diagnostics),
        cache_write_30m=token_count(field_of(split, "ttl_30m_tokens")),
        cache_write_12h=token_count(field_of(split, "ttl_12h_tokens")),
        cache_reported=cached is not None, cache_miss=cache_miss_text(diagnostics),
    )



ANTHROPIC_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def merge_anthropic_usage(into: dict[str, Any], usage: Any) -> None:
    """Fold one ``message_start``/``message_delta`` usage into ``into`` (later events update earlier ones)."""
    if usage is None:
        return
    for name in ANTHROPIC_FIELDS:
        value = getattr(usage, name, None)
        if value is not None:
            into[name] = value
    creation = getattr(usage, "cache_creation", None)
    if creation is not None:
        into["cache_creation"] = creation


def anthropic_usage(fields: Mapping[str, Any], diagnostics: Any = None) -> Usage | None:
    """Messages: ``input_tokens`` exclude cache reads and writes; ``cache_creation`` splits writes by TTL."""
    if not fields:
        return None
    creation = fields.get("cache_creation")
    return Usage(
        input_tokens=token_count(fields.get("input_tokens")), output_tokens=token_count(fields.get("output_tokens")),
        cache_read_tokens=_int(fields.get("cache_read_input_tokens")),
        cache_write_tokens=_int(fields.get("cache_creation_input_tokens")),
        cache_in_input=False,
        cache_write_5m=token_count(getattr(creation, "ephemeral_5m_input_tokens", None)),
        cache_write_1h=token_count(getattr(creation, "ephemeral_1h_input_tokens", None)),
        diagnostics=diagnostics_text(diagnostics), cache_miss=cache_miss_text(diagnostics),
    )


def gemini_usage(metadata: Any, *, explicit_cache_tokens: int = 0, explicit_cache_hours: float = 0.0) -> Usage | None:
    """generateContent's ``usage_metadata``: ``prompt_token_count`` includes ``cached_content_token_count``
    (implicit or explicit cache reads); thinking (``thoughts_token_count``) is billed as output, so it is added
    to ``candidates_token_count``. ``explicit_cache_*``: the explicit cache this request created, if any."""
    if metadata is None:
        return None
    candidates = token_count(getattr(metadata, "candidates_token_count", None))
    thoughts = token_count(getattr(metadata, "thoughts_token_count", None))
    output = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    return Usage(
        input_tokens=token_count(getattr(metadata, "prompt_token_count", None)), output_tokens=output,
        cache_read_tokens=_int(getattr(metadata, "cached_content_token_count", None)), cache_in_input=True,
        explicit_cache_tokens=explicit_cache_tokens, explicit_cache_hours=explicit_cache_hours,
        reasoning_tokens=thoughts,
    )
