"""Read and validate request bodies: media type, size, JSON, field names and types, and the limits that bound
what one request can cost. Every refusal is a 400, 413 or 415 that names the field (or header), gives the numbers,
and says what to send instead."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request

from lib.api.errors import MAX_BODY_BYTES, ApiError
from lib.chat import CHAT_STRATEGIES, MAX_MESSAGE_CHARS
from lib.context import STRATEGIES
from lib.core import BOUNDS, InvalidTools, ToolDef, parse_tools
from lib.tokens import content_text

DEFAULT_COUNT_MODEL = "gpt-4o-mini"
JSON_MEDIA_TYPE = "application/json"
# Model names are stored in turn records and shown by the pages: letters, digits and the separators real
# names use (gpt-4o-2024-08-06, org/model:tag, name@version, a+b), never spaces, newlines or Markdown.
MODEL_MAX_CHARS = 128
MODEL_CHARACTERS = "letters A-Z a-z, digits and . _ - : / @ +"
MODEL_PATTERN = re.compile(r"[A-Za-z0-9._:/@+-]+")
_Default = TypeVar("_Default", str, None)
# What one request may ask the server to do. The 1 MB body cap bounds the bytes; these bound the work in
# terms a client can act on, with numbers normal use never reaches:
# - messages per request: a session at the default cap (SESSION_MAX_MESSAGES, 10,000) fits twice over,
#   and counting or trimming 20,000 messages takes well under a second;
MAX_MESSAGES = 20_000
# - one message's content: the chat's own cap on a message (500,000 characters, more than any context
#   window holds); the system prompt gets the same cap;
MAX_CONTENT_CHARS = MAX_MESSAGE_CHARS
# - a budget or reserve: the ceiling TOKEN_BUDGET has (10 million tokens); no provider offers a context
#   window over about 2 million.
MAX_BUDGET = int(BOUNDS["default_budget"][2])
_TYPE_NAMES = {str: "a string", int: "a whole number", bool: "true or false", list: "a list", dict: "an object"}


def _too_large(size: int | None = None) -> ApiError:
    got = f" (got {size:,} bytes)" if size else ""
    return ApiError(413, "body_too_large", f"The request body is over {MAX_BODY_BYTES:,} bytes{got}. "
                    "Send a shorter message or fewer messages.")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def require_json_media_type(content_type: str | None) -> None:
    """415 unless the Content-Type is application/json (parameters such as charset allowed).

    A web page can send text/plain, a form encoding or multipart to another origin without a CORS preflight;
    it cannot send application/json that way, so accepting only JSON keeps such "simple" requests out.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        got = f"got {media_type!r}" if media_type else "no Content-Type was sent"
        raise ApiError(415, "unsupported_media_type", f"The body must be sent with 'Content-Type: {JSON_MEDIA_TYPE}' "
                       f"({got}). Send a JSON object with that header, e.g. curl -H 'Content-Type: "
                       f"{JSON_MEDIA_TYPE}' -d '{{...}}'.")


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object; 415 unless sent as application/json, 413 over 1 MB (checked before and
    while reading), 400 if not JSON."""
    require_json_media_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:  # a chunked body has no length header; stop reading, don't buffer it
            raise _too_large()
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"null", parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON ({exc}). Send a JSON object, "
                       "with Content-Type: application/json.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", f"The body must be a JSON object, got {type(body).__name__}.")
    return body


def check_fields(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse unknown fields, so a typo (session_id for sessionId) is not silently ignored."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        hints = {"session_id": "sessionId", "max_tokens": "budget", "system_prompt": "system",
                 "reserve_tokens": "reserve", "left_out": "leftOut"}
        hint = "".join(f" Did you mean {hints[name]!r} for {name!r}?" for name in unknown if name in hints)
        raise ApiError(400, "unknown_field", f"Unknown field(s) {', '.join(map(repr, unknown))}. "
                       f"Allowed: {', '.join(allowed)}.{hint}")


def field(body: Mapping[str, Any], name: str, kind: type, default: Any = None, *, required: bool = False) -> Any:
    """``body[name]`` checked against ``kind`` (bool is not an int here), or ``default`` when absent."""
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, "missing_field", f"{name!r} is required ({_TYPE_NAMES[kind]}).")
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(400, "invalid_field", f"{name!r} must be {_TYPE_NAMES[kind]}, got {type(value).__name__}.")
    return value


def model(body: Mapping[str, Any], default: _Default) -> str | _Default:
    """``body["model"]``: at most MODEL_MAX_CHARS of MODEL_CHARACTERS; ``default`` when absent or empty."""
    value = field(body, "model", str)
    if not value:
        return default
    if len(value) > MODEL_MAX_CHARS:
        raise ApiError(400, "invalid_field", f"'model' must be at most {MODEL_MAX_CHARS} characters "
                       f"(got {len(value):,}).")
    text: str = value
    if not MODEL_PATTERN.fullmatch(text):
        bad = next(char for char in value if not MODEL_PATTERN.fullmatch(char))
        raise ApiError(400, "invalid_field", f"'model' may contain only {MODEL_CHARACTERS} (got {bad!r} at "
                       f"position {value.index(bad)}), e.g. 'gpt-4o-mini'.")
    return text


def positive(name: str, value: int, *, minimum: int = 1) -> int:
    if value < minimum:
        raise ApiError(400, "invalid_field", f"{name!r} must be at least {minimum}, got {value}.")
    return value


def token_count(name: str, value: int, *, minimum: int = 1) -> int:
    """A budget or reserve: at least ``minimum``, at most MAX_BUDGET tokens."""
    positive(name, value, minimum=minimum)
    if value > MAX_BUDGET:
        got = f"{value:,}" if value < 10**15 else f"a number with {len(str(value))} digits"
        raise ApiError(400, "invalid_field", f"{name!r} must be at most {MAX_BUDGET:,} tokens, got {got}: no "
                       "model has a context window that large.")
    return value


def text_within_cap(name: str, text: Any) -> None:
    """400 when ``text`` (a string, or parts measured as their JSON) is over MAX_CONTENT_CHARS characters."""
    chars = len(content_text(text))
    if chars > MAX_CONTENT_CHARS:
        raise ApiError(400, "message_too_large", f"{name} has {chars:,} characters; the limit is "
                       f"{MAX_CONTENT_CHARS:,}. Shorten it or split it over several messages.")


def strategy(value: str, *, allowed: tuple[str, ...] = STRATEGIES) -> str:
    if value not in allowed:
        raise ApiError(400, "unknown_strategy", f"Unknown strategy {value!r}. Choose one of: {', '.join(allowed)}.")
    return value


def messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A list of at most MAX_MESSAGES message objects, each with a string role and string-or-list content of at
    most MAX_CONTENT_CHARS characters."""
    items: list[dict[str, Any]] = field(body, "messages", list, required=True)
    if len(items) > MAX_MESSAGES:
        raise ApiError(413, "too_many_messages", f"'messages' holds {len(items):,} messages; the limit is "
                       f"{MAX_MESSAGES:,}. Send the newest {MAX_MESSAGES:,} or fewer, or split the request.")
    for index, message in enumerate(items):
        if not isinstance(message, dict):
            raise ApiError(400, "invalid_field", f"messages[{index}] must be an object with 'role' and 'content'.")
        if not isinstance(message.get("role"), str):
            raise ApiError(400, "invalid_field", f"messages[{index}].role must be a string (user, assistant, ...).")
        if not isinstance(message.get("content", ""), str | list | type(None)):
            raise ApiError(400, "invalid_field", f"messages[{index}].content must be a string or a list of parts.")
        text_within_cap(f"messages[{index}].content", message.get("content") or "")
        if "id" in message and not isinstance(message["id"], str):
            raise ApiError(400, "invalid_field", f"messages[{index}].id must be a string.")
    return items


