"""What every session store offers, and the errors it raises.

A session is three things under one id: the message history (a list), the turn records (a list, one per
request sent) and a small meta hash (title, created_at, updated_at, system prompt, ...). Stores keep the
full history; trimming only ever shapes the payload, so the inspector can show what each turn dropped.

Writes are idempotent: a message whose id is already stored, or a turn record whose ``turn`` number is,
is not stored again, so a write resent after a timeout never duplicates anything. ``begin_turn`` stores
the user message and takes the session's next turn number in one atomic step.

A chat turn uses two calls: ``open_turn`` (read the history and meta, store the user message with its
number, set the turn's meta fields, refresh the session's TTL) and ``close_turn`` (store the reply, the
turn record and any meta the reply sets). Each is one round trip on Redis.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from lib.core import HistoryLabError

SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
TITLE_CHARS = 60
# Redis EXPIRE fails inside EXEC for absurd values (after the RPUSH already ran); a year is plenty.
MAX_TTL = 31_536_000
# begin_turn remembers this many recent user-message ids with their turn numbers, so a retried call
# (redis-py resending after a timeout) gets its original number back instead of a new one.
BEGUN_WINDOW = 1_000
# Meta fields a store keeps for itself (RedisStore's counters): never returned by get_meta, never set by callers.
STORE_FIELD_PREFIX = "store:"


class InvalidSessionId(HistoryLabError, ValueError):
    """A session id outside ``[A-Za-z0-9_-]{1,128}``; it never reaches a Redis key."""

    def __init__(self, session_id: object) -> None:
        shown = repr(session_id)
        if len(shown) > 40:
            shown = shown[:37] + "..."
        super().__init__(
            f"Invalid session id {shown}: use 1 to 128 letters, digits, '_' or '-' (for example a uuid4 hex)."
        )


class InvalidMessage(HistoryLabError, ValueError):
    """A message or record the store cannot keep (no role, not a mapping, not JSON); nothing was written."""


class StoreError(HistoryLabError, RuntimeError):
    """The store could not do what was asked (the message says what to check)."""


class StoreUnavailable(StoreError):
    """The Redis server cannot be reached after redis-py's retries.

    ``reason`` is what failed, without the advice: for a message that wraps this one in its own advice.
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class MetaChanged(StoreError):
    """``open_turn(expect=...)``: a meta field no longer holds the value the caller decided on; nothing was
    written. ``meta`` is the session meta as it is now, to decide again from."""

    def __init__(self, meta: dict[str, str], names: Iterable[str]) -> None:
        super().__init__(f"The session meta changed since it was read ({', '.join(sorted(names))}); read it "
                         "again and retry.")
        self.meta = meta


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
        raise InvalidMessage(f"A message must be a mapping with a 'role', got {type(message).__name__}; "
                             "nothing was written.")
    stamped = dict(message)
    stamped.setdefault("id", uuid.uuid4().hex)
    stamped.setdefault("ts", time.time())
    return stamped


def check_limits(*, ttl: int, max_messages: int) -> None:
    """Refuse a TTL or cap that would make Redis fail halfway through a write."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
        raise StoreError(f"Session TTL must be a whole number of seconds from 1 to {MAX_TTL:,}, got {ttl!r}.")
    if isinstance(max_messages, bool) or not isinstance(max_messages, int) or max_messages < 1:
        raise StoreError(f"The per-session cap must be a positive whole number, got {max_messages!r}.")


def encode(entry: Mapping[str, Any], what: str = "record") -> str:
    """One stored entry as JSON text; refuses what would not round-trip (NaN, non-string keys, objects)."""
    if not isinstance(entry, Mapping):
        raise InvalidMessage(f"A {what} must be a mapping, got {type(entry).__name__}; nothing was written.")
    try:
        return json.dumps(dict(entry), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(f"This {what} cannot be stored as JSON ({exc}); nothing was written.") from None


def turn_key(record: Mapping[str, Any]) -> str | None:
    """What makes a turn record unique: its turn number (records without one are never deduplicated)."""
    turn = record.get("turn")
    return str(turn) if isinstance(turn, int) and not isinstance(turn, bool) else None


def slice_bounds(start: int, end: int | None) -> tuple[int, int] | None:
    """Python slice ``[start:end]`` as LRANGE's inclusive ``(start, stop)``, or None when surely empty."""
    if end is None:
        return start, -1
    if end == 0 or (end > 0 and start >= 0 and end <= start):
        return None
    return start, end - 1


