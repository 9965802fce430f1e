"""Services every page shares: settings, the session store, providers, and the session id in the URL.

- ``settings() -> Settings``: environment variables, then ``.streamlit/secrets.toml``; built once per
  distinct environment, not on every call (an idle rerun used to build it six times).
- ``store_handle() -> StoreHandle``: the session store, opened once per process (``st.cache_resource``).
  ``HISTORY_LAB_STORE=memory`` forces a MemoryStore (development and tests); otherwise ``REDIS_URL``
  or the embedded Valkey, as ``lib.sessions.open_store`` decides.
- ``provider_for(name, **options)``: a provider built once per name, settings and options.
- ``current_session_id()`` / ``set_session(sid)``: this browser session's conversation, mirrored in ``?session=``.

Session-state keys owned here start with ``hl_``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import streamlit as st

from lib import services as lib_services
from lib.core import Settings, markdown_literal
from lib.providers import Provider, ProviderInfo, list_providers
from lib.sessions import InvalidSessionId, StoreHandle, new_session_id, validate_session_id
from pages.ui.errors import error_boundary

log = logging.getLogger(__name__)

SESSION_KEY = "hl_session_id"
URL_SESSION_KEY = "hl_url_session"  # the id this app last wrote to ?session=
NOTICES_KEY = "hl_notices"
STORE_MODE_ENV = "HISTORY_LAB_STORE"

_settings_lock = threading.Lock()
_settings_cache: dict[tuple[Any, ...], Settings] = {}


def _secrets() -> dict[str, Any]:
    # load_if_toml_exists never raises, so a missing secrets.toml is simply "no secrets".
    with error_boundary(show=False):  # a broken secrets file must not take the app down
        return st.secrets.to_dict() if st.secrets.load_if_toml_exists() else {}
    log.warning("Could not read st.secrets; using environment variables only")
    return {}


def settings() -> Settings:
    """Settings from the environment, then st.secrets. Raises ConfigError for unusable values.

    Memoised on the environment and secrets themselves, so a changed variable (tests do this) still
    gives new Settings while an ordinary rerun reuses the ones it has.
    """
    secrets = _secrets()
    key = (tuple(sorted(os.environ.items())), repr(sorted(secrets.items())))
    with _settings_lock:
        cached = _settings_cache.get(key)
        if cached is None:
            if len(_settings_cache) > 16:  # environments only change in tests; keep the memo small
                _settings_cache.clear()
            cached = _settings_cache[key] = Settings.from_env(secrets=secrets)
    return cached


def _store_key(cfg: Settings) -> str:
    mode = os.environ.get(STORE_MODE_ENV, "").strip().lower()
    return "|".join(map(str, (mode, cfg.redis_url, cfg.redis_cluster, cfg.key_prefix, cfg.data_dir,
                              cfg.session_ttl, cfg.max_messages)))


@st.cache_resource(show_spinner="Opening the session store…")
def _open_store(_cfg: Settings, key: str, mode: str) -> StoreHandle:
    # `key` carries every setting that changes the store, so tests that change the environment get
    # a new store while the app keeps one per process.
    # lib.services holds the one store per process that the HTTP API (lib.api) uses too.
    return lib_services.store_handle(_cfg, mode=mode or None)


def store_handle() -> StoreHandle:
    """The StoreHandle (store, kind, label, notice) for this process."""
    cfg = settings()
    return _open_store(cfg, _store_key(cfg), os.environ.get(STORE_MODE_ENV, "").strip().lower())


@st.cache_resource(show_spinner=False)
def _build_provider(name: str, _cfg: Settings, key: int, options: tuple[tuple[str, Any], ...]) -> Provider:
    return lib_services.provider_for(name, _cfg, **dict(options))


def provider_for(name: str, **options: Any) -> Provider:
    """A provider built once per (name, settings, options); SDK clients are never built in pages."""
    cfg = settings()
    # hash(settings) covers the API keys too, so a new key gives a new client.
    return _build_provider(name, cfg, hash(cfg), tuple(sorted(options.items())))


@st.cache_resource(show_spinner=False)
def _provider_infos(_cfg: Settings, key: int) -> tuple[ProviderInfo, ...]:
    # Listing builds every provider; once per settings, not on every call of every rerun.
    return tuple(list_providers(_cfg))


def provider_infos() -> list[ProviderInfo]:
    cfg = settings()
    return list(_provider_infos(cfg, hash(cfg)))


def provider_info(name: str) -> ProviderInfo | None:
    return next((info for info in provider_infos() if info.name == name), None)


# ---------------------------------------------------------------- session id in the URL


def notice(kind: str, text: str) -> None:
    st.session_state.setdefault(NOTICES_KEY, []).append((kind, text))


def show_notices() -> None:
    """Show (once) the messages queued by callbacks and by the session-id check, as plain text: they quote
    error messages and the link's session id."""
    for kind, text in st.session_state.pop(NOTICES_KEY, []):
        getattr(st, kind)(markdown_literal(text))


def set_session(session_id: str) -> None:
    """Switch this browser session to ``session_id`` and mirror it in the URL."""
    session_id = validate_session_id(session_id)
    st.session_state[SESSION_KEY] = session_id
    st.session_state[URL_SESSION_KEY] = session_id
    st.query_params["session"] = session_id
    st.session_state.pop("sb_confirm_delete", None)


DELETED_KEY = "hl_deleted_sessions"  # session id -> when this browser tab deleted it (unix seconds)
MAX_DELETED = 50


def remember_deleted(session_id: str) -> None:
    """Note that this tab deleted ``session_id``: Back to its link then says "deleted", not "not found"."""
    deleted: dict[str, float] = st.session_state.setdefault(DELETED_KEY, {})
    deleted[session_id] = time.time()
    while len(deleted) > MAX_DELETED:  # bounded: the oldest first
        deleted.pop(next(iter(deleted)))


def deleted_at(session_id: str) -> float | None:
    """When this tab deleted ``session_id`` (None: it did not)."""
    return st.session_state.get(DELETED_KEY, {}).get(session_id)


def current_session_id() -> str:
    """The open conversation: the URL's ?session= on first load, then the one in session state."""
    url_value = st.query_params.get("session")
    known = st.session_state.get(SESSION_KEY)
    # The URL wins when it changed behind our back (a pasted link); otherwise our state wins, and the
    # URL is rewritten, because page switches may drop the query string.
    if url_value and url_value != st.session_state.get(URL_SESSION_KEY) and url_value != known:
        try:
            set_session(url_value)
            return url_value
        except InvalidSessionId as exc:
            notice("error", f"The link's session id is not valid ({exc}). Started a new chat instead.")
    if known is None:
        known = new_session_id()
    if url_value != known:
        set_session(known)
    st.session_state[SESSION_KEY] = known
    return known
