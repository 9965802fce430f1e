"""RedisStore: sessions in Redis or Valkey, standalone or clustered.

Keys (the ``{S}`` hash tag keeps one session in one cluster slot, so MULTI/EXEC works in a cluster):

    {prefix}:{S}:messages     LIST of JSON messages
    {prefix}:{S}:turns        LIST of JSON turn records
    {prefix}:{S}:comparisons  LIST of JSON comparison records
    {prefix}:{S}:meta         HASH (created_at, updated_at, title, system_prompt, ...)
    {prefix}:sessions         ZSET of session ids, score = expiry time (the listing index)

Every write is one MULTI/EXEC: RPUSH (or HSET), LTRIM to the cap, and EXPIRE on every session key, so
no key ever lives without a TTL and two writers never overwrite each other (no GET-modify-SET). The
listing index joins the same transaction, except in a cluster, where it lives in another slot.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from lib.sessions.base import (
    SessionSummary,
    StoreError,
    StoreUnavailable,
    meta_value,
    stamp,
    title_from,
    validate_session_id,
)
from lib.sessions.urls import redact_url

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
PARTS = ("messages", "turns", "comparisons", "meta")


def _retry() -> Retry:
    # A restarting server or a failover gets a few quick, jittered retries; then the user gets an error.
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3)


def connect(url: str, *, cluster: bool = False) -> redis.Redis | RedisCluster:
    """A redis-py client for ``redis://``, ``rediss://`` or ``unix://`` URLs, with retry and timeouts."""
    options: dict[str, Any] = {
        "decode_responses": True, "retry": _retry(), "socket_connect_timeout": 3, "socket_timeout": 10,
    }
    try:
        if cluster:
            return RedisCluster.from_url(url, **options)
        return redis.Redis.from_url(url, **options)
    except (ValueError, redis.RedisError) as exc:
        raise StoreUnavailable(f"Cannot use REDIS_URL {redact_url(url)}: {exc}") from exc


