"""RedisStore: sessions in Redis or Valkey, standalone or clustered.

Keys (the ``{S}`` hash tag keeps one session in one cluster slot, so scripts and MULTI/EXEC work there):

    {prefix}:{S}:messages     LIST of JSON messages
    {prefix}:{S}:turns        LIST of JSON turn records
    {prefix}:{S}:comparisons  LIST of JSON comparison records
    {prefix}:{S}:meta         HASH (created_at, updated_at, title, system_prompt, ...)
    {prefix}:{S}:state        HASH the store keeps for itself (epoch, turn counter, trimmed counts)
    {prefix}:{S}:message_ids  ZSET message id -> position (so a resent append stores nothing twice)
    {prefix}:{S}:turn_ids     ZSET turn number -> position (the same for turn records)
    {prefix}:{S}:begun        ZSET user message id -> turn number (a resent begin_turn keeps its number)
    {prefix}:sessions         ZSET of session ids, score = expiry time (the listing index)

Every write is one atomic call (a script, see redis_lua.py, or MULTI/EXEC for meta) that also refreshes
the TTL of every session key, so no key lives without one and two writers never overwrite each other.
Reads are incremental: a process keeps what it has read (cache.py) and fetches only the new tail. Reads
refresh the TTL too, but at most once per ``touch_interval`` per session, and keep index upkeep off the
read path except for that refresh. The listing index joins the same call, except in a cluster, where it
lives in another slot and follows in a second request.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster

from lib.core import redact_url
from lib.sessions.base import (
    BEGUN_WINDOW,
    SessionSummary,
    StoreError,
    check_limits,
    decode_entry,
    encode,
    meta_value,
    slice_bounds,
    stamp,
    title_from,
    turn_key,
    validate_session_id,
)
from lib.sessions.cache import Entry, ListCache, visible
from lib.sessions.imports import Entries, plan_import
from lib.sessions.redis.client import connect, translate
from lib.sessions.redis.importer import write_import
from lib.sessions.redis.scripts import APPEND, LIST_PARTS, READ, SESSION_PARTS, key_position

log = logging.getLogger(__name__)
PARTS = SESSION_PARTS


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
        touch_interval: float | None = None,
        unreachable_advice: str | None = None,
    ) -> None:
        check_limits(ttl=ttl, max_messages=max_messages)
        if not prefix or any(c in prefix for c in "{} \n"):
            raise StoreError(f"Invalid key prefix {prefix!r}: use letters, digits, ':' '_' or '-'.")
        if isinstance(client, str):
            location = location or redact_url(client)
            client = connect(client, cluster=cluster)
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        self.ttl_seconds = ttl
        self.prefix = prefix
        self.max_messages = max_messages
        self.location = location or repr(client)
        # What a "not reachable" error tells the user to do (see redis_client.translate).
        self.unreachable_advice = unreachable_advice
        self.index_key = f"{prefix}:sessions"
        # A read refreshes the TTL at most this often per session: the sliding expiry is off by at most
        # this much, and a turn's reads cost no EXPIREs (its writes already refreshed every key).
        self.touch_interval = min(60.0, ttl / 10) if touch_interval is None else touch_interval
        self._touched: dict[str, float] = {}
        self._touch_lock = threading.Lock()
        self._cache = ListCache()
        self._append_script = client.register_script(APPEND)
        self._read_script = client.register_script(READ)

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

    def _script_keys(self, session_id: str) -> list[str]:
        keys = self.keys(session_id)
        return keys if self.cluster else [*keys, self.index_key]

    def _touch_due(self, session_id: str) -> bool:
        """True (and the interval restarts) when this read should refresh the session's TTL."""
        with self._touch_lock:
            due = time.monotonic() - self._touched.get(session_id, -1e18) >= self.touch_interval
        if due:
            self._touched_now(session_id)
        return due

    def _touched_now(self, session_id: str) -> None:
        """Every write refreshes every key's TTL, so the next read need not."""
        with self._touch_lock:
            if len(self._touched) > 10_000:  # a bound, not an LRU: forgetting only costs one extra EXPIRE
                self._touched.clear()
            self._touched[session_id] = time.monotonic()

    def _index_in_cluster(self, session_id: str, *, only_existing: bool) -> None:
        # The index key lives in another slot; in a cluster it follows the session's call.
        if not self.cluster:
            return
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self.index_key, {session_id: now + self.ttl_seconds}, xx=only_existing)
        if not only_existing:
            pipe.zremrangebyscore(self.index_key, "-inf", now)
        pipe.expire(self.index_key, self.ttl_seconds)
        pipe.execute()

    def _run_append(self, session_id: str, part: str, entries: Entries, *, title: str | None = None,
                    begin: bool = False) -> tuple[int, int]:
        """One atomic append (see redis_lua.APPEND); returns (turn number or 0, list length)."""
        args: list[Any] = [
            key_position(part), key_position(LIST_PARTS[part]), self.ttl_seconds, self.max_messages,
            repr(time.time()), uuid.uuid4().hex, title or "", int(begin), session_id, int(not self.cluster),
            BEGUN_WINDOW, part,
        ]
        for key, entry in entries:
            args += [key or "", entry]
        turn, length = self._append_script(keys=self._script_keys(session_id), args=args)
        self._touched_now(session_id)
        self._index_in_cluster(session_id, only_existing=False)
        return int(turn), int(length)

    def _messages(self, session_id: str, messages: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]],
                                                                                         Entries, str | None]:
        validate_session_id(session_id)
        stored = [stamp(m) for m in messages]
        entries: Entries = [(str(m["id"]), encode(m, "message")) for m in stored]
        return stored, entries, next((t for t in map(title_from, stored) if t), None)

    def _read(self, session_id: str, part: str) -> list[dict[str, Any]]:
        """The whole list, fetching only what was appended since this process last read it."""
        key = self.key(session_id, part)
        cached = self._cache.get(session_id, part)
        touch = self._touch_due(session_id)
        epoch, first, start, raw = self._read_script(keys=self._script_keys(session_id), args=[
            key_position(part), cached.epoch, cached.first, cached.end, self.ttl_seconds if touch else 0,
            repr(time.time()), session_id, int(not self.cluster), part,
        ])
        first, start = int(first), int(start)
        new = _decode_entries(raw, key, offset=first + start)
        fresh = cached.extended(epoch=epoch or "", first=first, start=start, new=new)
        if epoch:  # sessions written by this store; anything else is read in full every time
            self._cache.put(session_id, part, fresh)
        if touch:
            self._index_in_cluster(session_id, only_existing=True)
        return visible(fresh)

    def _touch_commands(self, pipe: Any, session_id: str) -> None:
        for key in self.keys(session_id):
            pipe.expire(key, self.ttl_seconds)
        if not self.cluster:
            pipe.zadd(self.index_key, {session_id: time.time() + self.ttl_seconds}, xx=True)

    # -- messages ------------------------------------------------------------------------------------

    @translate
    def append_messages(self, session_id: str, *messages: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Store messages (stamped with id and ts when missing) and return the stored copies.

        An id already stored in this session is skipped, so a retried call never stores a message twice.
        """
        stored, entries, title = self._messages(session_id, messages)
        if entries:
            self._run_append(session_id, "messages", entries, title=title)
        return stored

    @translate
    def append(self, session_id: str, *messages: Mapping[str, Any]) -> int:
        """Store messages and return the new history length (after the per-session cap)."""
        stored, entries, title = self._messages(session_id, messages)
        if not entries:
            return int(self.client.llen(self.key(session_id, "messages")))
        return self._run_append(session_id, "messages", entries, title=title)[1]

    @translate
    def begin_turn(self, session_id: str, message: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        """Store the user message and take the next turn number in one atomic call.

        Numbers come from a counter on the server, so two tabs or two replicas never share one; a
        resent call (same message id) returns the number the first attempt took.
        """
        (stored,), entries, title = self._messages(session_id, [message])
        turn, _ = self._run_append(session_id, "messages", entries, title=title, begin=True)
        return stored, turn

    @translate
    def get_history(self, session_id: str) -> list[dict[str, Any]]:
        """Every stored message, oldest first (fetching only the new tail when this process has the rest)."""
        return self._read(session_id, "messages")

    @translate
    def clear_history(self, session_id: str) -> None:
        """Delete every key of the session and its index entry."""
        self._cache.forget(session_id)
        self.client.delete(*self.keys(session_id))
        self.client.zrem(self.index_key, session_id)

    @translate
    def exists(self, session_id: str) -> bool:
        return self.ttl(session_id) is not None

    @translate
    def ttl(self, session_id: str) -> int | None:
        """Seconds left before the session expires, or None when it does not exist."""
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys(session_id):
            pipe.ttl(key)
        left = [t for t in pipe.execute() if t is not None and t >= 0]
        return max(left) if left else None

    @translate
    def list_sessions(self) -> list[SessionSummary]:
        now = time.time()
        self.client.zremrangebyscore(self.index_key, "-inf", now)
        ids = [i for i in map(str, self.client.zrange(self.index_key, 0, -1)) if _valid(i)]
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

    @translate
    def append_turn(self, session_id: str, record: Mapping[str, Any]) -> int:
        """Store a turn record; one whose ``turn`` number is already stored is skipped (a retried write)."""
        validate_session_id(session_id)
        entry = encode(record, "turn record")
        return self._run_append(session_id, "turns", [(turn_key(record), entry)])[1]

    @translate
    def get_turns(self, session_id: str, start: int = 0, end: int | None = None) -> list[dict[str, Any]]:
        """Turn records ``[start:end]`` (Python slice positions in the stored list; negative from the end).

        The whole list is read incrementally like the history; a slice reads only its own range.
        """
        if start == 0 and end is None:
            return self._read(session_id, "turns")
        key = self.key(session_id, "turns")
        bounds = slice_bounds(start, end)
        if bounds is None:
            return []
        pipe = self.client.pipeline(transaction=True)
        pipe.lrange(key, *bounds)
        if self._touch_due(session_id):
            self._touch_commands(pipe, session_id)
        return [e for e in _decode_entries(pipe.execute()[0], key, offset=None) if e is not None]

    @translate
    def turn_count(self, session_id: str) -> int:
        return int(self.client.llen(self.key(session_id, "turns")))

    @translate
    def append_comparison(self, session_id: str, record: Mapping[str, Any]) -> int:
        validate_session_id(session_id)
        return self._run_append(session_id, "comparisons", [(None, encode(record, "comparison record"))])[1]

    @translate
    def get_comparisons(self, session_id: str) -> list[dict[str, Any]]:
        return self._read(session_id, "comparisons")

    @translate
    def get_meta(self, session_id: str) -> dict[str, str]:
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(self.key(session_id, "meta"))
        if self._touch_due(session_id):
            self._touch_commands(pipe, session_id)
        return dict(pipe.execute()[0])

    @translate
    def set_meta(self, session_id: str, **fields: Any) -> None:
        """Set meta fields (None deletes one); created_at and updated_at are kept by the store."""
        meta = self.key(session_id, "meta")
        now = time.time()
        pipe = self.client.pipeline(transaction=True)
        pipe.hsetnx(meta, "created_at", repr(now))
        pipe.hset(meta, "updated_at", repr(now))
        for name, value in fields.items():
            if value is None:
                pipe.hdel(meta, name)
            else:
                pipe.hset(meta, name, meta_value(value))
        for key in self.keys(session_id):
            pipe.expire(key, self.ttl_seconds)
        if not self.cluster:
            pipe.zadd(self.index_key, {session_id: now + self.ttl_seconds})
            pipe.expire(self.index_key, self.ttl_seconds)
        pipe.execute()
        self._touched_now(session_id)
        self._index_in_cluster(session_id, only_existing=False)

    @translate
    def import_session(
        self,
        session_id: str,
        *,
        messages: Sequence[Mapping[str, Any]],
        turns: Sequence[Mapping[str, Any]] = (),
        meta: Mapping[str, Any] | None = None,
        comparisons: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Write a whole session, replacing any with that id: all or nothing.

        Everything is validated first; then the lists are staged under temporary keys in the session's
        slot and renamed into place in one MULTI/EXEC (see redis_import.py), so a failure part-way
        leaves nothing listed and nothing half-written.
        """
        validate_session_id(session_id)
        plan = plan_import(messages=messages, turns=turns, meta=meta, comparisons=comparisons,
                           cap=self.max_messages, now=time.time())
        write_import(self, session_id, plan)
        self._cache.forget(session_id)
        self._touched_now(session_id)
        self._index_in_cluster(session_id, only_existing=False)

    @translate
    def ping(self) -> bool:
        return bool(self.client.ping())


def _decode_entries(raw: list[str], key: str, *, offset: int | None) -> list[Entry]:
    """Decode stored JSON; a corrupt entry becomes None (logged once, left in place for a person to see)."""
    entries: list[Entry] = []
    for position, item in enumerate(raw):
        value = decode_entry(item)
        if value is None:
            where = "" if offset is None else f" {offset + position}"
            log.warning("Skipping corrupt entry%s in %s: %.80r", where, key, item)
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

