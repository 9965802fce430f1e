"""RedisStore: sessions in Redis or Valkey, standalone or clustered.

Keys (the ``{S}`` hash tag keeps one session in one cluster slot, so scripts and MULTI/EXEC work there):

    {prefix}:{S}:messages     LIST of JSON messages
    {prefix}:{S}:turns        LIST of JSON turn records
    {prefix}:{S}:comparisons  LIST of JSON comparison records
    {prefix}:{S}:meta         HASH (created_at, updated_at, title, system_prompt, ..., and the store's own
                              ``store:`` fields: epoch, turn counter, trimmed counts)
    {prefix}:{S}:ids          ZSET of stored message ids and turn numbers (a resent write stores nothing
                              twice; a resent begin_turn gets its number back)
    {prefix}:sessions         ZSET of session ids, score = expiry time (the listing index)

Every write is one atomic script (scripts.py), so two writers never overwrite each other and no key lives
without a TTL. A chat turn is two calls: ``open_turn`` reads, stores the user message and refreshes the TTL
of every session key; ``close_turn`` stores the reply and the turn record. Other writes refresh every key
too. Reads are incremental: a process keeps what it has read (cache.py) and fetches only the new tail.
Reads refresh the TTL at most once per ``touch_interval`` per session. The listing index joins the same
call, except in a cluster, where it lives in another slot and follows in a second request.
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
    STORE_FIELD_PREFIX,
    MetaChanged,
    OpenedTurn,
    SessionSummary,
    StoreError,
    check_limits,
    check_meta_names,
    decode_entry,
    encode,
    history_before,
    meta_value,
    slice_bounds,
    stamp,
    title_from,
    turn_key,
    validate_session_id,
)
from lib.sessions.cache import CachedList, Entry, ListCache, visible
from lib.sessions.imports import Entries, plan_import
from lib.sessions.redis.client import connect, translate
from lib.sessions.redis.importer import write_import
from lib.sessions.redis.listing import list_sessions
from lib.sessions.redis.scripts import LEGACY_PARTS, OPEN, READ, SESSION_PARTS, TTL, WRITE, open_args, write_args

log = logging.getLogger(__name__)
PARTS = SESSION_PARTS
ALL_PARTS = (*SESSION_PARTS, *LEGACY_PARTS)  # what a script is given, and what a clear deletes


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
        # this much, and a turn's reads cost no EXPIREs (its open_turn already refreshed every key).
        self.touch_interval = min(60.0, ttl / 10) if touch_interval is None else touch_interval
        # Ids kept in a session's index once the cap trims: every stored message and turn record, plus the
        # begin_turn window, all of them newer than anything trimmed.
        self.ids_kept = 2 * max_messages + BEGUN_WINDOW
        self._touched: dict[str, float] = {}
        self._touch_lock = threading.Lock()
        self._cache = ListCache()
        self._open_script = client.register_script(OPEN)
        self._write_script = client.register_script(WRITE)
        self._read_script = client.register_script(READ)
        self._ttl_script = client.register_script(TTL)

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
        """Every key a session may have, including those of the previous layout (migrated when seen)."""
        return [self.key(session_id, part) for part in ALL_PARTS]

    # -- internals -----------------------------------------------------------------------------------

    def _script_keys(self, session_id: str) -> list[str]:
        keys = self.keys(session_id)
        return keys if self.cluster else [*keys, self.index_key]

    def _common_args(self, session_id: str, now: float) -> list[Any]:
        return [self.ttl_seconds, self.max_messages, repr(now), session_id, int(not self.cluster), uuid.uuid4().hex]

    def _touch_due(self, session_id: str) -> bool:
        """True (and the interval restarts) when this read should refresh the session's TTL."""
        with self._touch_lock:
            due = time.monotonic() - self._touched.get(session_id, -1e18) >= self.touch_interval
        if due:
            self._touched_now(session_id)
        return due

    def _touched_now(self, session_id: str) -> None:
        """A write just refreshed every key's TTL, so the next read need not."""
        with self._touch_lock:
            if len(self._touched) > 10_000:  # a bound, not an LRU: forgetting only costs one extra refresh
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

    def _write(self, session_id: str, *, messages: Sequence[tuple[str | None, str]] = (),
               turns: Sequence[tuple[str | None, str]] = (), comparisons: Sequence[str] = (),
               meta: Mapping[str, Any] | None = None, title: str | None = None, full: bool = True,
               turn: int = 0) -> tuple[int, int, int]:
        """One atomic write (scripts.WRITE); returns the lengths of the lists written (-1 for the others).

        ``full`` refreshes every key's TTL; a turn's closing write passes False (open_turn just did).
        """
        fields = dict(meta or {})
        check_meta_names(fields)
        args = write_args(self._common_args(session_id, time.time()), full=full, turn=turn, keep=self.ids_kept,
                          title=title or "", messages=messages, turns=turns, comparisons=comparisons,
                          meta={name: None if value is None else meta_value(value) for name, value in fields.items()})
        *lengths, touched = self._write_script(keys=self._script_keys(session_id), args=args)
        if touched:
            self._touched_now(session_id)
            self._index_in_cluster(session_id, only_existing=False)
        return int(lengths[0]), int(lengths[1]), int(lengths[2])

    def _messages(self, session_id: str, messages: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]],
                                                                                         Entries, str | None]:
        validate_session_id(session_id)
        stored = [stamp(m) for m in messages]
        entries: Entries = [(str(m["id"]), encode(m, "message")) for m in stored]
        return stored, entries, next((t for t in map(title_from, stored) if t), None)

    def _read(self, session_id: str, part: str) -> list[dict[str, Any]]:
        """The whole list, fetching only what was appended since this process last read it."""
        cached = self._cache.get(session_id, part)
        touch = self._touch_due(session_id)
        epoch, first, start, raw = self._read_script(keys=self._script_keys(session_id), args=[
            part, cached.epoch, cached.first, cached.end, self.ttl_seconds if touch else 0, repr(time.time()),
            session_id, int(not self.cluster),
        ])
        if touch:
            self._index_in_cluster(session_id, only_existing=True)
        return self._cached(session_id, part, cached, epoch, int(first), int(start), raw)

    def _cached(self, session_id: str, part: str, cached: CachedList, epoch: str, first: int, start: int,
                raw: list[str]) -> list[dict[str, Any]]:
        """Merge what a script read into ``cached``, the copy whose end the script was given (another thread may
        have stored a newer one since: ``start`` is relative to this one); return the visible entries."""
        new = _decode_entries(raw, self.key(session_id, part), offset=first + start)
        fresh = cached.extended(epoch=epoch or "", first=first, start=start, new=new)
        if epoch:  # sessions written by this store; anything else is read in full every time
            self._cache.put(session_id, part, fresh)
        return visible(fresh)

    def _touch_commands(self, pipe: Any, session_id: str) -> None:
        for part in SESSION_PARTS:
            pipe.expire(self.key(session_id, part), self.ttl_seconds)
        if not self.cluster:
            pipe.zadd(self.index_key, {session_id: time.time() + self.ttl_seconds}, xx=True)

    def _read_command(self, session_id: str, command: str, key: str, *args: Any) -> Any:
        """One read command (a redis-py method name), joined by the TTL refresh in one transaction when one is due."""
        if not self._touch_due(session_id):
            return getattr(self.client, command)(key, *args)
        pipe = self.client.pipeline(transaction=True)
        getattr(pipe, command)(key, *args)
        self._touch_commands(pipe, session_id)
        result = pipe.execute()[0]
        self._index_in_cluster(session_id, only_existing=True)
        return result

    # -- a chat turn: two calls ----------------------------------------------------------------------

    @translate
    def open_turn(self, session_id: str, message: Mapping[str, Any], *, meta: Mapping[str, Any] | None = None,
                  newest_record: bool = False, expect: Mapping[str, str | None] | None = None) -> OpenedTurn:
        """Read the history (its new tail) and meta, store ``message`` with the next turn number, set ``meta``,
        and refresh the TTL of every session key: one atomic call.

        A resent call (same message id) stores nothing twice and gets the first attempt's number back.
        ``newest_record`` also returns the newest turn record (the cache-aware strategy's previous cut).
        ``expect``: meta values (None: absent) the caller decided on; if one differs (and is not the value this
        call sets: a resent call finds what its first attempt wrote), nothing is written and MetaChanged
        carries the meta as it is.
        """
        return self._open(session_id, message, meta=meta, newest_record=newest_record, read=True, expect=expect)

    def _open(self, session_id: str, message: Mapping[str, Any], *, meta: Mapping[str, Any] | None,
              newest_record: bool, read: bool, expect: Mapping[str, str | None] | None = None) -> OpenedTurn:
        """open_turn; without ``read`` the history is not fetched (``history`` is empty) and the cache not touched."""
        (stored,), ((message_id, entry),), title = self._messages(session_id, [message])
        fields = dict(meta or {})
        check_meta_names(fields)
        cached = self._cache.get(session_id, "messages")
        args = open_args(self._common_args(session_id, time.time()), known=(cached.epoch, cached.first, cached.end),
                         read=read, newest_record=newest_record, keep=self.ids_kept, title=title or "",
                         message=(str(message_id), entry),  # deleting a field is set_meta's job:
                         meta={k: meta_value(v) for k, v in fields.items() if v is not None}, expect=expect)
        epoch, first, start, raw, flat, turn, pushed, newest, pushed_len = self._open_script(
            keys=self._script_keys(session_id), args=args)
        if int(pushed) < 0:
            raise MetaChanged(_user_meta(flat), expect or {})
        self._touched_now(session_id)
        self._index_in_cluster(session_id, only_existing=False)
        history = self._cached(session_id, "messages", cached, epoch, int(first), int(start), raw) if read else []
        if read and pushed and int(start) + len(raw) == int(pushed_len) - 1:
            # We hold every entry before our message: the server's list is ours plus it, so the next turn
            # need not read it back (positions are absolute: ``first`` before any trim, as the read used).
            self._cache.append_own(session_id, "messages", epoch=epoch, end=int(first) + int(pushed_len) - 1,
                                   entry=decode_entry(entry))
        if not pushed:
            history = history_before(history, message_id)
        record = decode_entry(newest) if newest else None
        if newest and record is None:
            log.warning("Skipping corrupt entry in %s: %.80r", self.key(session_id, "turns"), newest)
        return OpenedTurn(message=stored, turn=int(turn), history=history, meta=_user_meta(flat),
                          newest_record=record, resent=not pushed)

    @translate
    def close_turn(self, session_id: str, *, turn: int, reply: Mapping[str, Any] | None,
                   record: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Store the reply (if any), the turn record and ``meta`` (None deletes a field): one atomic call.

        Safe to resend: the reply is deduplicated by id and the record by its turn number. The TTL is not
        refreshed again (open_turn did), except for a key this call creates.
        """
        stored, entries, _ = self._messages(session_id, [reply] if reply is not None else [])
        held = self._cache.get(session_id, "messages")
        length, _, _ = self._write(session_id, messages=entries,
                                   turns=[(turn_key(record), encode(record, "turn record"))], meta=meta, full=False,
                                   turn=turn)
        # The list is what we hold plus this reply when its length says exactly that and the cap trimmed
        # nothing (only a trim could hide another writer's entry behind an unchanged length).
        if entries and length == len(held.entries) + 1 < self.max_messages:
            self._cache.append_own(session_id, "messages", epoch=held.epoch, end=held.end,
                                   entry=decode_entry(entries[0][1]))
        return stored[0] if stored else None

    # -- messages ------------------------------------------------------------------------------------

    @translate
    def append_messages(self, session_id: str, *messages: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Store messages (stamped with id and ts when missing) and return the stored copies.

        An id already stored in this session is skipped, so a retried call never stores a message twice.
        """
        stored, entries, title = self._messages(session_id, messages)
        if entries:
            self._write(session_id, messages=entries, title=title)
        return stored

    @translate
    def append(self, session_id: str, *messages: Mapping[str, Any]) -> int:
        """Store messages and return the new history length (after the per-session cap)."""
        stored, entries, title = self._messages(session_id, messages)
        if not entries:
            return int(self.client.llen(self.key(session_id, "messages")))
        return self._write(session_id, messages=entries, title=title)[0]

    @translate
    def begin_turn(self, session_id: str, message: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        """Store the user message and take the next turn number in one atomic call.

        Numbers come from a counter on the server, so two tabs or two replicas never share one; a
        resent call (same message id) returns the number the first attempt took.
        """
        opened = self._open(session_id, message, meta=None, newest_record=False, read=False)
        return opened.message, opened.turn

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
        # Every key of a session shares one expiry, and every store write keeps meta: one TTL answers. The
        # script looks at the other keys for a session written some other way (raw RPUSH, say).
        left = int(self.client.ttl(self.key(session_id, "meta")))
        if left <= 0:
            left = int(self._ttl_script(keys=self.keys(session_id)[: len(SESSION_PARTS)]))
        return left if left >= 0 else None

    @translate
    def list_sessions(self) -> list[SessionSummary]:
        return list_sessions(self)

    # -- turns, comparisons, meta ------------------------------------------------------------------------

    @translate
    def append_turn(self, session_id: str, record: Mapping[str, Any]) -> int:
        """Store a turn record; one whose ``turn`` number is already stored is skipped (a retried write)."""
        validate_session_id(session_id)
        return self._write(session_id, turns=[(turn_key(record), encode(record, "turn record"))])[1]

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
        raw = self._read_command(session_id, "lrange", key, *bounds)
        return [e for e in _decode_entries(raw, key, offset=None) if e is not None]

    @translate
    def turn_count(self, session_id: str) -> int:
        return int(self.client.llen(self.key(session_id, "turns")))

    @translate
    def append_comparison(self, session_id: str, record: Mapping[str, Any]) -> int:
        validate_session_id(session_id)
        return self._write(session_id, comparisons=[encode(record, "comparison record")])[2]

    @translate
    def get_comparisons(self, session_id: str) -> list[dict[str, Any]]:
        return self._read(session_id, "comparisons")

    @translate
    def get_meta(self, session_id: str) -> dict[str, str]:
        """The session's meta fields (the store's own ``store:`` fields left out)."""
        flat = self._read_command(session_id, "hgetall", self.key(session_id, "meta"))
        return _user_meta(flat)

    @translate
    def set_meta(self, session_id: str, **fields: Any) -> None:
        """Set meta fields (None deletes one); created_at and updated_at are kept by the store."""
        validate_session_id(session_id)
        self._write(session_id, meta=fields)

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
        slot and renamed into place in one MULTI/EXEC (see importer.py), so a failure part-way
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


def _user_meta(flat: Any) -> dict[str, str]:
    """A meta hash as the caller sees it: HGETALL's answer (a dict, or a flat list from a script), minus the
    store's own fields."""
    pairs = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2], strict=True)
    return {str(name): str(value) for name, value in pairs if not str(name).startswith(STORE_FIELD_PREFIX)}


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