@dataclass(frozen=True)
class ChatBody:
    """POST /api/chat, validated. A setting of None was not sent: the session's stored one, else the
    server's default (lib.api.turns.begin)."""

    message: str
    session_id: str | None
    provider: str | None
    model: str | None
    system: str | None
    strategy: str | None
    budget: int | None
    reserve: int | None
    stream: bool
    pinned: tuple[int, ...] | None = None  # "You choose" by turn number; None keeps the session's stored choice
    left_out: tuple[int, ...] | None = None
    tools: tuple[ToolDef, ...] = ()
    include: frozenset[str] = frozenset()  # optional parts of the answer (ANSWER_PARTS) the client asked for


CHAT_FIELDS = ("sessionId", "message", "provider", "model", "system", "strategy", "budget", "reserve", "stream",
               "pinned", "leftOut", "tools", "include")
# "request": the body sent to the provider, echoed in the answer. Opt-in because it is the whole history: at
# 2,000 messages about 230 kB that every turn would encode, send and make the client parse. The answer's
# requestUrl fetches the same body later.
ANSWER_PARTS = ("request",)


def tools(body: Mapping[str, Any]) -> tuple[ToolDef, ...]:
    """``tools``: true (the standard set), false, or a list of definitions; 400 naming the tool and field."""
    try:
        return parse_tools(body.get("tools"))
    except InvalidTools as exc:
        raise ApiError(400, "invalid_field", str(exc)) from None
