"""A prepared chat turn: stream the reply, fall back when a server chain is lost, then store the reply and record.

``start_turn`` (lib.chat.conversation) builds a ``PreparedTurn`` from a ``TurnRequest`` (lib.chat.request;
the user message is already stored); ``deltas()`` streams the reply and ``finish()`` writes it and its
``TurnRecord``. Nothing here raises to the page: a provider
failure, an interrupted stream or a store outage lands in ``TurnResult.error``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lib.chat.bodies import record_options
from lib.chat.request import TurnInterrupted, TurnRequest, TurnResult, truncation_note
from lib.chat.saving import SAVE_RETRY_SECONDS, ReplyNotSaved, retry_store_write
from lib.chat.server_state import (
    ServerChain,
    chain_fields,
    describe_server_context,
    lost_note,
    state_lost,
)
from lib.context import CompactionResult, ContextOverflowError, ManualChoice, Summary, TrimResult, payload_problems
from lib.core import (
    ReplyMeta,
    ToolDef,
    TurnRecord,
    id_ranges,
    mask_secrets,
    openai_chat_tools,
    priced,
    system_hash,
    tools_hash,
)
from lib.core import priced_as as price_basis
from lib.providers import Provider, ProviderError, ProviderOptions, Reply, StreamGuard, StreamStopped
from lib.sessions import SessionStore, StoreUnavailable, stamp
from lib.tokens import (
    EncodingUnavailable,
    choose_encoding,
    count_chat_tokens,
    count_tool_tokens,
    estimate_chat_tokens,
    estimate_tokens,
)

# The strategies whose TrimResult.tokens_after is the kept payload's exact count (when counted exactly).
WHOLE_TURN_STRATEGIES = ("turns", "cache-aware")

log = logging.getLogger("lib.chat.conversation")  # one logger for the whole turn, as before the split
T = TypeVar("T")


@dataclass
class PreparedTurn:
    """A turn whose user message is stored and whose payload is built, ready to stream.

    Iterate ``deltas()`` once, then call ``finish()``. ``error`` is already set when the payload could
    not be built (the message alone is larger than the budget); ``deltas()`` then yields nothing.
    ``resend`` (set by start_turn for a live server chain) rebuilds this turn as a full re-send.
    ``guard`` stops the stream from outside (a client that left); one with the request's time limit is made
    when none is given.
    """

    store: SessionStore
    provider: Provider
    request: TurnRequest
    session_id: str
    turn: int
    model: str
    user_message: dict[str, Any]
    payload: list[dict[str, Any]]
    payload_ids: list[str | None]
    trim: TrimResult | None
    options: ProviderOptions = field(default_factory=ProviderOptions)
    previous_response_id: str | None = None
    history_positions: dict[str, int] = field(default_factory=dict, repr=False)
    server_held_ids: list[str] = field(default_factory=list, repr=False)  # stored messages the server holds
    error: Exception | None = None
    save_retry_s: float = SAVE_RETRY_SECONDS
    chain: ServerChain = field(default_factory=ServerChain)
    compaction: CompactionResult | None = None
    notes: list[str] = field(default_factory=list)
    choice: ManualChoice = field(default_factory=ManualChoice)  # the pinned and left-out turns applied
    # The session meta this turn's opening call wrote (settings, system prompt, ...), for a caller that keeps
    # a hint of what the session holds (lib.api.turns).
    meta_written: Mapping[str, str] = field(default_factory=dict, repr=False)
    resend: Callable[[PreparedTurn], None] | None = field(default=None, repr=False)
    guard: StreamGuard | None = field(default=None, repr=False)
    _reply: Reply | None = field(default=None, repr=False)
    _started: bool = field(default=False, repr=False)
    _completed: bool = field(default=False, repr=False)
    _result: TurnResult | None = field(default=None, repr=False)

    @property
    def sent_ids(self) -> list[str]:
        return [i for i in self.payload_ids if i]

    @property
    def dropped_ids(self) -> list[str]:
        return self.trim.dropped_ids if self.trim else []

    @property
    def summary(self) -> Summary | None:
        return self.compaction.summary if self.compaction else None

    @property
    def sent_reply(self) -> Reply | None:
        """The reply of the request this turn made (its body and options), None when none was built."""
        return self._reply

    def deltas(self) -> Iterator[str]:
        """Text chunks of the reply. Provider failures end the stream and land in ``self.error``.

        When the server forgot the chain before any text arrived, the turn is re-sent in full, once.
        """
        if self._started:
            raise RuntimeError("deltas() can be iterated only once per turn")
        self._started = True
        if self.error is not None:
            self._completed = True
            return
        guard = self.guard = self.guard or StreamGuard(time_limit=self.request.stream_time_limit)
        guard.arm()
        try:
            yield from self._attempts(guard)
        finally:
            guard.disarm()
        self._completed = True

    def _attempts(self, guard: StreamGuard) -> Iterator[str]:
        for attempt in (1, 2):
            yielded = False
            try:
                self._reply = self.provider.stream(self.payload, model=self.model,
                                                   max_tokens=self.request.max_output_tokens, options=self.options,
                                                   guard=guard, max_reply_chars=self.request.max_reply_chars)
                for delta in self._reply:
                    yielded = True
                    yield delta
                if self._reply.truncated:
                    self.notes.append(_truncation(self._reply)["truncated"])
                break
            except GeneratorExit:
                raise  # the consumer stopped; finish() records the turn as interrupted
            except StreamStopped:
                self.error = TurnInterrupted()  # the client left: the guard already cut the connection
                break
            except Exception as exc:  # noqa: BLE001 - every failure becomes a typed result, not a traceback
                if attempt == 1 and not yielded and self._may_resend(exc):
                    self.notes.append(lost_note(exc, self.chain))
                    if self._resent():
                        continue
                    break
                if not isinstance(exc, ProviderError):
                    log.exception("Unexpected error from provider %s", self.provider.name)
                self.error = exc
                break

    def _resent(self) -> bool:
        """Rebuild this turn as a full re-send; False (with ``error`` set) when even that cannot be built."""
        assert self.resend is not None
        try:
            self.resend(self)
        except ContextOverflowError as exc:  # the whole history no longer fits, and the chain is gone
            self.error = exc
            return False
        return True

    def _may_resend(self, exc: Exception) -> bool:
        chained = bool(self.options.previous_response_id or self.options.conversation_id)
        named = bool(self.options.conversation_id) or self.chain.mode == "thread"  # a 404 means it is gone
        return chained and self.resend is not None and state_lost(exc, conversation=named)

    def finish(self) -> TurnResult:
        """Store the reply (if any) and the turn record. Safe to call twice; drains the stream if needed.

        A store outage while saving is retried for ``save_retry_s`` seconds; after that the result carries
        the reply with ``error=ReplyNotSaved`` and ``unsaved_*`` set, and nothing is raised.
        """
        if self._result is not None:
            return self._result
        if not self._started:
            for _ in self.deltas():
                pass
        if not self._completed and self.error is None:
            self.error = TurnInterrupted()
        assistant = unsaved_reply = unsaved_record = None
        reply = self._reply if self.error is None else None
        message = None
        meta: dict[str, str] = {}
        if reply is not None:
            message = stamp({"role": "assistant", "content": reply.text,
                             "meta": self._meta_or_bare(reply)})
            if self.provider.capabilities.server_side_history:
                meta = chain_fields(mode=self.chain.mode, reply=reply, assistant_id=message["id"])
        record = self._record(reply, message)
        # The reply, its record and what the next turn chains on go in one atomic write (resent safely:
        # the reply is deduplicated by id, the record by its turn number).
        try:
            assistant = self._saved(lambda: self.store.close_turn(self.session_id, turn=self.turn, reply=message,
                                                                  record=record.to_json(), meta=meta))
        except StoreUnavailable as exc:
            log.warning("Turn %d of %s: the reply and turn record could not be saved: %s", self.turn,
                        self.session_id, exc)
            if self.error is None:
                self.error = ReplyNotSaved(exc)
            if message is not None:  # the record written later by save_reply_again says the reply came late
                unsaved_reply, record = message, self._record(reply, None)
            unsaved_record = record
        self._result = TurnResult(
            session_id=self.session_id, turn=self.turn, user_message=self.user_message,
            assistant_message=assistant, record=record, payload=self.payload, trim=self.trim,
            request=self._reply.request if self._reply else None, text=self._reply.text if self._reply else "",
            error=self.error,
            unsaved_reply=unsaved_reply, unsaved_record=unsaved_record, summary=self.summary,
            notes=record.notes,
        )
        return self._result

    def _saved(self, write: Callable[[], T]) -> T:
        return retry_store_write(write, seconds=self.save_retry_s)

    def _meta_or_bare(self, reply: Reply) -> dict[str, Any]:
        """The reply's meta; when it cannot be built, a bare one (no usage, no cost), so the reply is kept."""
        try:
            return self._reply_meta(reply).to_json()
        except Exception as exc:  # noqa: BLE001 - a reply must never be lost over its metadata
            self._metadata_failed(exc, "reply's usage and cost")
            reply.usage = None  # read as "not reported", so the record does not trip on the same figures
            return ReplyMeta(provider=self.provider.name, model=self.model, ttft=reply.timings.first_token_s,
                             total=reply.timings.total_s, response_id=reply.response_id,
                             conversation_id=reply.conversation_id, cost_source="no usage reported",
                             **_truncation(reply)).to_json()

    def _record(self, reply: Reply | None, assistant: Mapping[str, Any] | None) -> TurnRecord:
        """The turn record; when what the reply carries breaks it, the record without the reply's details."""
        try:
            return build_record(self, reply, assistant)
        except Exception as exc:
            if reply is None:
                raise  # nothing came from the provider: a bug in the record itself, for the caller to report
            self._metadata_failed(exc, "reply's details (usage, server context)")
            return build_record(self, None, assistant)

    def _metadata_failed(self, exc: Exception, what: str) -> None:
        log.exception("Turn %d of %s: the %s could not be read", self.turn, self.session_id, what)
        self.notes.append(f"The {what} could not be read ({type(exc).__name__}: {exc}); the reply is stored "
                          "without them.")

    def _reply_meta(self, reply: Reply) -> ReplyMeta:
        usage = reply.usage
        cost, source = priced(self.model, usage, reference_model=self.request.reference_model,
                              prices=self.request.prices)
        return ReplyMeta(
            provider=self.provider.name, model=self.model, usage=usage,
            ttft=reply.timings.first_token_s, total=reply.timings.total_s, response_id=reply.response_id,
            conversation_id=reply.conversation_id, cost=cost, cost_source=source,
            cache="simulated" if usage is not None and usage.simulated else None,
            summary_cost=self.summary.cost if self.summary and self.compaction and self.compaction.compacted
            else None,
            **_truncation(reply),
            report=tuple(mask_secrets(line) for line in reply.report),
        )


