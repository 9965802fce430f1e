"""Read and validate request bodies: media type, size, JSON, field names and types. Every refusal is a 400,
413 or 415 that names the field (or header) and says what to send instead."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request

from lib.api.errors import MAX_BODY_BYTES, ApiError
from lib.chat import CHAT_STRATEGIES
from lib.trimming import STRATEGIES

DEFAULT_COUNT_MODEL = "gpt-4o-mini"
JSON_MEDIA_TYPE = "application/json"
# Model names are stored in turn records and shown by the pages: letters, digits and the separators real
# names use (gpt-4o-2024-08-06, org/model:tag, name@version, a+b), never spaces, newlines or Markdown.
MODEL_MAX_CHARS = 128
MODEL_CHARACTERS = "letters A-Z a-z, digits and . _ - : / @ +"
MODEL_PATTERN = re.compile(r"[A-Za-z0-9._:/@+-]+")
_Default = TypeVar("_Default", str, None)
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
                 "reserve_tokens": "reserve"}
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
    if not MODEL_PATTERN.fullmatch(value):
        bad = next(char for char in value if not MODEL_PATTERN.fullmatch(char))
        raise ApiError(400, "invalid_field", f"'model' may contain only {MODEL_CHARACTERS} (got {bad!r} at "
                       f"position {value.index(bad)}), e.g. 'gpt-4o-mini'.")
    return value


def positive(name: str, value: int, *, minimum: int = 1) -> int:
    if value < minimum:
        raise ApiError(400, "invalid_field", f"{name!r} must be at least {minimum}, got {value}.")
    return value


def strategy(value: str, *, allowed: tuple[str, ...] = STRATEGIES) -> str:
    if value not in allowed:
        raise ApiError(400, "unknown_strategy", f"Unknown strategy {value!r}. Choose one of: {', '.join(allowed)}.")
    return value


def messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A non-empty list of message objects, each with a string role and string-or-list content."""
    items = field(body, "messages", list, required=True)
    for index, message in enumerate(items):
        if not isinstance(message, dict):
            raise ApiError(400, "invalid_field", f"messages[{index}] must be an object with 'role' and 'content'.")
        if not isinstance(message.get("role"), str):
            raise ApiError(400, "invalid_field", f"messages[{index}].role must be a string (user, assistant, ...).")
        if not isinstance(message.get("content", ""), str | list | type(None)):
            raise ApiError(400, "invalid_field", f"messages[{index}].content must be a string or a list of parts.")
        if "id" in message and not isinstance(message["id"], str):
            raise ApiError(400, "invalid_field", f"messages[{index}].id must be a string.")
    return items


@dataclass(frozen=True)
class ChatBody:
    """POST /api/chat, validated. ``provider``/``budget`` of None mean the server's defaults."""

    message: str
    session_id: str | None
    provider: str | None
    model: str | None
    system: str
    strategy: str
    budget: int | None
    reserve: int
    stream: bool


CHAT_FIELDS = ("sessionId", "message", "provider", "model", "system", "strategy", "budget", "reserve", "stream")


def chat_body(body: Mapping[str, Any]) -> ChatBody:
    check_fields(body, CHAT_FIELDS)
    budget = field(body, "budget", int)
    reserve = positive("reserve", field(body, "reserve", int, 0), minimum=0)
    if budget is not None:
        positive("budget", budget)
        if reserve >= budget:
            raise ApiError(400, "invalid_field", f"'reserve' ({reserve}) must be smaller than 'budget' ({budget}); "
                           "nothing could be sent.")
    return ChatBody(
        message=field(body, "message", str, required=True),
        session_id=field(body, "sessionId", str),
        provider=field(body, "provider", str),
        model=model(body, None),
        system=field(body, "system", str, ""),
        strategy=strategy(field(body, "strategy", str, STRATEGIES[0]), allowed=CHAT_STRATEGIES),
        budget=budget,
        reserve=reserve,
        stream=field(body, "stream", bool, False),
    )
