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
from lib.sessions.redis.scripts import SESSION_PARTS

log = logging.getLogger(__name__)
CHUNK = 1_000  # entries per request while staging
STAGING_TTL = 3_600  # a crashed import's leftovers disappear by themselves
# The ids index member of an entry (see scripts.py): imported messages score 0, older than anything stored
# later; a turn record scores its number, as the store's own writes do.
ID_MEMBERS = {"messages": "m:", "turns": "t:", "comparisons": None}


class RedisStore(Protocol):
    """What an import needs of the store: its client, key layout and TTL (``lib.sessions.redis.store``)."""

    client: Any
    cluster: bool
    ttl_seconds: int
    index_key: str

    def key(self, session_id: str, part: str) -> str: ...

    def keys(self, session_id: str) -> list[str]: ...


def _stage_list(pipe: Any, key: str, ids_key: str, part: str, entries: Entries, ttl: int) -> bool:
    """Push one list in chunks; returns whether any of its entries went into the ids index."""
    member = ID_MEMBERS[part]
    indexed = False
    for offset in range(0, len(entries), CHUNK):
        chunk = entries[offset: offset + CHUNK]
        pipe.rpush(key, *[entry for _, entry in chunk])
        scores = {f"{member}{k}": (int(k) if part == "turns" else 0) for k, _ in chunk if k is not None} \
            if member else {}
        if scores:
            pipe.zadd(ids_key, scores)
            pipe.expire(ids_key, ttl)
            indexed = True
        pipe.expire(key, ttl)
        pipe.execute()
    return indexed


def stage(store: RedisStore, session_id: str, plan: ImportPlan, staging: dict[str, str]) -> list[str]:
    """Push the plan's lists to the staging keys; returns the parts that now exist there."""
    ttl = min(store.ttl_seconds, STAGING_TTL)
    staged = []
    for part in ID_MEMBERS:
        entries: Entries = getattr(plan, part)
        if not entries:
            continue
        if _stage_list(store.client.pipeline(transaction=False), staging[part], staging["ids"], part, entries, ttl):
            staged.append("ids")
        staged.append(part)
    return list(dict.fromkeys(staged))


def commit(store: RedisStore, session_id: str, plan: ImportPlan, staging: dict[str, str], staged: list[str]) -> None:
    """Replace the session (any keys of the previous layout too) with the staged lists plus meta, in one
    MULTI/EXEC."""
    now = time.time()
    keys = store.keys(session_id)
    own: dict[str, str | int] = {"store:epoch": uuid.uuid4().hex, "store:turn_seq": plan.turn_seq,
                                 **({"store:comparisons": "1"} if plan.comparisons else {})}
    pipe = store.client.pipeline(transaction=True)
    pipe.delete(*keys)
    for part in staged:
        pipe.rename(staging[part], store.key(session_id, part))
    pipe.hset(store.key(session_id, "meta"), mapping=dict[Any, Any]({**plan.meta, **own}))
    for part in SESSION_PARTS:
        pipe.expire(store.key(session_id, part), store.ttl_seconds)
    if not store.cluster:
        pipe.zadd(store.index_key, {session_id: now + store.ttl_seconds})
        pipe.expire(store.index_key, store.ttl_seconds)
    pipe.execute()


def write_import(store: RedisStore, session_id: str, plan: ImportPlan) -> None:
    """Stage, then commit; on any failure remove the staging keys and re-raise (nothing was imported)."""
    token = uuid.uuid4().hex[:12]
    staging = {part: store.key(session_id, f"import:{token}:{part}")
               for part in (*ID_MEMBERS, "ids")}
    try:
        commit(store, session_id, plan, staging, stage(store, session_id, plan, staging))
    except BaseException:
        try:
            store.client.delete(*staging.values())
        except redis.RedisError as exc:  # they expire within STAGING_TTL anyway
            log.warning("Could not delete the staging keys of a failed import: %s", exc)
        raise
