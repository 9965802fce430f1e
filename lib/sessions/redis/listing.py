"""The sessions page's rows from Redis: the listing index, pruned first, then one pipelined read per session."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from lib.sessions.base import SessionSummary, validate_session_id

log = logging.getLogger("lib.sessions.redis.store")


class RedisStore(Protocol):
    """What the listing needs of the store: its client, index key and key layout (``lib.sessions.redis.store``)."""

    client: Any
    index_key: str

    def key(self, session_id: str, part: str) -> str: ...


def list_sessions(store: RedisStore) -> list[SessionSummary]:
    """Every live session, newest activity first."""
    client = store.client
    client.zremrangebyscore(store.index_key, "-inf", time.time())
    ids = [i for i in map(str, client.zrange(store.index_key, 0, -1)) if _valid(i)]
    pipe = client.pipeline(transaction=False)
    for session_id in ids:
        pipe.llen(store.key(session_id, "messages"))
        pipe.llen(store.key(session_id, "turns"))
        pipe.hmget(store.key(session_id, "meta"), ["title", "updated_at"])
        pipe.ttl(store.key(session_id, "meta"))
    results = pipe.execute()
    rows = []
    for n, session_id in enumerate(ids):
        messages, turns, (title, updated), ttl = results[4 * n: 4 * n + 4]
        if ttl is None or ttl < 0:  # expired between the prune and now
            continue
        rows.append(SessionSummary(id=session_id, title=title or "", message_count=int(messages),
                                   turn_count=int(turns), ttl=int(ttl), last_activity=_float_or_none(updated)))
    return sorted(rows, key=lambda r: r.last_activity or 0.0, reverse=True)


def _valid(session_id: str) -> bool:
    try:
        validate_session_id(session_id)
    except ValueError:
        log.warning("Ignoring invalid session id %.80r in the session index", session_id)
        return False
    return True


def _float_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
