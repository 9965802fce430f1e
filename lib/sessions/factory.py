"""Choose the store from settings: REDIS_URL, else the embedded Valkey, else memory with a notice."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lib.core import Settings, redact_url
from lib.sessions.base import SessionStore
from lib.sessions.embedded.server import EmbeddedUnavailable, embedded_server
from lib.sessions.memory import MemoryStore
from lib.sessions.redis.store import RedisStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreHandle:
    """The store plus what the sidebar says about it. ``kind``: embedded, redis, cluster or memory."""

    store: SessionStore
    kind: str
    label: str
    notice: str | None = None


def open_store(settings: Settings, *, mode: str | None = None) -> StoreHandle:
    """Open the store the settings ask for. ``mode="memory"`` forces a MemoryStore (tests, demos).

    An explicit REDIS_URL that can't be reached raises StoreUnavailable rather than falling back:
    silently keeping production sessions in one process's memory would lose them. An embedded server
    or socket owned by another user raises EmbeddedNotPrivate (a StoreUnavailable): never a fallback.
    """
    ttl, cap = settings.session_ttl, settings.max_messages
    if mode == "memory":
        return StoreHandle(MemoryStore(ttl=ttl, max_messages=cap), "memory", MemoryStore.label,
                           "HISTORY_LAB_STORE=memory: sessions live in this process only.")
    if settings.redis_url:
        label = redact_url(settings.redis_url)
        store = RedisStore(settings.redis_url, prefix=settings.key_prefix, cluster=settings.redis_cluster,
                           location=label, ttl=ttl, max_messages=cap)
        store.ping()
        return StoreHandle(store, "cluster" if settings.redis_cluster else "redis", label)
    try:
        server = embedded_server(settings.data_dir)
    except EmbeddedUnavailable as exc:
        log.warning("Embedded Valkey unavailable, using memory: %s", exc)
        notice = (f"The embedded Valkey server is not available here ({exc}). Sessions are kept in memory "
                  "and lost on restart; set REDIS_URL to use a Redis server.")
        return StoreHandle(MemoryStore(ttl=ttl, max_messages=cap), "memory", MemoryStore.label, notice)
    # server.client() checks who runs the server on every connection and brings a lost server back
    # (another app process on the same data dir may have stopped it, or it crashed): never permanent.
    # Its users have no server to start and no REDIS_URL to fix: the client restarts it on the next request.
    advice = f"The app restarts its embedded Valkey on the next request: retry in a moment (its log: {server.log_path})"
    store = RedisStore(server.client(), prefix=settings.key_prefix, location=f"embedded Valkey ({server.socket})",
                       ttl=ttl, max_messages=cap, unreachable_advice=advice)
    store.ping()
    return StoreHandle(store, "embedded", f"embedded Valkey, data in {settings.data_dir}")
