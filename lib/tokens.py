"""Token counts: the seed's chars/4 estimate beside exact tiktoken counts.

Exact counts follow the OpenAI cookbook's ``num_tokens_from_messages``: 3 tokens of
framing per message, the tokens of every wire value (role included), +1 when a
message carries a ``name`` and +3 to prime the reply.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import tiktoken
from tiktoken.model import encoding_name_for_model

from lib.encodings import EncodingUnavailable, load_encoding, reset_encodings

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
FALLBACK_ENCODING = "o200k_base"
# Only these keys go over the wire; id, ts and meta are ours and never reach a model.
WIRE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")


@dataclass(frozen=True)
class EncodingChoice:
    """Which encoding counts a model's tokens, and whether that count is only approximate."""

    model: str
    name: str
    approximate: bool

    @property
    def label(self) -> str:
        return f"{self.name} (approximate for this provider)" if self.approximate else self.name


@dataclass(frozen=True)
class MessageTokens:
    """One row of the per-message breakdown used by the token inspector."""

    index: int
    id: str | None
    role: str
    chars: int
    estimate: int
    exact: int | None


def content_text(content: Any) -> str:
    """The text the seed measured: strings as they are, anything else as JSON."""
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False)


def estimate_tokens(text: Any) -> int:
    """The seed's rule, exactly: ceil(len(text) / 4)."""
    return math.ceil(len(content_text(text)) / 4)


def choose_encoding(model: str) -> EncodingChoice:
    """Map a model name to its tiktoken encoding; non-OpenAI models get o200k_base, flagged approximate."""
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        return EncodingChoice(model, FALLBACK_ENCODING, approximate=True)
    return EncodingChoice(model, name, approximate=False)


def encoding_for(model: str) -> tiktoken.Encoding:
    """The tiktoken encoding for a model (see choose_encoding for which one, and whether it is approximate)."""
    return load_encoding(choose_encoding(model).name)


def encoding_available(model: str) -> bool:
    try:
        encoding_for(model)
    except EncodingUnavailable:
        return False
    return True


def reset_encoding_failures() -> None:
    """Forget earlier loads and failures, so a fixed TIKTOKEN_CACHE_DIR is picked up without a restart."""
    reset_encodings()


@lru_cache(maxsize=200_000)
def _count(encoding_name: str, text: str) -> int:
    return len(load_encoding(encoding_name).encode_ordinary(text))


def count_tokens(text: Any, model: str) -> int:
    """Exact token count of one text; encode_ordinary because chat text may contain <|endoftext|>."""
    return _count(choose_encoding(model).name, content_text(text))


def message_tokens(message: Mapping[str, Any], model: str) -> int:
    """One message's share of a chat payload: framing plus every wire value, +1 for a name."""
    name = choose_encoding(model).name
    total = TOKENS_PER_MESSAGE
    for key in WIRE_KEYS:
        value = message.get(key)
        if value is None:
            continue
        total += _count(name, content_text(value))
        if key == "name":
            total += TOKENS_PER_NAME
    return total


def count_chat_tokens(messages: Iterable[Mapping[str, Any]], model: str) -> int:
    """Exact prompt tokens of a Chat Completions payload (the cookbook's num_tokens_from_messages)."""
    return sum(message_tokens(m, model) for m in messages) + REPLY_PRIMING


def estimate_chat_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """The seed's estimate of a payload: chars/4 of each content, summed."""
    return sum(estimate_tokens(m.get("content", "")) for m in messages)


def message_breakdown(messages: Iterable[Mapping[str, Any]], model: str) -> list[MessageTokens]:
    """Estimate and exact count per message; exact is None when the encoding can't be loaded."""
    try:
        encoding_for(model)
        exact_ok = True
    except EncodingUnavailable:
        exact_ok = False
    rows = []
    for index, message in enumerate(messages):
        text = content_text(message.get("content", ""))
        rows.append(
            MessageTokens(
                index=index,
                id=message.get("id"),
                role=str(message.get("role", "")),
                chars=len(text),
                estimate=estimate_tokens(text),
                exact=message_tokens(message, model) if exact_ok else None,
            )
        )
    return rows