def _truncation(reply: Reply) -> dict[str, Any]:
    """ReplyMeta's fields for a reply cut at its cap (none for a whole reply)."""
    if not reply.truncated or reply.max_chars is None:
        return {}
    return {"truncated_at": reply.max_chars, "truncated": truncation_note(reply.max_chars)}


def build_record(turn: PreparedTurn, reply: Reply | None, assistant: Mapping[str, Any] | None) -> TurnRecord:
    """The compact record of ``turn``: id ranges sent and dropped, counts, usage, summary and server state.

    A turn that made no request (the message alone over the budget, no key: no ``Reply`` was ever built)
    records its error and nothing sent or dropped, so no page can show a body, a trim or a cost for it.
    """
    request = turn.request
    overflow = isinstance(turn.error, ContextOverflowError)
    not_sent = overflow or turn.sent_reply is None
    tools = request.tools
    counts = payload_counts(turn.payload, turn.model, tools, exact=_exact_from_trim(turn, overflow=overflow))
    usage = reply.usage if reply is not None else None
    cost = priced(turn.model, usage, reference_model=request.reference_model, prices=request.prices)[0] \
        if usage else None
    history_ids = [i for i in turn.sent_ids if i != turn.user_message["id"]]
    # The user message is a range of its own: another tab may have stored a message between the
    # history this turn read and its own message, and that one was not sent.
    sent = () if not_sent else (*id_ranges(history_ids, turn.history_positions),
                                (turn.user_message["id"], turn.user_message["id"]))
    dropped = () if not_sent else id_ranges(turn.dropped_ids, turn.history_positions)
    system = request.system_prompt
    system_sent = bool(turn.payload) and turn.payload[0].get("role") == "system" and not not_sent
    compaction = turn.compaction
    notes = [*(compaction.notes if compaction else ()), *turn.notes]
    chained = bool(turn.options.previous_response_id or turn.options.conversation_id)
    summary = compaction.summary if compaction and not not_sent else None
    options = turn.sent_reply.options if turn.sent_reply is not None else turn.options
    return TurnRecord(
        turn=turn.turn, ts=time.time(), user_id=turn.user_message["id"],
        assistant_id=assistant["id"] if assistant else None,
        sent=sent, dropped=dropped,
        sent_count=0 if not_sent else len(turn.payload), dropped_count=0 if not_sent else len(turn.dropped_ids),
        pinned=id_ranges(list(turn.trim.pinned_ids), turn.history_positions) if turn.trim and not not_sent else (),
        left_out=id_ranges(list(turn.trim.left_out_ids), turn.history_positions) if turn.trim and not not_sent
        else (),
        system_sent=system_sent, system_hash=system_hash(system) if system_sent else None,
        estimate=counts["estimate"], exact=counts["exact"], encoding=counts["encoding"],
        approximate=counts["approximate"], usage=usage, strategy=request.strategy,
        budget=request.budget, reserve=request.reserve_tokens, provider=turn.provider.name,
        model=turn.model, max_tokens=request.max_output_tokens,
        cut=turn.trim.cut if turn.trim else None,
        problems=tuple(problems_of(turn.payload, counts, budget=request.budget - request.reserve_tokens))
        if not not_sent else (),
        error=mask_secrets(str(turn.error)) if turn.error else None,
        error_type=type(turn.error).__name__ if turn.error else None,
        previous_response_id=turn.options.previous_response_id, cost=cost,
        summary_id=summary.id if summary else None,
        summary_first_turn=summary.first_turn if summary else None,
        summary_last_turn=summary.last_turn if summary else None,
        summary_tokens=summary.tokens if summary else None,
        summary_new=bool(compaction and compaction.compacted),
        summary_requests=compaction.summary_requests if compaction else 0,
        summary_cost=summary.cost if summary and compaction and compaction.compacted else None,
        notes=tuple(mask_secrets(n) for n in notes), server_state=turn.chain.mode if chained and not not_sent else None,
        conversation_id=turn.options.conversation_id,
        server_context=describe_server_context(reply) if reply is not None else (),
        options=record_options(options), not_sent=not_sent,
        server_held=id_ranges(turn.server_held_ids, turn.history_positions) if chained and not not_sent else (),
        priced_as=_priced_as(turn.model, request.reference_model),
        tools_hash=tools_hash(tools) if tools and not not_sent else None,
        tool_names=tuple(t.name for t in tools) if not not_sent else (),
        tool_tokens=counts["tool_tokens"] if tools and not not_sent else None,
    )


