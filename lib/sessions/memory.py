"""MemoryStore: the seed's in-process Map, for development only (lost on restart, not shared)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lib.sessions.base import SessionSummary, meta_value, stamp, title_from, validate_session_id


@dataclass
class _Session:
    # Entries are kept as JSON text, like Redis keeps them, so callers can't mutate stored history
    # and anything that would not survive Redis fails here too.
    messages: list[str] = field(default_factory=list)
    turns: list[str] = field(default_factory=list)
    comparisons: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    expires_at: float = 0.0


class MemoryStore:
    """Same interface and sliding-TTL semantics as RedisStore, kept in this process's memory."""

    kind = "memory"
    label = "memory (dev only: lost on restart, not shared between processes)"

    def __init__(
        self, *, ttl: int = 86_400, max_messages: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        if ttl < 1 or max_messages < 1:
            raise ValueError("ttl and max_messages must be positive")
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

    def _push(self, entries: list[str], records: list[str], cap: int) -> int:
        entries.extend(records)
        del entries[: max(0, len(entries) - cap)]
        return len(entries)

    # -- messages ------------------------------------------------------------------------------------

    def append_messages(self, session_id: str, *messages: Mapping[str, Any]) -> list[dict[str, Any]]:
        stored = [stamp(m) for m in messages]
        encoded = [json.dumps(m, ensure_ascii=False) for m in stored]
        with self._lock:
            session = self._write(session_id)
            self._push(session.messages, encoded, self.max_messages)
            title = next((t for t in map(title_from, stored) if t), None)
            if title:
                session.meta.setdefault("title", title)
        return stored

    def append(self, session_id: str, *messages: Mapping[str, Any]) -> int:
        with self._lock:
            self.append_messages(session_id, *messages)
            return len(self._sessions[session_id].messages)

    def get_history(self, session_id: str) -> list[dict[str, Any]]:
        with self._lock:
            session = self._touch(session_id)
            return [json.loads(m) for m in session.messages] if session else []

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
                    id=session_id, title=session.meta.get("title", ""), message_count=len(session.messages),
                    turn_count=len(session.turns), ttl=max(0, round(session.expires_at - self._clock())),
                    last_activity=float(session.meta["updated_at"]) if "updated_at" in session.meta else None,
                ))
        return sorted(rows, key=lambda r: r.last_activity or 0.0, reverse=True)

    # -- turns, comparisons, meta ------------------------------------------------------------------------

    def append_turn(self, session_id: str, record: Mapping[str, Any]) -> int:
        encoded = json.dumps(dict(record), ensure_ascii=False)
        with self._lock:
            return self._push(self._write(session_id).turns, [encoded], self.max_messages)

    def get_turns(self, session_id: str) -> list[dict[str, Any]]:
        with self._lock:
            session = self._touch(session_id)
            return [json.loads(t) for t in session.turns] if session else []

    def turn_count(self, session_id: str) -> int:
        with self._lock:
            session = self._live(session_id)
            return len(session.turns) if session else 0

    def append_comparison(self, session_id: str, record: Mapping[str, Any]) -> int:
        encoded = json.dumps(dict(record), ensure_ascii=False)
        with self._lock:
            return self._push(self._write(session_id).comparisons, [encoded], self.max_messages)

    def get_comparisons(self, session_id: str) -> list[dict[str, Any]]:
        with self._lock:
            session = self._touch(session_id)
            return [json.loads(c) for c in session.comparisons] if session else []

    def get_meta(self, session_id: str) -> dict[str, str]:
        with self._lock:
            session = self._touch(session_id)
            return dict(session.meta) if session else {}

    def set_meta(self, session_id: str, **fields: Any) -> None:
        with self._lock:
            session = self._write(session_id)
            for name, value in fields.items():
                if value is None:
                    session.meta.pop(name, None)
                else:
                    session.meta[name] = meta_value(value)

    def ping(self) -> bool:
        return True
