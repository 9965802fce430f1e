"""Export a session as JSON, and import such a file as a new session.

An import is validated completely before anything is written, so a bad file never leaves half a session.
Exports carry no secrets: keys never reach the store, and key-like fields are scrubbed defensively.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from lib.records import import_turn
from lib.sessions.base import SessionStore, new_session_id, validate_session_id

FORMAT = "history-lab/session"
VERSION = 1
MAX_IMPORT_BYTES = 5_000_000
ROLES = {"system", "user", "assistant", "tool", "developer"}
SECRET_NAME = re.compile(r"(api[_-]?key|secret|password|authorization|token$)", re.IGNORECASE)
SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_-]{8,}|sk-ant-[A-Za-z0-9_-]{8,})")


class InvalidExport(ValueError):
    """The file is not a History Lab export this version can import; the message says what is wrong."""


def export_session(store: SessionStore, session_id: str) -> dict[str, Any]:
    """Everything stored for a session: messages, turn records, meta and comparisons."""
    session_id = validate_session_id(session_id)
    return scrub({
        "format": FORMAT,
        "version": VERSION,
        "exported_at": time.time(),
        "session_id": session_id,
        "meta": store.get_meta(session_id),
        "messages": store.get_history(session_id),
        "turns": store.get_turns(session_id),
        "comparisons": store.get_comparisons(session_id),
    })


def export_json(store: SessionStore, session_id: str) -> str:
    return json.dumps(export_session(store, session_id), ensure_ascii=False, indent=1)


def import_session(store: SessionStore, data: bytes | str, *, max_bytes: int = MAX_IMPORT_BYTES) -> str:
    """Validate an export and write it as a new session; return the new id. Raises InvalidExport."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > max_bytes:
        raise InvalidExport(f"The file is {size:,} bytes; the limit is {max_bytes:,}. Export a shorter session.")
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidExport(f"The file is not valid JSON ({exc}). Choose a file exported by History Lab.") from exc
    export = _validated(parsed)
    session_id = new_session_id()
    if export["messages"]:
        store.append(session_id, *export["messages"])
    # Typed and compact, whatever version wrote them; inline system prompts move to the meta, once each.
    system_fields: dict[str, str] = {}
    for raw in export["turns"]:
        record, fields = import_turn(raw, export["messages"])
        system_fields.update(fields)
        store.append_turn(session_id, record.to_json())
    for record in export["comparisons"]:
        store.append_comparison(session_id, record)
    meta = {**system_fields, **{k: v for k, v in export["meta"].items() if k not in ("created_at", "updated_at")}}
    store.set_meta(session_id, **meta, imported_from=str(export.get("session_id", "")), imported_at=time.time())
    return session_id


def _validated(parsed: Any) -> dict[str, Any]:
    if not isinstance(parsed, dict) or parsed.get("format") != FORMAT:
        raise InvalidExport(f"This is not a History Lab session export (expected \"format\": \"{FORMAT}\").")
    if parsed.get("version") != VERSION:
        raise InvalidExport(f"Export version {parsed.get('version')!r} is not supported; this app reads {VERSION}.")
    for name in ("messages", "turns", "comparisons"):
        if not isinstance(parsed.get(name, []), list):
            raise InvalidExport(f"\"{name}\" must be a list.")
    if not isinstance(parsed.get("meta", {}), dict):
        raise InvalidExport("\"meta\" must be an object.")
    for n, message in enumerate(parsed.get("messages", [])):
        _check_message(n, message)
    for name in ("turns", "comparisons"):
        if not all(isinstance(r, dict) for r in parsed.get(name, [])):
            raise InvalidExport(f"Every entry of \"{name}\" must be an object.")
    if not parsed.get("messages") and not parsed.get("turns"):
        raise InvalidExport("The export holds no messages; there is nothing to import.")
    return scrub({"messages": [], "turns": [], "comparisons": [], "meta": {}, **parsed})


def _check_message(n: int, message: Any) -> None:
    if not isinstance(message, dict):
        raise InvalidExport(f"Message {n} is not an object.")
    if message.get("role") not in ROLES:
        raise InvalidExport(f"Message {n} has role {message.get('role')!r}; expected one of {sorted(ROLES)}.")
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise InvalidExport(f"Message {n}: content must be text or a list of parts.")
    if "id" in message:
        try:
            validate_session_id(message["id"])  # same alphabet: ids go into nothing but JSON, but keep them tidy
        except ValueError as exc:
            raise InvalidExport(f"Message {n} has an invalid id {message['id']!r}.") from exc


def scrub(value: Any) -> Any:
    """A copy with key-like fields removed and key-like strings masked."""
    if isinstance(value, Mapping):
        return {k: scrub(v) for k, v in value.items() if not SECRET_NAME.search(str(k))}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return SECRET_VALUE.sub("[redacted key]", value)
    return value
