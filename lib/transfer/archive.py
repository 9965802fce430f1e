"""Export a session as JSON, and import such a file as a new session.

An import is all or nothing: the file is parsed with bounds (size, nesting depth, no NaN/Infinity), every
field of every message, turn record, comparison and the meta is checked against the typed records
(``lib.transfer.schema``), and only then is the whole session written by the store's ``import_session``
in one transaction, so a bad file or a failing server never leaves half a session listed.

An export carries no secret: key-like fields are dropped, and every string in it, field names included,
goes through ``lib.core.secrets.mask_secrets`` (every configured key and password, whatever its shape).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Any

from lib.core import TurnRecord, import_turn, mask_secrets
from lib.sessions import InvalidMessage, SessionStore, new_session_id, validate_session_id
from lib.transfer.schema import COMPARISON, TURN, InvalidExport, check_message, check_meta, fail

__all__ = ["FORMAT", "MAX_DEPTH", "MAX_IMPORT_BYTES", "VERSION", "InvalidExport", "export_json", "export_session",
           "import_session", "parse_export", "scrub"]

FORMAT = "history-lab/session"
VERSION = 1
MAX_IMPORT_BYTES = 20_000_000
# A real export nests about a dozen levels (a comparison's request body is the deepest); json.loads
# recurses per level, so a file nested 100,000 deep would raise RecursionError instead of a clear refusal.
MAX_DEPTH = 64
SECRET_NAME = re.compile(r"(api[_-]?key|secret|password|authorization|token$)", re.IGNORECASE)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


@dataclass(frozen=True)
class ParsedExport:
    """A checked export, ready for ``store.import_session``."""

    messages: list[dict[str, Any]]
    turns: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]
    meta: dict[str, Any]
    source_id: str | None


# -- export ---------------------------------------------------------------------------------------------------


def export_session(store: SessionStore, session_id: str) -> dict[str, Any]:
    """Everything stored for a session: messages, turn records, meta and comparisons; secrets masked."""
    session_id = validate_session_id(session_id)
    exported: dict[str, Any] = scrub({
        "format": FORMAT,
        "version": VERSION,
        "exported_at": time.time(),
        "session_id": session_id,
        "meta": store.get_meta(session_id),
        "messages": store.get_history(session_id),
        "turns": store.get_turns(session_id),
        "comparisons": store.get_comparisons(session_id),
    })
    return exported


def export_json(store: SessionStore, session_id: str) -> str:
    return json.dumps(export_session(store, session_id), ensure_ascii=False, indent=1, allow_nan=False)


def scrub(value: Any) -> Any:
    """A plain-JSON copy with key-like fields removed, every string masked (``mask_secrets``) and numbers
    that JSON cannot hold (NaN, infinities, which only a hand-written store entry can contain) as null."""
    if isinstance(value, Mapping):
        return {mask_secrets(str(k)): scrub(v) for k, v in value.items() if not SECRET_NAME.search(str(k))}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- import ---------------------------------------------------------------------------------------------------


def import_session(store: SessionStore, data: bytes | str, *, max_bytes: int = MAX_IMPORT_BYTES) -> str:
    """Check an export and write it as a new session in one transaction; return the new id.

    Raises InvalidExport, with nothing written, for any file this version cannot import whole.
    """
    parsed = parse_export(data, max_bytes=max_bytes, max_messages=store.max_messages)
    meta = {**parsed.meta, "imported_at": time.time()}
    if parsed.source_id:
        meta["imported_from"] = parsed.source_id
    session_id = new_session_id()
    try:
        store.import_session(session_id, messages=parsed.messages, turns=parsed.turns, meta=meta,
                             comparisons=parsed.comparisons)
    except InvalidMessage as exc:  # the store's own last check; nothing was written
        raise InvalidExport(str(exc)) from exc
    return session_id


def parse_export(data: bytes | str, *, max_bytes: int = MAX_IMPORT_BYTES, max_messages: int) -> ParsedExport:
    """The checked content of an export file, or InvalidExport saying what is wrong."""
    text = _text(data, max_bytes)
    _check_depth(text)
    try:
        parsed = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except InvalidExport:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidExport(f"The file is not valid JSON ({exc}). Choose a file exported by History Lab.") from None
    return _checked(parsed, max_messages)


def _text(data: bytes | str, max_bytes: int) -> str:
    size = len(data.encode() if isinstance(data, str) else data)
    if size > max_bytes:
        raise InvalidExport(f"The file is {size:,} bytes; the limit is {max_bytes:,}. Export a shorter session.")
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidExport(f"The file is not UTF-8 text ({exc.reason} at byte {exc.start}). "
                            "Choose a JSON file exported by History Lab.") from None


def _check_depth(text: str) -> None:
    """Refuse deep nesting before json.loads recurses into it (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    steps = (1 if b in "[{" else -1 for b in brackets)
    deepest = max(accumulate(steps, initial=0))
    if deepest > MAX_DEPTH:
        raise InvalidExport(f"The file nests {deepest:,} levels deep; an export has at most {MAX_DEPTH}. "
                            "Choose a file exported by History Lab.")


def _refuse_constant(name: str) -> float:
    raise InvalidExport(f"The file contains {name}, which is not a JSON number. Nothing was imported.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as infinity
        raise InvalidExport(f"The file contains the number {text[:20]}, too large to keep. Nothing was imported.")
    return value


def _checked(parsed: Any, max_messages: int) -> ParsedExport:
    if not isinstance(parsed, dict) or parsed.get("format") != FORMAT:
        raise InvalidExport(f"This is not a History Lab session export (expected \"format\": \"{FORMAT}\").")
    version = parsed.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version != VERSION:
        raise InvalidExport(f"Export version {json.dumps(version)} is not supported; this app reads version "
                            f"{VERSION} (a whole number).")
    lists = {name: parsed.get(name, []) for name in ("messages", "turns", "comparisons")}
    for name, items in lists.items():
        if not isinstance(items, list):
            fail(name, items, "a list")
        if len(items) > max_messages:
            raise InvalidExport(
                f"The file holds {len(items):,} {name}; this store keeps at most {max_messages:,} per session "
                "(SESSION_MAX_MESSAGES). Nothing was imported: raise SESSION_MAX_MESSAGES or export a shorter "
                "session.")
    if not lists["messages"] and not lists["turns"]:
        raise InvalidExport("The export holds no messages; there is nothing to import.")
    source = parsed.get("session_id")
    if source is not None:
        try:
            validate_session_id(source)
        except ValueError:
            fail("session_id", source, "a session id")
    messages = _messages(lists["messages"])
    for n, comparison in enumerate(lists["comparisons"]):
        COMPARISON(comparison, f"comparisons[{n}]")
    meta = check_meta(parsed.get("meta", {}))
    turns, system_fields = _turns(lists["turns"], messages)
    return ParsedExport(messages=scrub(messages), turns=turns, comparisons=scrub(lists["comparisons"]),
                        meta=scrub({**meta, **system_fields}), source_id=source)


def _messages(raw: list[Any]) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    for n, message in enumerate(raw):
        check_message(message, f"messages[{n}]")
        message_id = message.get("id")
        if message_id is not None:
            if message_id in seen:
                raise InvalidExport(f"messages[{n}] repeats the id {message_id!r} of messages[{seen[message_id]}]. "
                                    "Nothing was imported.")
            seen[message_id] = n
    return raw


def _turns(raw: list[Any], messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Typed, compact records (whatever version wrote them), and the meta fields their system prompts need."""
    records: list[TurnRecord] = []
    system_fields: dict[str, str] = {}
    for n, record in enumerate(raw):
        TURN(record, f"turns[{n}]")
        typed, fields = import_turn(record, messages)
        records.append(typed)
        system_fields.update(fields)
    numbers = [r.turn for r in records]
    if None in numbers or len(set(numbers)) != len(numbers):
        # Sessions from before turn numbers were atomic can repeat a number; the store keys records by it.
        records = [replace(r, turn=n) for n, r in enumerate(records, start=1)]
    return [r.to_json() for r in records], system_fields
