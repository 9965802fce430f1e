"""The services one app process shares: one session store and one client per provider configuration.

The pages (through ``pages.common``) and the HTTP API (``lib.api``) both get their store and providers
here, so a session written over HTTP is the same session the chat page reads, even with a MemoryStore,
and an SDK client (with its connection pool) is built once, not per request.

    handle = store_handle(settings)               # StoreHandle: store, kind, label, notice
    provider = provider_for("offline", settings)  # built once per (name, settings, options)
    st.App(..., lifespan=lifespan)                # at server shutdown: release the embedded Valkey
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator, Hashable
from typing import Any

from lib.core import Settings
from lib.providers import Provider, get_provider
from lib.sessions import StoreHandle, open_store, release_embedded

# ``memory`` forces a MemoryStore (development and tests); anything else lets open_store decide.
STORE_MODE_ENV = "HISTORY_LAB_STORE"

_lock = threading.Lock()
_stores: dict[str, StoreHandle] = {}
_providers: dict[Hashable, Provider] = {}


def store_mode() -> str | None:
    """``"memory"`` when HISTORY_LAB_STORE asks for it, else None (open_store chooses)."""
    return os.environ.get(STORE_MODE_ENV, "").strip().lower() or None


def store_key(settings: Settings, mode: str | None) -> str:
    """Every setting that changes which store is opened; a change (in tests) gives a new store."""
    return "|".join(map(str, (mode or "", settings.redis_url, settings.redis_cluster, settings.key_prefix,
                              settings.data_dir, settings.session_ttl, settings.max_messages)))


def store_handle(settings: Settings, *, mode: str | None = None) -> StoreHandle:
    """The process's store for these settings, opened on first use. Raises StoreError when unreachable
    (and tries again on the next call, so a Redis that comes back is picked up without a restart)."""
    mode = mode if mode is not None else store_mode()
    key = store_key(settings, mode)
    with _lock:
        handle = _stores.get(key)
        if handle is None:
            # Opening under the lock: two first requests must not start two embedded servers.
            handle = _stores[key] = open_store(settings, mode=mode)
        return handle


def provider_for(name: str, settings: Settings, **options: Any) -> Provider:
    """A provider built once per (name, settings, options). Raises ValueError for an unknown name."""
    # hash(settings) covers the API keys, so a new key gives a new client.
    key = (name, hash(settings), tuple(sorted(options.items())))
    with _lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _providers[key] = get_provider(name, settings, **options)
        return provider


@contextlib.asynccontextmanager
async def lifespan(_app: object) -> AsyncIterator[None]:
    """The web server's lifespan. Its shutdown (SIGTERM or Ctrl-C, once requests have drained) releases the
    embedded Valkey: atexit alone is not enough, since after a SIGTERM the server re-raises the signal and
    the process dies without running atexit handlers."""
    try:
        yield
    finally:
        release_embedded()
