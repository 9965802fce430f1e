"""MemoryStore: the seed's in-process Map, for development only (lost on restart, not shared)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lib.sessions.base import (
    BEGUN_WINDOW,
    MetaChanged,
    OpenedTurn,
    SessionSummary,
    check_limits,
    check_meta_names,
    decode_entry,
    encode,
    meta_value,
    stamp,
    title_from,
    turn_key,
    validate_session_id,
)
from lib.sessions.imports import plan_import


@dataclass
class _List:
    """A capped list of JSON entries, each with the key that deduplicates it (message id, turn number)."""

    entries: list[str] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)

    def push(self, items: list[tuple[str | None, str]], cap: int) -> int:
        present = {k for k in self.keys if k is not None}
        for key, entry in items:
            if key is not None and key in present:
                continue  # a retried write: already stored
            if key is not None:
                present.add(key)
            self.entries.append(entry)
            self.keys.append(key)
        excess = max(0, len(self.entries) - cap)
        del self.entries[:excess], self.keys[:excess]
        return len(self.entries)


@dataclass
class _Session:
    # Entries are kept as JSON text, like Redis keeps them, so callers can't mutate stored history
    # and anything that would not survive Redis fails here too.
    messages: _List = field(default_factory=_List)
    turns: _List = field(default_factory=_List)
    comparisons: _List = field(default_factory=_List)
    meta: dict[str, str] = field(default_factory=dict)
    turn_seq: int = 0
    begun: OrderedDict[str, int] = field(default_factory=OrderedDict)  # user message id -> turn number
    expires_at: float = 0.0


def _decoded(entries: list[str]) -> list[dict[str, Any]]:
    # Read-only like RedisStore's, so code that would change a stored message fails here too.
    return [entry for entry in map(decode_entry, entries) if entry is not None]


class MemoryStore:
    """Same interface and sliding-TTL semantics as RedisStore, kept in this process's memory."""

    kind = "memory"
    label = "memory (dev only: lost on restart, not shared between processes)"

    def __init__(
        self, *, ttl: int = 86_400, max_messages: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        check_limits(ttl=ttl, max_messages=max_messages)
        self.ttl_seconds = ttl
        self.max_messages = max_messages
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"MemoryStore(ttl={self.ttl_seconds}, max_messages={self.max_messages}, sessions={len(self._sessions)})"

    @property
    def persistent(self) -> bool:
        return False

    # -- internals -----------------------------------------------------------------------------------

    def _live(self, session_id: str) -> _Session | None:
        validate_session_id(session_id)
        session = self._sessions.get(session_id)
        if session is not None and session.expires_at <= self._clock():
            del self._sessions[session_id]
            return None
        return session

    def _touch(self, session_id: str) -> _Session | None:
        session = self._live(session_id)
        if session is not None:
            session.expires_at = self._clock() + self.ttl_seconds
        return session

    def _write(self, session_id: str) -> _Session:
        session = self._touch(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session(expires_at=self._clock() + self.ttl_seconds)
        now = str(self._clock())
        session.meta.setdefault("created_at", now)
        session.meta["updated_at"] = now
        return session

    def _push_messages(self, session: _Session, stored: list[dict[str, Any]], encoded: list[str]) -> int:
        length = session.messages.push([(str(m["id"]), e) for m, e in zip(stored, encoded, strict=True)],
                                       self.max_messages)
        title = next((t for t in map(title_from, stored) if t), None)
        if title:
            session.meta.setdefault("title", title)
        return length

    # -- messages ------------------------------------------------------------------------------------

    def append_messages(self, session_id: str, *messages: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Store messages (stamped with id and ts when missing); an id already stored is not stored again."""
        stored = [stamp(m) for m in messages]
        encoded = [encode(m, "message") for m in stored]
        with self._lock:
            validate_session_id(session_id)
            if stored:
                self._push_messages(self._write(session_id), stored, encoded)
        return stored

    def append(self, session_id: str, *messages: Mapping[str, Any]) -> int:
        with self._lock:
            self.append_messages(session_id, *messages)
            session = self._live(session_id)
            return len(session.messages.entries) if session else 0

    def begin_turn(self, session_id: str, message: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        """Store the user message and take the next turn number, together; a retry gets the same number."""
        stored = stamp(message)
        encoded = encode(stored, "message")
        with self._lock:
            validate_session_id(session_id)
            session = self._write(session_id)
            if str(stored["id"]) in session.begun:
                return stored, session.begun[str(stored["id"])]
            self._push_messages(session, [stored], [encoded])
            session.turn_seq += 1
            session.begun[str(stored["id"])] = session.turn_seq
            while len(session.begun) > BEGUN_WINDOW:
                session.begun.popitem(last=False)
            return stored, session.turn_seq

    # The two calls of a chat turn, built from the calls above (so a test double that overrides one of those
    # fails the turn's call the way a store outage would): under the lock, so each is atomic here too.

    def open_turn(self, session_id: str, message: Mapping[str, Any], *, meta: Mapping[str, Any] | None = None,
                  newest_record: bool = False, expect: Mapping[str, str | None] | None = None) -> OpenedTurn:
        """Read the history and meta, store the user message with the next turn number and set ``meta``.

        ``expect``: meta values (None: absent) the caller decided on; if one differs (and is not the value this
        call sets), nothing is written and MetaChanged carries the meta as it is."""
        check_meta_names(meta or {})
        with self._lock:
            history, before = self.get_history(session_id), self.get_meta(session_id)
            # A field already holding what this call sets passes: a resent call finds what its first attempt wrote.
            sets = meta or {}
            if any(before.get(name) != value and (before.get(name) is None or before.get(name) != sets.get(name))
                   for name, value in (expect or {}).items()):
                raise MetaChanged(before, expect or {})
            newest = self.get_turns(session_id, -1) if newest_record else []
            stored, turn = self.begin_turn(session_id, message)
            self.set_meta(session_id, **{k: v for k, v in (meta or {}).items() if v is not None})
        resent = any(m.get("id") == stored["id"] for m in history)
        return OpenedTurn(message=stored, turn=turn, meta=before, newest_record=newest[-1] if newest else None,
                          history=[m for m in history if m.get("id") != stored["id"]] if resent else history,
                          resent=resent)

    def close_turn(self, session_id: str, *, turn: int, reply: Mapping[str, Any] | None,
                   record: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Store the reply (if any), the turn record and ``meta`` together."""
        encode(record, "turn record")  # refused before anything is written
        check_meta_names(meta or {})
        with self._lock:
            stored = self.append_messages(session_id, reply)[0] if reply is not None else None
            if meta:
                self.set_meta(session_id, **meta)
            self.append_turn(session_id, record)
        return stored

    def get_history(self, session_id: str) -> list[dict[str, Any]]:
        with self._lock:
            session = self._touch(session_id)
            return _decoded(session.messages.entries) if session else []

    def clear_history(self, session_id: str) -> None:
        with self._lock:
            if self._live(session_id) is not None:
                del self._sessions[session_id]

    def exists(self, session_id: str) -> bool:
        with self._lock:
            return self._live(session_id) is not None

    def ttl(self, session_id: str) -> int | None:
        with self._lock:
            session = self._live(session_id)
            return None if session is None else max(0, round(session.expires_at - self._clock()))

    def list_sessions(self) -> list[SessionSummary]:
        with self._lock:
            rows = []
            for session_id in list(self._sessions):
                session = self._live(session_id)
                if session is None:
                    continue
                rows.append(SessionSummary(
                    id=session_id, title=session.meta.get("title", ""),
                    message_count=len(session.messages.entries), turn_count=len(session.turns.entries),
                    ttl=max(0, round(session.expires_at - self._clock())),
                    last_activity=float(session.meta["updated_at"]) if "updated_at" in session.meta else None,
                ))
        return sorted(rows, key=lambda r: r.last_activity or 0.0, reverse=True)

    # -- turns, comparisons, meta ------------------------------------------------------------------------

    def append_turn(self, session_id: str, record: Mapping[str, Any]) -> int:
        """Store a turn record; a record whose ``turn`` number is already stored is not stored again."""
        encoded = encode(record, "turn record")
        with self._lock:
            validate_session_id(session_id)
            return self._write(session_id).turns.push([(turn_key(record), encoded)], self.max_messages)

    def get_turns(self, session_id: str, start: int = 0, end: int | None = None) -> list[dict[str, Any]]:
        """Turn records ``[start:end]`` (Python slice positions in the stored list)."""
        with self._lock:
            session = self._touch(session_id)
            return _decoded(session.turns.entries[start:end]) if session else []

    def turn_count(self, session_id: str) -> int:
        with self._lock:
            session = self._live(session_id)
            return len(session.turns.entries) if session else 0

    def append_comparison(self, session_id: str, record: Mapping[str, Any]) -> int:
        encoded = encode(record, "comparison record")
        with self._lock:
            validate_session_id(session_id)
            return self._write(session_id).comparisons.push([(None, encoded)], self.max_messages)

    def get_comparisons(self, session_id: str) -> list[dict[str, Any]]:
        with self._lock:
            session = self._touch(session_id)
            return _decoded(session.comparisons.entries) if session else []

    def get_meta(self, session_id: str) -> dict[str, str]:
        with self._lock:
            session = self._touch(session_id)
            return dict(session.meta) if session else {}

    def set_meta(self, session_id: str, **fields: Any) -> None:
        check_meta_names(fields)
        with self._lock:
            session = self._write(session_id)
            for name, value in fields.items():
                if value is None:
                    session.meta.pop(name, None)
                else:
                    session.meta[name] = meta_value(value)

    def import_session(
        self,
        session_id: str,
        *,
        messages: Sequence[Mapping[str, Any]],
        turns: Sequence[Mapping[str, Any]] = (),
        meta: Mapping[str, Any] | None = None,
        comparisons: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Write a whole session at once, replacing any session with that id; all or nothing."""
        plan = plan_import(messages=messages, turns=turns, meta=meta, comparisons=comparisons,
                           cap=self.max_messages, now=self._clock())
        session = _Session(meta=dict(plan.meta), turn_seq=plan.turn_seq, expires_at=self._clock() + self.ttl_seconds)
        session.messages.push(plan.messages, self.max_messages)
        session.turns.push(plan.turns, self.max_messages)
        session.comparisons.push(plan.comparisons, self.max_messages)
        with self._lock:
            validate_session_id(session_id)
            self._sessions[session_id] = session  # one assignment: the session appears whole or not at all

    def ping(self) -> bool:
        return True
