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

from lib.core import Usage, as_int

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
    if value is None:
        return None
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, Mapping) and not value:
        return None
    return json.dumps(value, sort_keys=True, default=str)


def openai_usage(usage: Any, diagnostics: Any = None, *, responses: bool = False) -> Usage:
    """Chat Completions (``prompt_tokens``, ``prompt_tokens_details``) or Responses (``input_tokens``,
    ``input_tokens_details``). Both count cached tokens inside the input tokens."""
    prefix, output = ("input", "output_tokens") if responses else ("prompt", "completion_tokens")
    details = getattr(usage, f"{prefix}_tokens_details", None)
    return Usage(
        input_tokens=token_count(getattr(usage, f"{prefix}_tokens", None)),
        output_tokens=token_count(getattr(usage, output, None)),
        cache_read_tokens=_int(getattr(details, "cached_tokens", None)),
        cache_write_tokens=_int(getattr(details, "cache_write_tokens", None)),
        cache_in_input=True, diagnostics=diagnostics_text(diagnostics),
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
        diagnostics=diagnostics_text(diagnostics),
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
