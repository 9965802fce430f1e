"""Typed turn records and reply metadata: what is stored per turn, compact, and read without ever raising.

A ``TurnRecord`` says what one request sent and dropped as a few inclusive id *ranges* over the stored
history (lib.core.ranges), never as full id lists: a record has the same size at turn 1 and turn 1,000.
The system prompt is stored once per distinct text in the session meta, under ``system:<hash>``; a record
keeps only the hash. With the adapter options it keeps (``options``), that is enough to rebuild the exact
request body through the adapter that sent it (lib.chat.bodies).

``from_json`` accepts anything a store, an old version or an import file may hold: a field of the wrong
type reads as missing. Records written before ranges existed (``sent_ids`` / ``dropped_ids`` lists) are
migrated on read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from lib.core.fields import (  # re-exported: pages read stored figures with them
    MAX_PROBLEMS,
    as_bool,
    as_float,
    as_int,
    as_mapping,
    as_str,
    compact,
    report_lines_of,
    short_text,
    short_texts,
)
from lib.core.messages import Message
from lib.core.pricing import Price
from lib.core.pricing import priced_as as price_basis
from lib.core.pricing import usage_cost as pricing_usage_cost
from lib.core.ranges import IdRange, id_positions, id_ranges, legacy_ids, ranges_from_json, resolve_ranges
from lib.core.usage import Usage

# Session meta field that holds a system prompt's text, keyed by its hash (see ``system_meta_field``).
SYSTEM_META_PREFIX = "system:"


# -- usage and reply metadata ------------------------------------------------------------------------------


# Usage is stored as the providers report it (one dataclass, so the two can never drift apart).
UsageRecord = Usage


def usage_from_json(obj: object) -> Usage | None:
    """A stored usage object, with every wrongly typed figure read as missing."""
    if not isinstance(obj, Mapping):
        return None
    cache_in_input = as_bool(obj.get("cache_in_input"))
    cache_reported = as_bool(obj.get("cache_reported"))
    return Usage(
        input_tokens=as_int(obj.get("input_tokens")),
        output_tokens=as_int(obj.get("output_tokens")),
        cache_read_tokens=as_int(obj.get("cache_read_tokens")) or 0,
        cache_write_tokens=as_int(obj.get("cache_write_tokens")) or 0,
        cache_in_input=True if cache_in_input is None else cache_in_input,
        cache_write_5m=as_int(obj.get("cache_write_5m")),
        cache_write_1h=as_int(obj.get("cache_write_1h")),
        simulated=as_bool(obj.get("simulated")) or False,
        diagnostics=short_text(as_str(obj.get("diagnostics"))),
        explicit_cache_tokens=as_int(obj.get("explicit_cache_tokens")) or 0,
        explicit_cache_hours=max(0.0, as_float(obj.get("explicit_cache_hours")) or 0.0),
        reasoning_tokens=as_int(obj.get("reasoning_tokens")),
        cache_write_30m=as_int(obj.get("cache_write_30m")),
        cache_write_12h=as_int(obj.get("cache_write_12h")),
        cache_reported=True if cache_reported is None else cache_reported,
        cache_miss=short_text(as_str(obj.get("cache_miss"))),
    )


def usage_to_json(usage: Usage) -> dict[str, Any]:
    """The stored form: the provider's own figures, then the four numbers derived from them.

    The derived fields (``uncached_input_tokens``, ``total_input_tokens``, ``cache_write_ttl``, ``source``)
    are for readers of the raw JSON (the HTTP API, exports); ``usage_from_json`` recomputes them.
    """
    always = ("input_tokens", "output_tokens", "cache_in_input", "cache_read_tokens", "cache_write_tokens")
    defaults = {f.name: f.default for f in fields(Usage)}
    # Defaults are left out (``usage_from_json`` restores them), so a record stays small.
    data = {k: v for k, v in asdict(usage).items() if k in always or (v is not None and v != defaults.get(k))}
    data["prompt_total"] = usage.prompt_total  # for readers of the raw JSON (exports, older pages)
    data["total_input_tokens"] = usage.total_input
    data["uncached_input_tokens"] = usage.uncached_input
    if usage.write_split:
        data["cache_write_ttl"] = dict(usage.write_split)
    data["source"] = usage.source
    return data


def usage_cost(model: str, usage: Usage, prices: Mapping[str, Price] | None = None) -> float | None:
    """US$ for one request from its reported usage (lib.core.pricing.usage_cost); None when the model has no price."""
    return pricing_usage_cost(usage, model, table=prices)


def priced(
    model: str, usage: Usage | None, *, reference_model: str | None = None,
    prices: Mapping[str, Price] | None = None,
) -> tuple[float | None, str]:
    """The cost of a reply and where it comes from ("price of gpt-4o", "priced as gpt-4o", "no price").

    ``reference_model`` applies only to a model nobody bills (the offline model): a real provider's turn is
    always priced as its own model, whatever the offline setting says.
    """
    priced_as = price_basis(model, reference_model)
    if usage is None:
        return None, "no usage reported"
    cost = usage_cost(priced_as, usage, prices)
    if cost is None:
        return None, f"no price for {priced_as}"
    return cost, (f"priced as {priced_as}" if priced_as != model else f"price of {model}")


@dataclass(frozen=True)
class ReplyMeta:
    """The ``meta`` of a stored assistant message: who answered, usage, timings, cost."""

    provider: str | None = None
    model: str | None = None
    usage: Usage | None = None
    ttft: float | None = None
    total: float | None = None
    response_id: str | None = None
    conversation_id: str | None = None
    cost: float | None = None
    cost_source: str | None = None
    cache: str | None = None  # cache diagnostics in words (kept, broken, simulated ...)
    comparison_id: str | None = None  # set when the reply was chosen on the compare page
    # US$ of the summarisation request this turn made ("summary" strategy), billed beside ``cost``: a running
    # total read from the replies adds both.
    summary_cost: float | None = None
    # Set when the reply reached the reply cap and was cut there: the cap in characters, and the note shown.
    truncated_at: int | None = None
    truncated: str | None = None
    # The model's own report of what it could see (the offline model): shown under the reply, never re-sent.
    report: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: object) -> ReplyMeta:
        data = as_mapping(obj)
        timings = as_mapping(data.get("timings"))
        return cls(
            provider=as_str(data.get("provider")), model=as_str(data.get("model")),
            usage=usage_from_json(data.get("usage")),
            ttft=as_float(timings.get("ttft")), total=as_float(timings.get("total")),
            response_id=as_str(data.get("response_id")), conversation_id=as_str(data.get("conversation_id")),
            cost=as_float(data.get("cost")), cost_source=as_str(data.get("cost_source")),
            cache=short_text(as_str(data.get("cache"))), comparison_id=as_str(data.get("comparison_id")),
            summary_cost=as_float(data.get("summary_cost")),
            truncated_at=as_int(data.get("truncated_at")), truncated=short_text(as_str(data.get("truncated"))),
            report=report_lines_of(data.get("report")),
        )

    def to_json(self) -> dict[str, Any]:
        return compact({
            "provider": self.provider, "model": self.model,
            "usage": usage_to_json(self.usage) if self.usage else None,
            # Always present: pages read meta["timings"]["ttft"] even when the stream gave none.
            "timings": {"ttft": self.ttft, "total": self.total},
            "response_id": self.response_id, "conversation_id": self.conversation_id,
            "cost": self.cost, "cost_source": self.cost_source, "cache": self.cache,
            "comparison_id": self.comparison_id, "summary_cost": self.summary_cost,
            "truncated_at": self.truncated_at, "truncated": self.truncated, "report": list(self.report),
        })


# -- the turn record -------------------------------------------------------------------------------------------


def system_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def system_meta_field(text: str) -> str:
    """The session meta field that stores this system prompt once, however many turns send it."""
    return SYSTEM_META_PREFIX + system_hash(text)


# The provider name of the bundled demo conversation's records: payloads the trimmer built, never sent.
DEMO_PROVIDER = "demo"
# Errors raised before any request is built: the turn is recorded, but nothing went to a provider.
NEVER_SENT_ERRORS = frozenset({"ContextOverflowError", "MissingKeyError"})
OptionFields = tuple[tuple[str, str | int | bool], ...]
MAX_OPTIONS, MAX_OPTION_CHARS = 16, 200  # a record keeps a few short adapter options, never more


@dataclass(frozen=True)
class TurnRecord:
    """One request sent (or refused) for a session; see the module docstring for the compact form."""

    turn: int | None = None
    ts: float | None = None
    user_id: str | None = None
    assistant_id: str | None = None
    sent: tuple[IdRange, ...] = ()
    dropped: tuple[IdRange, ...] = ()
    sent_count: int = 0  # messages sent, the system prompt included
    dropped_count: int = 0
    system_sent: bool = False
    system_hash: str | None = None
    system_prompt: str | None = None  # only in records written before system prompts moved to meta
    estimate: int | None = None
    exact: int | None = None
    encoding: str | None = None
    approximate: bool | None = None
    usage: Usage | None = None
    strategy: str | None = None
    budget: int | None = None
    reserve: int | None = None
    provider: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    cut: str | None = None  # "cache-aware": id of the first message after the system prompt
    problems: tuple[str, ...] = ()
    error: str | None = None
    error_type: str | None = None
    previous_response_id: str | None = None
    summary_id: str | None = None
    reply_saved_late: bool = False  # the reply was saved by "Save again" after a store outage
    cost: float | None = None
    # "summary": the turns the summary sent covers, its tokens, and whether this turn wrote it. The cost of
    # this turn's summarisation request(s) is ``summary_cost`` (None: unknown), apart from the reply's ``cost``.
    summary_first_turn: int | None = None
    summary_last_turn: int | None = None
    summary_tokens: int | None = None
    summary_new: bool = False
    summary_requests: int = 0
    summary_cost: float | None = None
    # Visible notes: a summary request that failed, a server-side chain that broke and was re-sent ...
    notes: tuple[str, ...] = ()
    # Server-side history: "previous_response" or "conversation" when only the new input went out.
    server_state: str | None = None
    conversation_id: str | None = None
    # What the server did to the context (a compaction item, Anthropic's applied edits), in words.
    server_context: tuple[str, ...] = ()
    # The adapter options that shaped the body (``ProviderOptions.body_fields``, server ids apart: they have
    # fields of their own), so lib.chat.bodies rebuilds it through the same adapter code.
    options: OptionFields = ()
    # No request was made (the message alone was over the budget, no key): no body, no usage, no cost.
    not_sent: bool = False
    # Server-side history: the stored messages the server held and re-read for this request (not sent).
    server_held: tuple[IdRange, ...] = ()
    # False for a record written before records kept ``options``: its body is rebuilt without them.
    options_kept: bool = True
    # The model whose price ``cost`` used when it is not ``model`` (the offline model's reference model).
    priced_as: str | None = None
    # "You choose": the messages sent because their turn was pinned, and those never sent because their turn
    # was left out by hand (also in ``dropped``), as id ranges: one per chosen turn at most.
    pinned: tuple[IdRange, ...] = ()
    left_out: tuple[IdRange, ...] = ()
    # Tool definitions sent with the payload: their set's hash (the definitions are kept once in the session
    # meta under ``tools:<hash>``), names and tokens (counted as the provider receives them; in ``exact``).
    tools_hash: str | None = None
    tool_names: tuple[str, ...] = ()
    tool_tokens: int | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def server_kept(self) -> bool:
        """The server held the earlier history (previous_response_id, a conversation, a thread): this turn
        sent only its new input, and the server re-read (and billed) the rest."""
        return self.server_state is not None and not self.not_sent

    def sent_ids(self, history: Sequence[Message], positions: Mapping[str, int] | None = None) -> list[str]:
        """Ids of the stored messages this turn sent (the system prompt is not a stored message)."""
        return resolve_ranges(self.sent, history, positions)

    def dropped_ids(self, history: Sequence[Message], positions: Mapping[str, int] | None = None) -> list[str]:
        return resolve_ranges(self.dropped, history, positions)

    def server_held_ids(self, history: Sequence[Message], positions: Mapping[str, int] | None = None) -> list[str]:
        return resolve_ranges(self.server_held, history, positions)
    def left_out_ids(self, history: Sequence[Message], positions: Mapping[str, int] | None = None) -> list[str]:
        return resolve_ranges(self.left_out, history, positions)

    def system_text(self, meta: Mapping[str, str]) -> str | None:
        """The system prompt this turn sent, from the session meta; None if none was sent or it is gone."""
        if not self.system_sent:
            return None
        if self.system_prompt is not None:
            return self.system_prompt
        return meta.get(SYSTEM_META_PREFIX + self.system_hash) if self.system_hash else None

    def compacted(self, history: Sequence[Message]) -> TurnRecord:
        """The same record with adjacent ranges merged (used to shrink migrated records before a write)."""
        positions = id_positions(history)
        sent = id_ranges(resolve_ranges(self.sent, history, positions), positions)
        dropped = id_ranges(resolve_ranges(self.dropped, history, positions), positions)
        return replace(self, sent=sent, dropped=dropped)

    @classmethod
    def from_json(cls, obj: object) -> TurnRecord:
        data = as_mapping(obj)
        sent = ranges_from_json(data.get("sent"))
        dropped = ranges_from_json(data.get("dropped"))
        legacy_sent, legacy_dropped = legacy_ids(data.get("sent_ids")), legacy_ids(data.get("dropped_ids"))
        system_prompt = as_str(data.get("system_prompt"))
        system_sent = as_bool(data.get("system_sent"))
        if system_sent is None:  # old records: the prompt was sent when it was not blank
            system_sent = bool(system_prompt and system_prompt.strip())
        usage = usage_from_json(data.get("usage"))
        if usage is None and "provider_input_tokens" in data:  # old records kept three flat numbers
            usage = UsageRecord(input_tokens=as_int(data.get("provider_input_tokens")),
                                output_tokens=as_int(data.get("provider_output_tokens")))
        sent = sent if sent is not None else legacy_sent or ()
        dropped = dropped if dropped is not None else legacy_dropped or ()
        sent_count = as_int(data.get("sent_count"))
        dropped_count = as_int(data.get("dropped_count"))
        problems = data.get("problems")
        error_type = as_str(data.get("error_type"))
        not_sent = as_bool(data.get("not_sent"))
        if not_sent is None:  # older records: these errors are raised before any request is built
            not_sent = error_type in NEVER_SENT_ERRORS
        return cls(
            turn=as_int(data.get("turn")), ts=as_float(data.get("ts")),
            user_id=as_str(data.get("user_id")), assistant_id=as_str(data.get("assistant_id")),
            sent=sent, dropped=dropped,
            sent_count=sent_count if sent_count is not None else len(sent) + int(system_sent),
            dropped_count=dropped_count if dropped_count is not None else len(dropped),
            system_sent=system_sent, system_hash=as_str(data.get("system_hash")), system_prompt=system_prompt,
            estimate=as_int(data.get("estimate")), exact=as_int(data.get("exact")),
            encoding=as_str(data.get("encoding")), approximate=as_bool(data.get("approximate")),
            usage=usage, strategy=as_str(data.get("strategy")), budget=as_int(data.get("budget")),
            reserve=as_int(data.get("reserve")), provider=as_str(data.get("provider")),
            model=as_str(data.get("model")), max_tokens=as_int(data.get("max_tokens")), cut=as_str(data.get("cut")),
            problems=tuple(short_text(p) or "" for p in problems[:MAX_PROBLEMS] if isinstance(p, str))
            if isinstance(problems, list) else (),
            error=short_text(as_str(data.get("error"))), error_type=error_type,
            previous_response_id=as_str(data.get("previous_response_id")),
            summary_id=as_str(data.get("summary_id")),
            reply_saved_late=as_bool(data.get("reply_saved_late")) or False,
            cost=as_float(data.get("cost")),
            summary_first_turn=as_int(data.get("summary_first_turn")),
            summary_last_turn=as_int(data.get("summary_last_turn")),
            summary_tokens=as_int(data.get("summary_tokens")), summary_new=as_bool(data.get("summary_new")) or False,
            summary_requests=as_int(data.get("summary_requests")) or 0, summary_cost=as_float(data.get("summary_cost")),
            notes=short_texts(data.get("notes")), server_state=as_str(data.get("server_state")),
            conversation_id=as_str(data.get("conversation_id")),
            server_context=short_texts(data.get("server_context")),
            options=_options_from_json(data.get("options")), not_sent=not_sent,
            options_kept=isinstance(data.get("options"), Mapping),
            server_held=ranges_from_json(data.get("server_held")) or (),
            priced_as=as_str(data.get("priced_as")),
            pinned=ranges_from_json(data.get("pinned")) or (), left_out=ranges_from_json(data.get("left_out")) or (),
            tools_hash=as_str(data.get("tools_hash")), tool_names=short_texts(data.get("tool_names")),
            tool_tokens=as_int(data.get("tool_tokens")),
        )

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(
            sent=[list(r) for r in self.sent], dropped=[list(r) for r in self.dropped],
            server_held=[list(r) for r in self.server_held],
            pinned=[list(r) for r in self.pinned], left_out=[list(r) for r in self.left_out],
            tool_names=list(self.tool_names),
            problems=[short_text(p) for p in self.problems[:MAX_PROBLEMS]], error=short_text(self.error),
            notes=[short_text(n) for n in self.notes[:MAX_PROBLEMS]],
            server_context=[short_text(c) for c in self.server_context[:MAX_PROBLEMS]],
            summary_new=self.summary_new or None, summary_requests=self.summary_requests or None,
            usage=usage_to_json(self.usage) if self.usage else None,
            options=dict(self.options) or None, not_sent=self.not_sent or None,
        )
        stored = compact(data)
        stored["turn"] = self.turn  # always present, even when unknown: stores key records by it
        stored["options"] = dict(self.options)  # always present: its absence marks a record from before it
        stored.pop("options_kept", None)
        return stored


def import_turn(raw: Mapping[str, Any], history: Sequence[Message]) -> tuple[TurnRecord, dict[str, str]]:
    """A record from an import file, typed and compact, plus the session meta fields it needs.

    Old records (full id lists, the system prompt inline) are rewritten in the compact form: ranges over the
    imported history, and the prompt moved to the meta once under its hash.
    """
    record = TurnRecord.from_json(raw)
    if "sent" not in raw and "dropped" not in raw:
        record = record.compacted(history)
    if record.system_prompt is None:
        return record, {}
    text = record.system_prompt
    moved = replace(record, system_prompt=None, system_hash=system_hash(text) if record.system_sent else None)
    return moved, ({system_meta_field(text): text} if record.system_sent else {})


def read_turns(raw: Sequence[object]) -> list[TurnRecord]:
    """Typed records from whatever a store returned; entries that are not objects are skipped."""
    return [TurnRecord.from_json(r) for r in raw if isinstance(r, Mapping)]


def _options_from_json(value: object) -> OptionFields:
    """Stored adapter options, bounded: a few short names with plain values (lib.chat.bodies reads them back
    into ``ProviderOptions``, ignoring names it does not know)."""
    if not isinstance(value, Mapping):
        return ()
    kept = [(k, v) for k, v in value.items() if isinstance(k, str) and len(k) <= MAX_OPTION_CHARS
            and isinstance(v, str | int | bool) and not (isinstance(v, str) and len(v) > MAX_OPTION_CHARS)]
    return tuple(kept[:MAX_OPTIONS])
