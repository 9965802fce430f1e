"""Tolerant field readers for stored records: a value of the wrong type reads as missing, never raises.

Used by lib.core.records (turn records, reply metadata, usage) and by anything else that reads stored JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lib.core.secrets import mask_then_cut

# Bounds that keep a record small whatever a provider or the trimmer says.
MAX_PROBLEMS = 5
MAX_TEXT_CHARS = 500
MAX_REPORT_LINES = 10


def as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def as_mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def field_of(value: object, name: str) -> Any:
    """``name`` of a mapping (parsed JSON, a stored record) or an attribute of an object (a typed SDK object or
    record); None when it has none."""
    return value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)


def short_text(text: str | None) -> str | None:
    """``text`` as it is when short; a longer one masked before it is cut (a cut key would escape the mask)."""
    if text is None or len(text) <= MAX_TEXT_CHARS:
        return text
    return mask_then_cut(text, MAX_TEXT_CHARS)


def short_texts(value: object) -> tuple[str, ...]:
    """A bounded tuple of short strings from a stored list; anything else reads as empty."""
    if not isinstance(value, list):
        return ()
    return tuple(short_text(v) or "" for v in value[:MAX_PROBLEMS] if isinstance(v, str))


def report_lines_of(value: object) -> tuple[str, ...]:
    """A model's stored report (a list of short sentences), bounded; anything else reads as empty."""
    if not isinstance(value, list):
        return ()
    return tuple(short_text(v) or "" for v in value[:MAX_REPORT_LINES] if isinstance(v, str))


def compact(data: Mapping[str, Any]) -> dict[str, Any]:
    """Drop None and empty values: they are the defaults ``from_json`` restores."""
    return {k: v for k, v in data.items() if v is not None and v != [] and v != {}}
