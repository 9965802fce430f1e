"""What every session store offers, and the errors it raises.

A session is three things under one id: the message history (a list), the turn records (a list, one per
request sent) and a small meta hash (title, created_at, updated_at, system prompt, ...). Stores keep the
full history; trimming only ever shapes the payload, so the inspector can show what each turn dropped.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
TITLE_CHARS = 60


class InvalidSessionId(ValueError):
    """A session id outside ``[A-Za-z0-9_-]{1,128}``; it never reaches a Redis key."""

    def __init__(self, session_id: object) -> None:
        shown = repr(session_id)
        if len(shown) > 40:
            shown = shown[:37] + "..."
        super().__init__(
            f"Invalid session id {shown}: use 1 to 128 letters, digits, '_' or '-' (for example a uuid4 hex)."
        )


class StoreError(RuntimeError):
    """The store could not do what was asked (the message says what to check)."""


class StoreUnavailable(StoreError):
    """The Redis server cannot be reached after redis-py's retries."""


def validate_session_id(session_id: object) -> str:
    """Return the id unchanged, or raise InvalidSessionId."""
    if not isinstance(session_id, str) or not SESSION_ID_PATTERN.fullmatch(session_id):
        raise InvalidSessionId(session_id)
    return session_id


def new_session_id() -> str:
    return uuid.uuid4().hex


def stamp(message: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` with an ``id`` and ``ts`` when it lacks them (the caller's dict is untouched)."""
    if not isinstance(message, Mapping) or "role" not in message:
        raise ValueError(f"A message must be a mapping with a 'role', got {type(message).__name__}.")
    stamped = dict(message)
    stamped.setdefault("id", uuid.uuid4().hex)
    stamped.setdefault("ts", time.time())
    return stamped


def meta_value(value: Any) -> str:
    """Meta lives in a Redis HASH of strings: strings stay as they are, anything else becomes JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def title_from(message: Mapping[str, Any]) -> str | None:
    """The session title: the first user message, on one line, truncated."""
    if message.get("role") != "user":
        return None
    content = message.get("content")
    text = " ".join(content.split()) if isinstance(content, str) else ""
    if not text:
        return None
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


@dataclass(frozen=True)
class SessionSummary:
    """One row of the sessions page."""

    id: str
    title: str
    message_count: int
    turn_count: int
    ttl: int | None
    last_activity: float | None


@runtime_checkable
class SessionStore(Protocol):
    """The interface both stores implement; see tests/test_store_contract.py for the exact semantics."""

    kind: str  # "memory" or "redis"
    ttl_seconds: int
    max_messages: int

    @property
    def persistent(self) -> bool: ...

    def get_history(self, session_id: str) -> list[dict[str, Any]]: ...

    def append(self, session_id: str, *messages: Mapping[str, Any]) -> int: ...

    def append_messages(self, session_id: str, *messages: Mapping[str, Any]) -> list[dict[str, Any]]: ...

    def clear_history(self, session_id: str) -> None: ...

    def ttl(self, session_id: str) -> int | None: ...

    def exists(self, session_id: str) -> bool: ...

    def list_sessions(self) -> list[SessionSummary]: ...

    def append_turn(self, session_id: str, record: Mapping[str, Any]) -> int: ...

    def get_turns(self, session_id: str) -> list[dict[str, Any]]: ...

    def turn_count(self, session_id: str) -> int: ...

    def get_meta(self, session_id: str) -> dict[str, str]: ...

    def set_meta(self, session_id: str, **fields: Any) -> None: ...

    def append_comparison(self, session_id: str, record: Mapping[str, Any]) -> int: ...

    def get_comparisons(self, session_id: str) -> list[dict[str, Any]]: ...

    def ping(self) -> bool: ...
