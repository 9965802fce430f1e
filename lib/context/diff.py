"""Request bodies side by side: what each API's body holds, and how one differs from a baseline.

The Compare page shows one body at a time, full width, with a unified diff of the pretty JSON against a
chosen baseline column and a few structured highlights an engineer looks for first: where the system prompt
went (a top-level ``system``/``instructions`` field or a message), how many items were re-sent,
``previous_response_id``/``conversation`` (server-side history) and ``cache_control`` breakpoints.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lib.context.payload import SYSTEM_ROLES
from lib.core import markdown_literal, mask_secrets


@dataclass(frozen=True)
class BodyShape:
    """What one request body holds, in the terms the highlights compare."""

    api: str  # "Chat Completions", "Messages", "Responses", "Gemini generateContent"
    items: int  # messages or input items actually sent (the system prompt included when it is one)
    item_name: str  # "messages", "input items" or "contents"
    system: str  # where the system prompt went
    chained: str | None  # "previous_response_id=..." or "conversation=..." when the server holds the history
    cache_breakpoints: int
    extras: tuple[str, ...] = ()  # other notable fields: truncation, context_management
    tools: str = ""  # how the tool definitions are shaped, when the body has some
    cached_content: str | None = None  # Gemini: the explicit context cache the request names

    @property
    def sent_text(self) -> str:
        return f"{self.items} {self.item_name}"


def body_shape(body: Mapping[str, Any]) -> BodyShape:
    """Read an Anthropic Messages, OpenAI Chat Completions, Responses or Gemini body (the offline model's is
    Chat's)."""
    extras = tuple(f"{k}={json.dumps(body[k])}" for k in ("truncation", "context_management") if k in body)
    breakpoints = sum(1 for _ in _cache_controls(body))
    tools: list[Any] = body["tools"] if isinstance(body.get("tools"), list) else []
    if "contents" in body:  # Gemini: roles user/model, the system prompt in systemInstruction, model in the URL
        contents = body.get("contents") if isinstance(body.get("contents"), list) else []
        cache = body.get("cachedContent")
        # With a cache, any system prompt is inside it (a request naming a cache may not repeat it).
        system = "top-level systemInstruction field" if body.get("systemInstruction") else "none"
        declared = sum(len(t.get("functionDeclarations") or []) for t in tools if isinstance(t, Mapping))
        shape = (f"{declared} tool definition{'s' * (declared != 1)} as `functionDeclarations` in one `tools` entry"
                 if declared else "")
        return BodyShape("Gemini generateContent", len(contents or []), "contents", system, None, breakpoints, extras,
                         shape, str(cache) if cache else None)
    count = f"{len(tools)} tool definition{'s' * (len(tools) != 1)}"
    if "input" in body:
        items = body.get("input") if isinstance(body.get("input"), list) else []
        chained = next((f"{k}={body[k]}" for k in ("previous_response_id", "conversation") if body.get(k)), None)
        system = "top-level instructions field" if body.get("instructions") else "none"
        shape = f"{count} as flat `{{type: function, name, parameters}}` items" if tools else ""
        return BodyShape("Responses", len(items or []), "input items", system, chained, breakpoints, extras, shape)
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    messages = messages or []
    # Anthropic puts the system prompt at the top level and streams without OpenAI's stream_options.
    if "system" in body or (body.get("stream") and "stream_options" not in body):
        system = "top-level system field" if body.get("system") else "none"
        shape = f"{count} as `{{name, description, input_schema}}`, before the system prompt" if tools else ""
        return BodyShape("Messages", len(messages), "messages", system, None, breakpoints, extras, shape)
    first = messages[0] if messages and isinstance(messages[0], Mapping) else {}
    system = f"messages[0] (role {first.get('role')})" if first.get("role") in SYSTEM_ROLES else "none"
    shape = f"{count} as `{{type: function, function: {{...}}}}`" if tools else ""
    return BodyShape("Chat Completions", len(messages), "messages", system, None, breakpoints, extras, shape)


def _cache_controls(value: Any) -> Iterator[None]:
    if isinstance(value, Mapping):
        if "cache_control" in value:
            yield None
        for item in value.values():
            yield from _cache_controls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _cache_controls(item)


def pretty(body: Mapping[str, Any] | None) -> str:
    """The body as indented JSON (keys in the order sent), one field per line, so a diff reads well; any
    configured secret a message quotes is masked, as everywhere a body is shown."""
    return mask_secrets(json.dumps(body or {}, indent=2, ensure_ascii=False, default=str))


def unified_diff(baseline: Mapping[str, Any] | None, other: Mapping[str, Any] | None, *, baseline_name: str,
                 other_name: str, context: int = 2) -> str:
    """A unified diff of the two pretty bodies ("" when they are identical)."""
    return "\n".join(difflib.unified_diff(pretty(baseline).splitlines(), pretty(other).splitlines(),
                                          fromfile=baseline_name, tofile=other_name, lineterm="", n=context))


def highlights(baseline: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """What moved between two bodies, in plain words (empty when the shapes agree), as Markdown: the values
    read from the bodies (a response id from the provider, field values) are literal text."""
    a, b = body_shape(baseline), body_shape(other)
    notes = []
    if a.api != b.api:
        notes.append(f"API: {b.api} instead of {a.api}.")
    if a.system != b.system:
        notes.append(f"System prompt: {b.system} instead of {a.system}.")
    if (a.items, a.item_name) != (b.items, b.item_name):
        notes.append(f"Re-sent: {b.sent_text} instead of {a.sent_text}.")
    if a.chained != b.chained:
        notes.append(f"Server-side history: {markdown_literal(b.chained or 'none (the whole history is sent)')} "
                     f"instead of {markdown_literal(a.chained or 'none')}.")
    if a.cached_content != b.cached_content:
        notes.append(f"Explicit context cache: {markdown_literal(b.cached_content or 'none')} instead of "
                     f"{markdown_literal(a.cached_content or 'none')}.")
    if a.cache_breakpoints != b.cache_breakpoints:
        notes.append(f"`cache_control` breakpoints: {b.cache_breakpoints} instead of {a.cache_breakpoints}.")
    if a.extras != b.extras:
        notes.append(f"Other fields: {markdown_literal(', '.join(b.extras) or 'none')} instead of "
                     f"{markdown_literal(', '.join(a.extras) or 'none')}.")
    return notes
