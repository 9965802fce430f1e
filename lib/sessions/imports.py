"""Checking and encoding a whole session before any of it is written (both stores' ``import_session``).

Everything that can be refused is refused here, before the first write, so an import is all or nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.sessions.base import InvalidMessage, check_meta_names, encode, meta_value, stamp, title_from, turn_key

Entries = list[tuple[str | None, str]]  # (deduplication key, JSON text)


@dataclass(frozen=True)
class ImportPlan:
    messages: Entries
    turns: Entries
    comparisons: Entries
    meta: dict[str, str]
    turn_seq: int  # where the session's turn counter continues from


def _unique(entries: Entries) -> Entries:
    """Drop later entries whose key was already seen, as a retried append would."""
    seen: set[str] = set()
    kept = []
    for key, entry in entries:
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        kept.append((key, entry))
    return kept


def _meta(meta: Mapping[str, Any] | None, messages: list[dict[str, Any]], now: float) -> dict[str, str]:
    if meta is not None and not isinstance(meta, Mapping):
        raise InvalidMessage(f"Session meta must be a mapping, got {type(meta).__name__}; nothing was written.")
    fields: dict[str, str] = {}
    check_meta_names(meta or {})
    for name, value in (meta or {}).items():
        if value is not None:
            fields[name] = meta_value(value)
    fields.setdefault("created_at", str(now))
    fields["updated_at"] = str(now)
    title = next((t for t in map(title_from, messages) if t), None)
    if title and "title" not in fields:
        fields["title"] = title
    return fields


def plan_import(
    *,
    messages: Sequence[Mapping[str, Any]],
    turns: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any] | None,
    comparisons: Sequence[Mapping[str, Any]],
    cap: int,
    now: float,
) -> ImportPlan:
    """Validate, stamp and encode a session; raise InvalidMessage before anything is written."""
    for name, items in (("messages", messages), ("turns", turns), ("comparisons", comparisons)):
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
            raise InvalidMessage(f"Imported {name} must be a list, got {type(items).__name__}; nothing was written.")
        if len(items) > cap:
            raise InvalidMessage(f"This session has {len(items):,} {name}, more than the store keeps per session "
                                 f"({cap:,}, SESSION_MAX_MESSAGES); nothing was written.")
    stamped = [stamp(m) for m in messages]
    planned_turns = _unique([(turn_key(r), encode(r, "turn record")) for r in turns])
    numbers = [int(key) for key, _ in planned_turns if key is not None]
    return ImportPlan(
        messages=_unique([(str(m["id"]), encode(m, "message")) for m in stamped]),
        turns=planned_turns,
        comparisons=[(None, encode(c, "comparison record")) for c in comparisons],
        meta=_meta(meta, stamped, now),
        turn_seq=max([*numbers, len(planned_turns)]),
    )