def _priced_as(model: str, reference_model: str | None) -> str | None:
    basis = price_basis(model, reference_model)
    return basis if basis != model else None


def _exact_from_trim(turn: PreparedTurn, *, overflow: bool) -> int | None:
    """The payload's exact count as the trim already summed it, or None to count it again.

    "turns" and "cache-aware" count every candidate message exactly (the same per-message figures as
    ``count_chat_tokens``) to place the cut, and ``tokens_after`` is the sum over what they kept: the
    payload. Taking it saves a pass over the whole payload per turn.
    """
    trim = turn.trim
    if trim is None or overflow or trim.strategy not in WHOLE_TURN_STRATEGIES:
        return None
    return trim.tokens_after if trim.counter == choose_encoding(turn.model).name else None


def payload_counts(payload: Sequence[Mapping[str, Any]], model: str, tools: Sequence[ToolDef] = (), *,
                   exact: int | None = None) -> dict[str, Any]:
    """The turn record's token fields: the seed's estimate, the exact count (None without an encoding), both
    with the tool definitions sent beside the messages (``tool_tokens``: their exact share, or estimated).

    ``exact``: the payload's exact count, tools included, when the caller already has it (see
    ``_exact_from_trim``: the trimmer holds the tools in its budget, so its sum has them).
    """
    choice = choose_encoding(model)
    tool_estimate = estimate_tokens(openai_chat_tools(tools)) if tools else 0
    try:
        tool_tokens = count_tool_tokens(tools, model) if tools else 0
        if exact is None:
            exact = count_chat_tokens(payload, model) + tool_tokens
    except EncodingUnavailable:
        exact, tool_tokens = None, tool_estimate
    return {"estimate": estimate_chat_tokens(payload) + tool_estimate, "exact": exact, "encoding": choice.name,
            "approximate": choice.approximate, "tool_tokens": tool_tokens}


def problems_of(payload: Sequence[Mapping[str, Any]], counts: Mapping[str, Any], *, budget: int) -> list[str]:
    """Why an API would reject this payload, plus "over budget" with both numbers (the seed can be)."""
    problems = payload_problems(payload)
    size = counts.get("exact") if counts.get("exact") is not None else counts.get("estimate")
    if isinstance(size, int) and size > budget:
        problems.append(f"Over budget: {size:,} tokens sent against a budget of {budget:,}.")
    return problems
