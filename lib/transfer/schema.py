"""The strict shape of an import file, checked field by field before anything is written.

Stored data is read tolerantly (``TurnRecord.from_json`` reads a wrongly typed field as missing), but an
*import* is refused with a message that names the field, so a crafted or damaged file never becomes a
session that shows "?" everywhere. The field types are derived from the typed records themselves
(``TurnRecord``, ``ReplyMeta``, ``Usage``, the compare page's ``ColumnResult``), so a field added there is
checked here without a second list to keep in step. Unknown fields are allowed (a newer version may add
some); they are never read as anything but JSON.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from lib.core import ColumnResult, HistoryLabError, ReplyMeta, TurnRecord, Usage
from lib.sessions import SESSION_ID_PATTERN

ROLES = ("system", "user", "assistant", "tool", "developer")
# Meta fields the store writes itself on import; a file's values for them are not kept.
STORE_META = ("created_at", "updated_at")

Checker = Callable[[object, str], None]


class InvalidExport(HistoryLabError, ValueError):
    """The file is not a History Lab export this version can import; the message says what is wrong."""


def describe(value: object) -> str:
    """'a list', 'the text \"many\"', 'true' ... for error messages."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:29] + "…"
        return f"the text {shown!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return {"dict": "an object", "list": "a list"}.get(type(value).__name__, type(value).__name__)


def fail(where: str, value: object, expected: str) -> typing.NoReturn:
    raise InvalidExport(f"{where} is {describe(value)}; expected {expected}. Nothing was imported.")


def scalar(test: Callable[[object], bool], expected: str) -> Checker:
    def check(value: object, where: str) -> None:
        if not test(value):
            fail(where, value, expected)
    return check


INT = scalar(lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number")
NUMBER = scalar(lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v), "a number")
TEXT = scalar(lambda v: isinstance(v, str), "text")
BOOL = scalar(lambda v: isinstance(v, bool), "true or false")
ANY_OBJECT = scalar(lambda v: isinstance(v, dict), "an object")
ID = scalar(lambda v: isinstance(v, str) and SESSION_ID_PATTERN.fullmatch(v) is not None,
            "an id of 1 to 128 letters, digits, '_' or '-'")


def list_of(item: Checker) -> Checker:
    def check(value: object, where: str) -> None:
        if not isinstance(value, list):
            fail(where, value, "a list")
        for n, element in enumerate(value):
            item(element, f"{where}[{n}]")
    return check


def obj(schema: Mapping[str, Checker]) -> Checker:
    """An object whose known fields (when present and not null) pass their checks."""
    def check(value: object, where: str) -> None:
        if not isinstance(value, dict):
            fail(where, value, "an object")
        for name, field_check in schema.items():
            if value.get(name) is not None:
                field_check(value[name], f"{where}.{name}")
    return check


def _pair(value: object, where: str) -> None:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        fail(where, value, "a pair of message ids")


def _from_type(tp: Any) -> Checker:
    """The checker for one annotated dataclass field type (None is always allowed by ``obj``)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if (isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union) and len(args) == 1:
        return _from_type(args[0])
    origin = typing.get_origin(tp) or tp
    simple: dict[Any, Checker] = {int: INT, float: NUMBER, str: TEXT, bool: BOOL, dict: ANY_OBJECT,
                                  Mapping: ANY_OBJECT}
    if origin in simple:
        return simple[origin]
    if origin is tuple and args == [str, str]:
        return _pair
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis or origin is list and len(args) == 1:
        return list_of(_from_type(args[0]))
    if tp in _NESTED:
        return _NESTED[tp]
    # A type this module does not know yet: accept any JSON rather than break the app at import time;
    # tests/test_transfer.py fails while UNCHECKED is not empty.
    UNCHECKED.append(repr(tp))
    return lambda value, where: None


_NESTED: dict[Any, Checker] = {}  # dataclasses nested in records, by class
UNCHECKED: list[str] = []  # field types _from_type could not check (should stay empty)


def schema_of(cls: type, *, skip: tuple[str, ...] = (), **overrides: Checker) -> dict[str, Checker]:
    hints = typing.get_type_hints(cls)
    schema = {f.name: _from_type(hints[f.name]) for f in fields(cls) if f.name not in skip}
    return {**schema, **overrides}


USAGE = obj(schema_of(Usage, prompt_total=INT))
_NESTED[Usage] = USAGE


def _scalars(value: object, where: str) -> None:
    """An object of plain values (a record's adapter options: text, whole numbers, true/false)."""
    if not isinstance(value, dict):
        fail(where, value, "an object")
    for name, item in value.items():
        if not isinstance(item, str | int | bool):
            fail(f"{where}.{name}", item, "text, a whole number or true/false")


TURN = obj(schema_of(TurnRecord, skip=("options",), usage=USAGE, options=_scalars,
                     # written by earlier versions; TurnRecord.from_json migrates them
                     sent_ids=list_of(TEXT), dropped_ids=list_of(TEXT),
                     provider_input_tokens=INT, provider_output_tokens=INT))
REPLY_META = obj(schema_of(ReplyMeta, skip=("ttft", "total"), usage=USAGE,
                           timings=obj({"ttft": NUMBER, "total": NUMBER})))
COLUMN = obj(schema_of(ColumnResult, usage=USAGE, request=ANY_OBJECT))
COMPARISON = obj({
    "id": TEXT, "ts": NUMBER, "new_message": TEXT, "system_prompt": TEXT, "strategy": TEXT, "budget": INT,
    "configs": list_of(obj({"provider": TEXT, "model": TEXT, "options": ANY_OBJECT})),
    "columns": list_of(COLUMN),
})
_PART = ANY_OBJECT
MESSAGE = obj({
    "id": ID, "ts": NUMBER, "name": TEXT, "tool_call_id": TEXT, "tool_calls": list_of(ANY_OBJECT),
    "meta": REPLY_META,
})


def check_message(message: object, where: str) -> None:
    """A message: a known role, text or a list of parts as content, and typed optional fields."""
    MESSAGE(message, where)
    assert isinstance(message, dict)  # MESSAGE refused anything else
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        fail(f"{where}.role", role, f"one of {', '.join(ROLES)}")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        list_of(_PART)(content, f"{where}.content")


def check_meta(meta: object) -> dict[str, str | int | float | bool]:
    """Session meta: text names and plain values (the store keeps a hash of strings)."""
    if not isinstance(meta, dict):
        fail("meta", meta, "an object")
    kept: dict[str, str | int | float | bool] = {}
    for name, value in meta.items():
        if not name:
            raise InvalidExport("meta has a field with an empty name. Nothing was imported.")
        if value is None or name in STORE_META:
            continue
        if isinstance(value, dict | list):
            fail(f"meta.{name}", value, "text, a number or true/false")
        kept[name] = value
    return kept