class StoredDict(dict[str, Any]):
    """A message or record as read from the store: a dict that refuses changes.

    RedisStore hands out the entries it caches (copying 5,000 messages every turn would cost more than
    the read itself), so a caller that changed one would silently change what later reads return.
    Changing one raises instead; ``dict(entry)`` (or ``{**entry}``) is a mutable copy, and so is
    ``copy.deepcopy(entry)``. JSON encoding, equality and pickling behave as for a plain dict.
    """

    def _refuse(self, *_args: Any, **_kwargs: Any) -> Any:
        raise TypeError("Stored messages and records are read-only; change a copy (dict(message)) instead.")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        import copy

        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (dict(self),)


def decode_entry(text: Any) -> StoredDict | None:
    """One stored JSON entry as a StoredDict (nested objects too), or None when it is not a JSON object."""
    try:
        value = json.loads(text, object_hook=StoredDict)
    except (TypeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, StoredDict) else None


def check_meta_names(names: Iterable[object]) -> None:
    """Refuse meta field names a caller may not set (empty, not strings, or the store's own ``store:`` ones)."""
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidMessage(f"Meta field names must be non-empty strings, got {name!r}; nothing was written.")
        if name.startswith(STORE_FIELD_PREFIX):
            raise InvalidMessage(f"Meta field {name!r} is reserved for the store ({STORE_FIELD_PREFIX!r} fields); "
                                 "rename it. Nothing was written.")


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


@dataclass(frozen=True)
class OpenedTurn:
    """What ``open_turn`` read and wrote in one step.

    ``history``: every message stored before ``message`` (read-only entries); ``meta``: the session meta as
    it was before this call set its fields; ``newest_record``: the newest turn record, when asked for.
    ``resent``: the message was already stored (a retried call), and ``turn`` is the number it took then.
    """

    message: dict[str, Any]
    turn: int
    history: list[dict[str, Any]]
    meta: dict[str, str]
    newest_record: dict[str, Any] | None = None
    resent: bool = False


def history_before(history: list[dict[str, Any]], message_id: object) -> list[dict[str, Any]]:
    """``history`` without the message a retried ``open_turn`` already stored (it is the turn's, not history)."""
    return [m for m in history if m.get("id") != message_id]


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

    def begin_turn(self, session_id: str, message: Mapping[str, Any]) -> tuple[dict[str, Any], int]: ...

    def open_turn(self, session_id: str, message: Mapping[str, Any], *, meta: Mapping[str, Any] | None = None,
                  newest_record: bool = False, expect: Mapping[str, str | None] | None = None) -> OpenedTurn: ...

    def close_turn(self, session_id: str, *, turn: int, reply: Mapping[str, Any] | None,
                   record: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> dict[str, Any] | None: ...

    def get_turns(self, session_id: str, start: int = 0, end: int | None = None) -> list[dict[str, Any]]: ...

    def turn_count(self, session_id: str) -> int: ...

    def get_meta(self, session_id: str) -> dict[str, str]: ...

    def set_meta(self, session_id: str, **fields: Any) -> None: ...

    def append_comparison(self, session_id: str, record: Mapping[str, Any]) -> int: ...

    def get_comparisons(self, session_id: str) -> list[dict[str, Any]]: ...

    def import_session(
        self,
        session_id: str,
        *,
        messages: Sequence[Mapping[str, Any]],
        turns: Sequence[Mapping[str, Any]] = (),
        meta: Mapping[str, Any] | None = None,
        comparisons: Sequence[Mapping[str, Any]] = (),
    ) -> None: ...

    def ping(self) -> bool: ...