MAX_CHOSEN_TURNS = 1_000


def turn_list(body: Mapping[str, Any], name: str) -> tuple[int, ...] | None:
    """A list of turn numbers (whole numbers from 1), at most MAX_CHOSEN_TURNS; None when absent."""
    value = field(body, name, list)
    if value is None:
        return None
    if len(value) > MAX_CHOSEN_TURNS:
        raise ApiError(400, "invalid_field", f"{name!r} names {len(value):,} turns; the limit is "
                       f"{MAX_CHOSEN_TURNS:,}.")
    for item in value:
        if not isinstance(item, int) or isinstance(item, bool) or item < 1:
            raise ApiError(400, "invalid_field", f"{name!r} must list turn numbers (whole numbers from 1), got "
                           f"{item!r}, e.g. [1, 3].")
    return tuple(dict.fromkeys(value))


def chat_body(body: Mapping[str, Any]) -> ChatBody:
    check_fields(body, CHAT_FIELDS)
    budget = field(body, "budget", int)
    reserve = field(body, "reserve", int)
    if reserve is not None:
        token_count("reserve", reserve, minimum=0)
    if budget is not None:
        token_count("budget", budget)
    check_reserve(budget, reserve)
    system = field(body, "system", str)
    if system is not None:
        text_within_cap("'system'", system)
    chosen = field(body, "strategy", str)
    return ChatBody(
        message=field(body, "message", str, required=True),
        session_id=field(body, "sessionId", str),
        provider=field(body, "provider", str),
        model=model(body, None),
        system=system,
        strategy=None if chosen is None else strategy(chosen, allowed=CHAT_STRATEGIES),
        budget=budget,
        reserve=reserve,
        stream=field(body, "stream", bool, False),
        pinned=turn_list(body, "pinned"),
        left_out=turn_list(body, "leftOut"),
        tools=tools(body),
        include=answer_parts(body),
    )


def answer_parts(body: Mapping[str, Any]) -> frozenset[str]:
    """``include``: a list of optional answer parts (ANSWER_PARTS); 400 naming an unknown one."""
    value = field(body, "include", list, [])
    unknown = [item for item in value if item not in ANSWER_PARTS]
    if unknown:
        raise ApiError(400, "invalid_field", f"'include' takes a list of {', '.join(map(repr, ANSWER_PARTS))}; "
                       f"got {unknown[0]!r}, e.g. \"include\": [\"request\"].")
    return frozenset(value)


def check_reserve(budget: int | None, reserve: int | None) -> None:
    """400 when the reserve leaves nothing of the budget to send (either may come from the session)."""
    if budget is not None and reserve is not None and reserve >= budget:
        raise ApiError(400, "invalid_field", f"'reserve' ({reserve}) must be smaller than 'budget' ({budget}); "
                       "nothing could be sent.")
