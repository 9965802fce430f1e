"""Session stores: where conversation history lives between requests.

from lib.sessions import RedisStore
store = RedisStore("redis://localhost:6379/0", ttl=3600)
store.append(session_id, {"role": "user", "content": "Hi"})
store.get_history(session_id)
message, turn = store.begin_turn(session_id, {"role": "user", "content": "Next"})  # atomic turn number
opened = store.open_turn(session_id, user_message)   # a chat turn: read + store + number, one call
store.close_turn(session_id, turn=opened.turn, reply=reply, record=record)   # reply + record, one call
"""

from __future__ import annotations

from lib.sessions.base import (
    SESSION_ID_PATTERN,
    InvalidMessage,
    InvalidSessionId,
    MetaChanged,
    OpenedTurn,
    SessionStore,
    SessionSummary,
    StoredDict,
    StoreError,
    StoreUnavailable,
    new_session_id,
    stamp,
    validate_session_id,
)
from lib.sessions.embedded.private import EmbeddedNotPrivate
from lib.sessions.embedded.server import (
    MAX_SOCKET_PATH,
    EmbeddedExiting,
    EmbeddedUnavailable,
    EmbeddedValkey,
    embedded_server,
    release_embedded,
    socket_path_for,
    valkey_binary,
)
from lib.sessions.factory import StoreHandle, open_store
from lib.sessions.key_view import (
    projected_writes,
    seed_commands,
    seed_json,
    session_keys,
    stored_values,
    writes_per_turn,
)
from lib.sessions.memory import MemoryStore
from lib.sessions.redis.client import translate
from lib.sessions.redis.store import RedisStore

__all__ = [
    "MAX_SOCKET_PATH", "SESSION_ID_PATTERN", "EmbeddedExiting", "EmbeddedNotPrivate", "EmbeddedUnavailable",
    "EmbeddedValkey", "InvalidMessage", "InvalidSessionId", "MemoryStore", "MetaChanged", "OpenedTurn", "RedisStore",
    "SessionStore",
    "SessionSummary", "StoreError", "StoreHandle", "StoreUnavailable", "StoredDict", "embedded_server",
    "new_session_id", "open_store", "release_embedded", "socket_path_for", "stamp", "translate",
    "validate_session_id", "valkey_binary",
    "projected_writes",
    "seed_commands",
    "seed_json",
    "session_keys",
    "stored_values",
    "writes_per_turn",
]