def _translate(method: Callable[P, T]) -> Callable[P, T]:
    """Turn redis-py's exceptions into StoreUnavailable / StoreError with a message a user can act on."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        store = args[0]
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(
                f"Redis at {store.location} is not reachable ({exc}). Start the server or fix REDIS_URL; "
                "nothing was written."
            ) from exc
        except redis.RedisError as exc:
            raise StoreError(f"Redis at {store.location} refused the command: {exc}") from exc

    return wrapper


class RedisStore:
    """Sessions in Redis. ``client`` is a redis-py client or a URL; other options are keyword-only."""

    kind = "redis"

    def __init__(
        self,
        client: redis.Redis | RedisCluster | str,
        *,
        ttl: int = 86_400,
        prefix: str = "chat",
        max_messages: int = 10_000,
        cluster: bool = False,
        location: str | None = None,
    ) -> None:
        if ttl < 1 or max_messages < 1:
            raise ValueError("ttl and max_messages must be positive")
        if not prefix or any(c in prefix for c in "{} \n"):
            raise ValueError(f"Invalid key prefix {prefix!r}: use letters, digits, ':' '_' or '-'.")
        if isinstance(client, str):
            location = location or redact_url(client)
            client = connect(client, cluster=cluster)
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        self.ttl_seconds = ttl
        self.prefix = prefix
        self.max_messages = max_messages
        self.location = location or repr(client)
        self.index_key = f"{prefix}:sessions"

    def __repr__(self) -> str:
        return (f"RedisStore({self.location}, prefix={self.prefix!r}, ttl={self.ttl_seconds}, "
                f"max_messages={self.max_messages}, cluster={self.cluster})")

    @property
    def persistent(self) -> bool:
        return True

    def key(self, session_id: str, part: str) -> str:
        """The Redis key of one part of a session (validates the id first)."""
        return f"{self.prefix}:{{{validate_session_id(session_id)}}}:{part}"

    def keys(self, session_id: str) -> list[str]:
        return [self.key(session_id, part) for part in PARTS]

    # -- internals -----------------------------------------------------------------------------------

    def _expire_all(self, pipe: Any, session_id: str) -> None:
        for key in self.keys(session_id):
            pipe.expire(key, self.ttl_seconds)

    def _stamp_meta(self, pipe: Any, session_id: str) -> None:
        meta = self.key(session_id, "meta")
        now = str(time.time())
        pipe.hsetnx(meta, "created_at", now)
        pipe.hset(meta, "updated_at", now)

    def _index(self, pipe: Any, session_id: str, *, only_existing: bool) -> None:
        # The listing's score is the expiry time; entries past it are pruned here, on write.
        now = time.time()
        pipe.zadd(self.index_key, {session_id: now + self.ttl_seconds}, xx=only_existing)
        if not only_existing:
            pipe.zremrangebyscore(self.index_key, "-inf", now)
        pipe.expire(self.index_key, self.ttl_seconds)

    def _commit(self, pipe: Any, session_id: str, *, only_existing: bool = False) -> list[Any]:
        """Run the session's MULTI/EXEC with the index update in it, so a write is one round trip.

        In a cluster the index key lives in another slot and can't join the transaction; it follows
        in a second request. ``only_existing`` (reads) refreshes a listed session without adding one.
        """
        if not self.cluster:
            self._index(pipe, session_id, only_existing=only_existing)
            return pipe.execute()
        results = pipe.execute()
        index = self.client.pipeline(transaction=False)
        self._index(index, session_id, only_existing=only_existing)
        index.execute()
        return results

    def _push(self, session_id: str, part: str, entries: list[str], **meta: str) -> int:
        key = self.key(session_id, part)
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(key, *entries)
        pipe.ltrim(key, -self.max_messages, -1)
        self._stamp_meta(pipe, session_id)
        for name, value in meta.items():
            pipe.hsetnx(self.key(session_id, "meta"), name, value)
        self._expire_all(pipe, session_id)
        length = self._commit(pipe, session_id)[0]
        return min(int(length), self.max_messages)

    def _read_list(self, session_id: str, part: str) -> list[dict[str, Any]]:
        key = self.key(session_id, part)
        pipe = self.client.pipeline(transaction=True)
        pipe.lrange(key, 0, -1)
        self._expire_all(pipe, session_id)  # sliding TTL: a read keeps the session alive too
        raw = self._commit(pipe, session_id, only_existing=True)[0]
        return _decode_entries(raw, key)

    # -- messages ------------------------------------------------------------------------------------

    def _append(self, session_id: str, messages: tuple[Mapping[str, Any], ...]) -> tuple[list[dict[str, Any]], int]:
        stored = [stamp(m) for m in messages]
        title = next((t for t in map(title_from, stored) if t), None)
        extra = {"title": title} if title else {}
        length = self._push(session_id, "messages", [json.dumps(m, ensure_ascii=False) for m in stored], **extra)
        return stored, length

    @_translate
    def append_messages(self, session_id: str, *messages: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Store messages (stamped with id and ts when missing) and return the stored copies."""
        return self._append(session_id, messages)[0] if messages else []

    @_translate
    def append(self, session_id: str, *messages: Mapping[str, Any]) -> int:
        """Store messages and return the new history length (after the per-session cap)."""
        if not messages:
            return int(self.client.llen(self.key(session_id, "messages")))
        return self._append(session_id, messages)[1]

    @_translate
    def get_history(self, session_id: str) -> list[dict[str, Any]]:
        return self._read_list(session_id, "messages")

    @_translate
    def clear_history(self, session_id: str) -> None:
        """Delete every key of the session and its index entry."""
        self.client.delete(*self.keys(session_id))
        self.client.zrem(self.index_key, session_id)

    @_translate
    def exists(self, session_id: str) -> bool:
        return self.ttl(session_id) is not None

    @_translate
    def ttl(self, session_id: str) -> int | None:
        """Seconds left before the session expires, or None when it does not exist."""
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys(session_id):
            pipe.ttl(key)
        left = [t for t in pipe.execute() if t is not None and t >= 0]
        return max(left) if left else None

    @_translate
    def list_sessions(self) -> list[SessionSummary]:
        now = time.time()
        self.client.zremrangebyscore(self.index_key, "-inf", now)
        ids = [i for i in self.client.zrange(self.index_key, 0, -1) if _valid(i)]
        pipe = self.client.pipeline(transaction=False)
        for session_id in ids:
            pipe.llen(self.key(session_id, "messages"))
            pipe.llen(self.key(session_id, "turns"))
            pipe.hmget(self.key(session_id, "meta"), ["title", "updated_at"])
            pipe.ttl(self.key(session_id, "meta"))
        results = pipe.execute()
        rows = []
        for n, session_id in enumerate(ids):
            messages, turns, (title, updated), ttl = results[4 * n: 4 * n + 4]
            if ttl is None or ttl < 0:  # expired between the prune and now
                continue
            rows.append(SessionSummary(id=session_id, title=title or "", message_count=int(messages),
                                       turn_count=int(turns), ttl=int(ttl),
                                       last_activity=_float_or_none(updated)))
        return sorted(rows, key=lambda r: r.last_activity or 0.0, reverse=True)

    # -- turns, comparisons, meta ------------------------------------------------------------------------

    @_translate
    def append_turn(self, session_id: str, record: Mapping[str, Any]) -> int:
        return self._push(session_id, "turns", [json.dumps(dict(record), ensure_ascii=False)])

    @_translate
    def get_turns(self, session_id: str) -> list[dict[str, Any]]:
        return self._read_list(session_id, "turns")

    @_translate
    def turn_count(self, session_id: str) -> int:
        return int(self.client.llen(self.key(session_id, "turns")))

    @_translate
    def append_comparison(self, session_id: str, record: Mapping[str, Any]) -> int:
        return self._push(session_id, "comparisons", [json.dumps(dict(record), ensure_ascii=False)])

    @_translate
    def get_comparisons(self, session_id: str) -> list[dict[str, Any]]:
        return self._read_list(session_id, "comparisons")

    @_translate
    def get_meta(self, session_id: str) -> dict[str, str]:
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(self.key(session_id, "meta"))
        self._expire_all(pipe, session_id)
        return dict(self._commit(pipe, session_id, only_existing=True)[0])

    @_translate
    def set_meta(self, session_id: str, **fields: Any) -> None:
        """Set meta fields (None deletes one); created_at and updated_at are kept by the store."""
        meta = self.key(session_id, "meta")
        pipe = self.client.pipeline(transaction=True)
        self._stamp_meta(pipe, session_id)
        for name, value in fields.items():
            if value is None:
                pipe.hdel(meta, name)
            else:
                pipe.hset(meta, name, meta_value(value))
        self._expire_all(pipe, session_id)
        self._commit(pipe, session_id)

    @_translate
    def ping(self) -> bool:
        return bool(self.client.ping())


def _decode_entries(raw: list[str], key: str) -> list[dict[str, Any]]:
    entries = []
    for position, item in enumerate(raw):
        try:
            value = json.loads(item)
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, dict):
            # Logged, skipped, and left in place: a person can inspect it; the page keeps working.
            log.warning("Skipping corrupt entry %d in %s: %.80r", position, key, item)
            continue
        entries.append(value)
    return entries


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
