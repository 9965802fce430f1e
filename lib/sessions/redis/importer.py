"""All-or-nothing import into Redis: stage under temporary keys, then rename into place in one MULTI/EXEC.

A 2,000-turn import is too big for one comfortable request, and a transaction that fails part-way
through EXEC (out of memory, say) does not roll back. So the lists are first pushed in chunks to
temporary keys that share the session's ``{S}`` hash slot (RENAME must stay in one slot in a cluster)
and expire on their own; only the final, small transaction touches the real keys and the listing index.
If anything fails before it, the temporary keys are deleted and the session is neither written nor listed.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Protocol

import redis

from lib.sessions.imports import Entries, ImportPlan

log = logging.getLogger(__name__)
CHUNK = 1_000  # entries per request while staging
STAGING_TTL = 3_600  # a crashed import's leftovers disappear by themselves
STAGED_LISTS = {"messages": "message_ids", "turns": "turn_ids", "comparisons": None}


class RedisStore(Protocol):
    """What an import needs of the store: its client, key layout and TTL (``lib.sessions.redis.store``)."""

    client: Any
    cluster: bool
    ttl_seconds: int
    index_key: str

    def key(self, session_id: str, part: str) -> str: ...

    def keys(self, session_id: str) -> list[str]: ...


def _stage_list(pipe: Any, key: str, ids_key: str | None, entries: Entries, ttl: int) -> None:
    for offset in range(0, len(entries), CHUNK):
        chunk = entries[offset: offset + CHUNK]
        pipe.rpush(key, *[entry for _, entry in chunk])
        scores = {k: offset + n for n, (k, _) in enumerate(chunk) if k is not None}
        if ids_key and scores:
            pipe.zadd(ids_key, scores)
        pipe.expire(key, ttl)
        if ids_key:
            pipe.expire(ids_key, ttl)
        pipe.execute()


def stage(store: RedisStore, session_id: str, plan: ImportPlan, staging: dict[str, str]) -> list[str]:
    """Push the plan's lists to the staging keys; returns the parts that now exist there."""
    ttl = min(store.ttl_seconds, STAGING_TTL)
    staged = []
    for part, ids_part in STAGED_LISTS.items():
        entries: Entries = getattr(plan, part)
        if not entries:
            continue
        ids_key = staging[ids_part] if ids_part else None
        _stage_list(store.client.pipeline(transaction=False), staging[part], ids_key, entries, ttl)
        staged.append(part)
        if ids_part and any(key is not None for key, _ in entries):
            staged.append(ids_part)
    return staged


def commit(store: RedisStore, session_id: str, plan: ImportPlan, staging: dict[str, str], staged: list[str]) -> None:
    """Replace the session with the staged lists plus meta and state, in one MULTI/EXEC."""
    now = time.time()
    keys = store.keys(session_id)
    pipe = store.client.pipeline(transaction=True)
    pipe.delete(*keys)
    for part in staged:
        pipe.rename(staging[part], store.key(session_id, part))
    pipe.hset(store.key(session_id, "meta"), mapping=dict[Any, Any](plan.meta))
    pipe.hset(store.key(session_id, "state"), mapping={"epoch": uuid.uuid4().hex, "turn_seq": plan.turn_seq})
    for key in keys:
        pipe.expire(key, store.ttl_seconds)
    if not store.cluster:
        pipe.zadd(store.index_key, {session_id: now + store.ttl_seconds})
        pipe.expire(store.index_key, store.ttl_seconds)
    pipe.execute()


def write_import(store: RedisStore, session_id: str, plan: ImportPlan) -> None:
    """Stage, then commit; on any failure remove the staging keys and re-raise (nothing was imported)."""
    token = uuid.uuid4().hex[:12]
    staging = {part: store.key(session_id, f"import:{token}:{part}")
               for part in ("messages", "turns", "comparisons", "message_ids", "turn_ids")}
    try:
        commit(store, session_id, plan, staging, stage(store, session_id, plan, staging))
    except BaseException:
        try:
            store.client.delete(*staging.values())
        except redis.RedisError as exc:  # they expire within STAGING_TTL anyway
            log.warning("Could not delete the staging keys of a failed import: %s", exc)
        raise
