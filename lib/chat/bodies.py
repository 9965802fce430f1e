"""The request body of a turn: built by the provider adapter that sent it, and only by it.

    shown = turn_body(record, history, meta, summary=summary) # TurnBody: the body sent, or why there is none
    shown.body, shown.text, shown.missing
    options = record_options(reply.options)                   # what a turn record keeps of the adapter options

A turn record keeps no body (a record has a bounded size): it keeps the id ranges it sent, the system prompt's
hash, the summary's id and the adapter options. ``turn_body`` puts the same messages back in the same order
and hands them to ``lib.providers.request_body``, the very ``build_request`` that built the body on the wire,
so the chat, the timeline, the inspector and the API show one body: Anthropic's top-level ``system`` and
``cache_control``, the Responses ``input``/``instructions``/``previous_response_id``, Chat Completions'
``max_completion_tokens``. A turn that made no request (over the budget, no key) has no body at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lib.chat.summary import META_SUMMARY, SUMMARY_VERSION_PREFIX
from lib.context import Summary, pretty
from lib.core import (
    DEMO_PROVIDER,
    Message,
    ToolDef,
    TurnRecord,
    id_positions,
    read_turns,
    resolve_ranges,
    tools_from_meta,
    wire_message,
    wire_payload,
)
from lib.core.records import OptionFields
from lib.providers import ProviderOptions, request_body
from lib.sessions import SessionStore

__all__ = ["TurnBody", "provider_options", "read_turn_body", "record_options", "summary_named", "turn_body",
           "turn_payload", "wire_payload"]



@dataclass(frozen=True)
class TurnBody:
    """The body one turn sent, rebuilt by its adapter; ``body`` is None when there is none to show.

    ``missing``: parts that could not be put back (a system prompt or summary no longer stored, messages
    the store's cap removed): the body is then partial, and a page says so beside it. ``note``: why there is
    no body (no request was made, an unknown provider).
    """

    body: dict[str, Any] | None
    missing: tuple[str, ...] = ()
    note: str = ""

    @property
    def complete(self) -> bool:
        return self.body is not None and not self.missing

    @property
    def text(self) -> str:
        """The body as indented JSON, keys in the order sent, any configured secret masked (as Compare shows it)."""
        return pretty(self.body) if self.body is not None else ""


def turn_payload(record: TurnRecord, history: Sequence[Message], meta: Mapping[str, str], *,
                 summary: Summary | None = None,
                 positions: Mapping[str, int] | None = None) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The messages the turn handed its adapter, in their order (system prompt, summary, stored messages),
    and what could not be put back."""
    positions = id_positions(history) if positions is None else positions
    messages: list[dict[str, Any]] = []
    missing: list[str] = []
    system = record.system_text(meta)
    if record.system_sent and system is None:
        missing.append("the system prompt is no longer stored")
    elif system is not None:
        messages.append({"role": "system", "content": system})
    stored = 0
    for first, last in record.sent:
        if record.summary_id and first == last == record.summary_id:
            if summary is None:
                missing.append(f"the summary {record.summary_id} is no longer stored")
            else:
                messages.append(wire_message(summary.message()))
            continue
        ids = resolve_ranges([(first, last)], history, positions)
        messages += [wire_message(history[positions[i]]) for i in ids]
        stored += len(ids)
    expected = record.sent_count - int(record.system_sent) - int(bool(record.summary_id))
    if expected > stored:
        lost = expected - stored
        missing.append(f"{lost} sent message{'s' * (lost != 1)} {'are' if lost != 1 else 'is'} no longer in the "
                       "stored history (the store keeps a capped number of messages)")
    return messages, tuple(missing)


def record_options(options: ProviderOptions) -> OptionFields:
    """What a turn record keeps of the options a body was built with: the body-shaping fields, without the
    server ids (the record has fields of its own for them)."""
    body = options.body_fields()
    return tuple((k, v) for k, v in body.items() if k not in ("previous_response_id", "conversation_id"))


def provider_options(record: TurnRecord, *, tools: tuple[ToolDef, ...] = ()) -> ProviderOptions:
    """The options the turn's body was built with (names this version does not know are ignored), and the
    tool definitions it sent (a record keeps their hash; the set is kept once in the session meta)."""
    stored = ProviderOptions.from_body_fields(dict(record.options))
    return replace(stored, previous_response_id=record.previous_response_id,
                   conversation_id=record.conversation_id, tools=tools)


def summary_named(meta: Mapping[str, str], summary_id: str) -> Summary | None:
    """The stored summary a record names: every version is kept in the session meta under ``summary:<id>``
    (lib.chat_summary), the current one under ``summary``."""
    for field in (SUMMARY_VERSION_PREFIX + summary_id, META_SUMMARY):
        try:
            summary = Summary.from_json(json.loads(meta.get(field) or "null"))
        except ValueError:
            continue
        if summary is not None and summary.id == summary_id:
            return summary
    return None


def turn_body(record: TurnRecord, history: Sequence[Message], meta: Mapping[str, str], *,
              summary: Summary | None = None, positions: Mapping[str, int] | None = None) -> TurnBody:
    """The request body of a turn, rebuilt from its record through its provider's adapter.

    ``summary``: the summary the record names, when the caller has it (else it is read from ``meta``)."""
    if record.not_sent:
        return TurnBody(None, note=f"No request was made in turn {record.turn}, so there is no body: "
                                   f"{record.error or 'it was refused before sending'}")
    if record.provider == DEMO_PROVIDER:
        return TurnBody(None, note="The bundled demo conversation was never sent to a provider, so no request body "
                                   "exists; its payloads are what the trimmer would send.")
    if not record.provider or not record.model:
        return TurnBody(None, note="This turn record names no provider or model, so its body cannot be rebuilt.")
    if record.summary_id and summary is None:
        summary = summary_named(meta, record.summary_id)
    messages, missing = turn_payload(record, history, meta, summary=summary, positions=positions)
    if not record.options_kept:
        missing = (*missing, "this record was written before records kept the adapter options, so options such as "
                             "prompt caching (cache_control), truncation or server compaction may be missing")
    tools = tools_from_meta(meta, record.tools_hash) if record.tools_hash else ()
    if tools is None:
        missing = (*missing, "the tool definitions are no longer stored")
    if record.max_tokens is None:
        missing = (*missing, "the reply budget (max tokens) is not in this old record; 1024 is shown")
    try:
        body = request_body(record.provider, messages, model=record.model, max_tokens=record.max_tokens or 1024,
                            options=provider_options(record, tools=tools or ()))
    except ValueError as exc:
        return TurnBody(None, note=f"The body cannot be rebuilt: {exc}")
    return TurnBody(body, missing)


def read_turn_body(store: SessionStore, session_id: str, turn: int) -> TurnBody | None:
    """The body turn ``turn`` of a stored session sent (None: the session has no such turn), for the API."""
    record = next((r for r in read_turns(store.get_turns(session_id)) if r.turn == turn), None)
    if record is None:
        return None
    return turn_body(record, store.get_history(session_id), store.get_meta(session_id))
