"""A session's keys as they are in Redis, beside the seed's one-string layout: for the Lesson page.

``session_keys`` reads the real keys of one session (type, TTL, entries, bytes of the stored values);
``stored_values`` returns the stored JSON strings as they are. ``writes_per_turn`` compares, turn by turn,
the bytes of the values each layout writes: ours appends the turn's messages and its turn record; the seed
GETs the whole history and SETEXes it back as one JSON string, so it writes the whole conversation every turn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.sessions.redis.store import RedisStore

SEED_TTL_SECONDS = 86_400  # the seed's SETEX: 24 hours


@dataclass(frozen=True)
class KeyView:
    """One key of a session: its Redis type, seconds to live (None: no TTL), entries, and bytes of its values."""

    key: str
    kind: str
    ttl: int | None
    entries: int
    value_bytes: int


@dataclass(frozen=True)
class TurnWrites:
    """Bytes of the values one turn writes: the seed's whole-history SETEX against our appends."""

    turn: int
    messages: int  # messages in the session after this turn
    seed_bytes: int
    our_bytes: int


def session_keys(store: RedisStore, session_id: str) -> list[KeyView]:
    """The session's keys that exist, in the store's order, read with TYPE, TTL and the type's length."""
    client = store.client
    views = []
    for key in store.keys(session_id):
        kind = _text(client.type(key))
        if kind == "none":
            continue
        ttl = int(client.ttl(key))
        views.append(KeyView(key, kind, ttl if ttl >= 0 else None, *_size(client, key, kind)))
    return views


def stored_values(store: RedisStore, session_id: str, part: str = "messages", *, limit: int = 20) -> list[str]:
    """The first ``limit`` JSON strings of one of the session's lists, exactly as stored."""
    return [_text(v) for v in store.client.lrange(store.key(session_id, part), 0, limit - 1)]


def seed_json(history: Sequence[Mapping[str, Any]]) -> str:
    """The seed's stored value: the whole history as one JSON string of ``{role, content}`` (JSON.stringify)."""
    return json.dumps([{"role": m.get("role"), "content": m.get("content")} for m in history],
                      separators=(",", ":"), ensure_ascii=False)


def seed_commands(session_id: str, history: Sequence[Mapping[str, Any]], *, preview: int = 120) -> list[str]:
    """The two commands the seed runs on every turn, its JSON cut to ``preview`` characters for display."""
    value = seed_json(history)
    shown = value if len(value) <= preview else value[: preview - 1] + "…"
    key = f"session:{session_id}"
    return [f"GET {key}", f"SETEX {key} {SEED_TTL_SECONDS} '{shown}'  ({len(value.encode()):,} bytes)"]


def writes_per_turn(store: RedisStore, session_id: str) -> list[TurnWrites]:
    """Per turn, the bytes of the values written: the seed's SETEX of the history so far, against the JSON
    strings our store appended for that turn (its messages and its turn record), read back from the keys."""
    raw = [_text(v) for v in store.client.lrange(store.key(session_id, "messages"), 0, -1)]
    records = [_text(v) for v in store.client.lrange(store.key(session_id, "turns"), 0, -1)]
    messages = [json.loads(v) for v in raw]
    starts = [n for n, m in enumerate(messages) if m.get("role") == "user"]
    writes = []
    for turn, start in enumerate(starts, start=1):
        end = starts[turn] if turn < len(starts) else len(messages)
        record = records[turn - 1] if turn - 1 < len(records) else ""
        ours = sum(len(v.encode()) for v in raw[start:end]) + len(record.encode())
        writes.append(TurnWrites(turn, end, len(seed_json(messages[:end]).encode()), ours))
    return writes


def projected_writes(writes: Sequence[TurnWrites], turns: int) -> tuple[int, int]:
    """(seed, ours) bytes written by turn ``turns``, extrapolated from this conversation's turns so far: the
    seed's SETEX grows with the history (its size per turn so far, times ``turns``); ours stays at its mean."""
    if not writes:
        return 0, 0
    per_turn = writes[-1].seed_bytes / len(writes)
    return round(per_turn * turns), round(sum(w.our_bytes for w in writes) / len(writes))


def _size(client: Any, key: str, kind: str) -> tuple[int, int]:
    if kind == "list":
        values = [_text(v) for v in client.lrange(key, 0, -1)]
    elif kind == "hash":
        values = [_text(k) + _text(v) for k, v in client.hgetall(key).items()]
    elif kind == "zset":
        values = [_text(m) for m in client.zrange(key, 0, -1)]
    else:
        value = client.get(key) if kind == "string" else None
        values = [_text(value)] if value is not None else []
    return len(values), sum(len(v.encode()) for v in values)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
