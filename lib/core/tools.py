"""Tool definitions: part of every request that offers tools, re-sent on every turn like the history.

A definition is neutral data here (``ToolDef``: name, description, JSON-schema parameters); each provider
adapter sends it in its own shape (``openai_chat_tools``, ``responses_tools``, ``anthropic_tools``,
``gemini_tools``). The lab sends them with ``tool_choice`` "none": the point is what the definitions cost
in the window and the cache,
not running tools, so no reply is ever a tool call it could not answer.

``TOOL_SET`` is a small, well-known set; the demo conversation's tool call uses its ``get_weather``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lib.core.errors import HistoryLabError

# Session meta field that keeps one set of definitions, keyed by its hash (a record keeps only the hash).
TOOLS_META_PREFIX = "tools:"
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what OpenAI and Anthropic both accept
MAX_TOOLS = 32
MAX_TOOL_CHARS = 20_000  # one definition as JSON: far above any real one, far below the body cap


class InvalidTools(HistoryLabError, ValueError):
    """A tool list that no provider would accept; the message names the tool and the field."""


@dataclass(frozen=True)
class ToolDef:
    """One function a model may call: its name, what it does, and its parameters as a JSON schema."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}


def _string(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


TOOL_SET: tuple[ToolDef, ...] = (
    ToolDef("get_weather", "Get the weather forecast for a city on a given day.", {
        "type": "object",
        "properties": {"city": _string("City name, e.g. Lisbon."),
                       "date": _string("Day of the forecast, e.g. Friday or 2026-05-01."),
                       "unit": {"type": "string", "description": "Temperature unit.",
                                "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "date"],
    }),
    ToolDef("search_web", "Search the web and return the titles and links of the top results.", {
        "type": "object",
        "properties": {"query": _string("What to search for."),
                       "max_results": {"type": "integer", "description": "How many results, 1 to 10."}},
        "required": ["query"],
    }),
    ToolDef("calculator", "Evaluate an arithmetic expression exactly.", {
        "type": "object",
        "properties": {"expression": _string("The expression, e.g. (2 + 3) * 4.")},
        "required": ["expression"],
    }),
)


def tools_hash(tools: Sequence[ToolDef]) -> str:
    """A short hash of the definitions as sent: equal hashes, byte-identical tool blocks (and prefix)."""
    text = json.dumps([t.to_json() for t in tools], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def tools_meta_field(tools: Sequence[ToolDef]) -> str:
    return TOOLS_META_PREFIX + tools_hash(tools)


def tools_to_meta(tools: Sequence[ToolDef]) -> str:
    return json.dumps([t.to_json() for t in tools], ensure_ascii=False)


def tools_from_meta(meta: Mapping[str, str], digest: str | None) -> tuple[ToolDef, ...] | None:
    """The stored definitions with this hash; None when they are gone or unreadable (never raises)."""
    raw = meta.get(TOOLS_META_PREFIX + digest) if digest else None
    if not raw:
        return None
    try:
        return parse_tools(json.loads(raw))
    except (ValueError, InvalidTools):
        return None


# -- each provider's shape --------------------------------------------------------------------------------


def openai_chat_tools(tools: Sequence[ToolDef]) -> list[dict[str, Any]]:
    """Chat Completions: ``[{"type": "function", "function": {name, description, parameters}}]``."""
    return [{"type": "function", "function": t.to_json()} for t in tools]


def responses_tools(tools: Sequence[ToolDef]) -> list[dict[str, Any]]:
    """Responses API: ``[{"type": "function", name, description, parameters, strict}]`` (flat)."""
    return [{"type": "function", **t.to_json(), "strict": False} for t in tools]


def gemini_tools(tools: Sequence[ToolDef]) -> list[dict[str, Any]]:
    """Gemini generateContent: one ``tools`` entry holding every ``functionDeclarations`` item, the JSON schema
    in ``parameters_json_schema`` (Gemini's own ``parameters`` takes an OpenAPI subset with upper-case types).

    Spelt as google-genai 3.6 puts it on the wire (it leaves that one name in snake case; the API reads field
    names in either case), so the body shown is byte for byte the body sent."""
    return [{"functionDeclarations": [{"name": t.name, "description": t.description,
                                       "parameters_json_schema": dict(t.parameters)} for t in tools]}]


# Gemini's tool_choice "none": the model answers in text and never calls a function.
GEMINI_TOOLS_OFF: dict[str, Any] = {"functionCallingConfig": {"mode": "NONE"}}


def anthropic_tools(tools: Sequence[ToolDef]) -> list[dict[str, Any]]:
    """Anthropic Messages: ``[{name, description, input_schema}]``."""
    return [{"name": t.name, "description": t.description, "input_schema": dict(t.parameters)} for t in tools]


# -- reading a tool list ----------------------------------------------------------------------------------


def parse_tools(value: object) -> tuple[ToolDef, ...]:
    """``True`` (the standard set), ``False``/None (none), or a list of definitions: ``{name, description?,
    parameters?}`` or the Chat Completions shape ``{"type": "function", "function": {...}}``. Raises
    InvalidTools naming the tool and field."""
    if value is None or value is False:
        return ()
    if value is True:
        return TOOL_SET
    if not isinstance(value, list):
        raise InvalidTools("'tools' must be true (the standard set: get_weather, search_web, calculator) or a "
                           f"list of tool definitions, got {type(value).__name__}.")
    if len(value) > MAX_TOOLS:
        raise InvalidTools(f"'tools' lists {len(value)} tools; the limit is {MAX_TOOLS}.")
    tools = [_tool(item, n) for n, item in enumerate(value)]
    names = [t.name for t in tools]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise InvalidTools(f"Tool name(s) {', '.join(doubled)} appear more than once; names must be unique.")
    return tuple(tools)


def _tool(item: object, n: int) -> ToolDef:
    where = f"tools[{n}]"
    if isinstance(item, Mapping) and item.get("type") == "function" and isinstance(item.get("function"), Mapping):
        item = item["function"]
    if not isinstance(item, Mapping):
        raise InvalidTools(f"{where} must be an object with 'name', 'description' and 'parameters'.")
    name, description = item.get("name"), item.get("description", "")
    parameters = item.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        raise InvalidTools(f"{where}.name must be 1-64 letters, digits, '_' or '-', got {name!r}.")
    if not isinstance(description, str):
        raise InvalidTools(f"{where}.description must be text.")
    if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
        raise InvalidTools(f"{where}.parameters must be a JSON schema object ({{\"type\": \"object\", ...}}).")
    tool = ToolDef(name, description, dict(parameters))
    if len(json.dumps(tool.to_json(), ensure_ascii=False)) > MAX_TOOL_CHARS:
        raise InvalidTools(f"{where} is over {MAX_TOOL_CHARS:,} characters as JSON; shorten its description "
                           "or schema.")
    return tool
