"""One chat turn, end to end: the seed's POST route as a function, with every step visible.

    prepared = start_turn(store, provider, TurnRequest(user_text="Hi", session_id=sid))
    for delta in prepared.deltas():     # stream these (e.g. into st.write_stream)
        ...
    result = prepared.finish()          # stores the reply and the turn record
    if result.error: ...                # a typed exception, never raised out of the stream
    if result.unsaved: save_reply_again(store, result)   # after a store outage ("Save again")

``run_turn`` does all three steps at once. The user message is stored *before* the provider is called,
so a failing provider loses nothing. The stored history is never trimmed: trimming only shapes the
payload, and the turn record (``lib.records.TurnRecord``) says which id ranges were sent and dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from lib.errors import HistoryLabError
from lib.pricing import Price
from lib.providers import ProviderError
from lib.providers.base import Provider, ProviderOptions, Reply
from lib.records import (
    ReplyMeta,
    TurnRecord,
    id_positions,
    id_ranges,
    priced,
    read_turns,
    system_hash,
    system_meta_field,
    wire_payload,
)
from lib.secrets import mask_secrets
from lib.sessions import SessionStore, StoreUnavailable, new_session_id, validate_session_id
from lib.sessions.base import stamp
from lib.tokens import EncodingUnavailable, choose_encoding, count_chat_tokens, estimate_chat_tokens
from lib.trimming import SYSTEM_ROLES, ContextOverflowError, TrimResult, payload_problems, trim_history

__all__ = [  # wire_payload moved to lib.records; re-exported for existing callers
    "EmptyMessage", "MessageTooLarge", "PreparedTurn", "ReplyNotSaved", "TurnInterrupted", "TurnRequest",
    "TurnResult", "payload_counts", "run_turn", "save_reply_again", "start_turn", "wire_payload",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Session meta keys written here; the inspector reads them to rebuild payloads.
META_SYSTEM_PROMPT = "system_prompt"
META_PREVIOUS_RESPONSE = "previous_response_id"
# The assistant message that previous_response_id produced: the server-side chain is only valid while
# that message is still the newest reply (another provider may have answered in between).
META_PREVIOUS_RESPONSE_MESSAGE = "previous_response_message_id"
# About 125k tokens of English: beyond every model's window, and a sign of a pasted file gone wrong.
MAX_MESSAGE_CHARS = 500_000
# How long finish() keeps retrying to store a reply while the store is down (a restart, a failover).
SAVE_RETRY_SECONDS = 5.0


class EmptyMessage(HistoryLabError, ValueError):
    """The user message is empty or only whitespace; there is nothing to send."""

    def __init__(self) -> None:
        super().__init__("The message is empty. Type something to send.")


class MessageTooLarge(HistoryLabError, ValueError):
    """Larger than any context window we could send; refused before anything is stored."""

    def __init__(self, chars: int) -> None:
        super().__init__(
            f"The message has {chars:,} characters; the limit is {MAX_MESSAGE_CHARS:,}. "
            "Shorten it or split it over several messages."
        )


class TurnInterrupted(HistoryLabError, RuntimeError):
    """The reply stream was closed before it finished (the page was reloaded or stopped)."""

    def __init__(self) -> None:
        super().__init__("The reply was interrupted before it finished. Your message is saved; send again.")


class ReplyNotSaved(HistoryLabError):
    """The reply arrived but the store was down for longer than the retries; it lives only in the page."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(
            f"The reply is shown but could not be saved: the store did not answer ({cause}). "
            "Use “Save again” once the store is back; until then the reply exists only on this page."
        )


@dataclass(frozen=True)
class TurnRequest:
    """What the user asked for; ``budget`` is the trimmer's max_tokens, ``reserve_tokens`` is kept free.

    ``strict`` rejects what a strict API would (offline: an assistant-first payload). ``reference_model``
    prices the reply as that model (the page passes it for the offline model). ``low_water`` is the
    cache-aware strategy's refill level.
    """

    user_text: str
    session_id: str | None = None
    system_prompt: str = ""
    strategy: str = "turns"
    budget: int = 80_000
    reserve_tokens: int = 0
    model: str | None = None
    max_output_tokens: int = 1024
    strict: bool = True
    prompt_caching: bool = False
    reference_model: str | None = None
    low_water: float = 0.7
    prices: Mapping[str, Price] | None = None


@dataclass
class TurnResult:
    """The outcome of one turn. ``error`` is set (and ``assistant_message`` is None) when it failed.

    ``unsaved`` holds what a store outage kept from being written (the reply and/or the turn record);
    ``text`` still carries the reply, and ``save_reply_again`` writes it once the store is back.
    """

    session_id: str
    turn: int
    user_message: dict[str, Any]
    assistant_message: dict[str, Any] | None
    record: TurnRecord
    payload: list[dict[str, Any]]
    trim: TrimResult | None
    request: dict[str, Any] | None = None
    text: str = ""
    error: Exception | None = None
    unsaved_reply: dict[str, Any] | None = None
    unsaved_record: TurnRecord | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def unsaved(self) -> bool:
        return self.unsaved_reply is not None or self.unsaved_record is not None


@dataclass
class PreparedTurn:
    """A turn whose user message is stored and whose payload is built, ready to stream.

    Iterate ``deltas()`` once, then call ``finish()``. ``error`` is already set when the payload could
    not be built (the message alone is larger than the budget); ``deltas()`` then yields nothing.
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
    error: Exception | None = None
    save_retry_s: float = SAVE_RETRY_SECONDS
    _reply: Reply | None = field(default=None, repr=False)
    _chunks: list[str] = field(default_factory=list, repr=False)
    _started: bool = field(default=False, repr=False)
    _completed: bool = field(default=False, repr=False)
    _result: TurnResult | None = field(default=None, repr=False)

    @property
    def sent_ids(self) -> list[str]:
        return [i for i in self.payload_ids if i]

    @property
    def dropped_ids(self) -> list[str]:
        return self.trim.dropped_ids if self.trim else []

    def deltas(self) -> Iterator[str]:
        """Text chunks of the reply. Provider failures end the stream and land in ``self.error``."""
        if self._started:
            raise RuntimeError("deltas() can be iterated only once per turn")
        self._started = True
        if self.error is not None:
            self._completed = True
            return
        try:
            self._reply = self.provider.stream(self.payload, model=self.model,
                                               max_tokens=self.request.max_output_tokens, options=self.options)
            for delta in self._reply:
                self._chunks.append(delta)
                yield delta
        except GeneratorExit:
            raise  # the consumer stopped; finish() records the turn as interrupted
        except Exception as exc:  # noqa: BLE001 - every failure becomes a typed result, not a traceback
            if not isinstance(exc, ProviderError):
                log.exception("Unexpected error from provider %s", self.provider.name)
            self.error = exc
        self._completed = True

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
        if reply is not None:
            message = stamp({"role": "assistant", "content": reply.text or "".join(self._chunks),
                             "meta": self._reply_meta(reply).to_json()})
            try:
                assistant = self._saved(lambda: self.store.append_messages(self.session_id, message)[0])
                self._chain(reply, assistant)
            except StoreUnavailable as exc:
                unsaved_reply, self.error = message, ReplyNotSaved(exc)
        record = self._record(reply, assistant)
        if unsaved_reply is not None:
            unsaved_record = record  # written with the reply by save_reply_again: the store is down now
        else:
            try:
                self._saved(lambda: self.store.append_turn(self.session_id, record.to_json()))
            except StoreUnavailable as exc:
                log.warning("Turn %d of %s: the turn record could not be saved: %s", self.turn, self.session_id, exc)
                unsaved_record = record
                if self.error is None:
                    self.error = ReplyNotSaved(exc)
        self._result = TurnResult(
            session_id=self.session_id, turn=self.turn, user_message=self.user_message,
            assistant_message=assistant, record=record, payload=self.payload, trim=self.trim,
            request=self._reply.request if self._reply else None, text="".join(self._chunks), error=self.error,
            unsaved_reply=unsaved_reply, unsaved_record=unsaved_record,
        )
        return self._result

    def _saved(self, write: Callable[[], T]) -> T:
        return retry_store_write(write, seconds=self.save_retry_s)

    def _chain(self, reply: Reply, assistant: Mapping[str, Any]) -> None:
        if self.provider.capabilities.server_side_history and reply.response_id:
            self.store.set_meta(self.session_id, **{
                META_PREVIOUS_RESPONSE: reply.response_id, META_PREVIOUS_RESPONSE_MESSAGE: assistant["id"],
            })

    def _reply_meta(self, reply: Reply) -> ReplyMeta:
        usage = reply.usage
        cost, source = priced(self.model, usage, reference_model=self.request.reference_model,
                              prices=self.request.prices)
        return ReplyMeta(
            provider=self.provider.name, model=self.model, usage=usage,
            ttft=reply.timings.first_token_s, total=reply.timings.total_s, response_id=reply.response_id,
            conversation_id=reply.conversation_id, cost=cost, cost_source=source,
            cache="simulated" if usage is not None and usage.simulated else None,
        )

    def _record(self, reply: Reply | None, assistant: Mapping[str, Any] | None) -> TurnRecord:
        overflow = isinstance(self.error, ContextOverflowError)
        counts = payload_counts(self.payload, self.model)
        usage = reply.usage if reply is not None else None
        cost = priced(self.model, usage, reference_model=self.request.reference_model,
                      prices=self.request.prices)[0] if usage else None
        history_ids = [i for i in self.sent_ids if i != self.user_message["id"]]
        # The user message is a range of its own: another tab may have stored a message between the
        # history this turn read and its own message, and that one was not sent.
        sent = () if overflow else (*id_ranges(history_ids, self.history_positions),
                                    (self.user_message["id"], self.user_message["id"]))
        system = self.request.system_prompt
        system_sent = bool(self.payload) and self.payload[0].get("role") == "system" and not overflow
        return TurnRecord(
            turn=self.turn, ts=time.time(), user_id=self.user_message["id"],
            assistant_id=assistant["id"] if assistant else None,
            sent=sent, dropped=id_ranges(self.dropped_ids, self.history_positions),
            sent_count=0 if overflow else len(self.payload), dropped_count=len(self.dropped_ids),
            system_sent=system_sent, system_hash=system_hash(system) if system_sent else None,
            estimate=counts["estimate"], exact=counts["exact"], encoding=counts["encoding"],
            approximate=counts["approximate"], usage=usage, strategy=self.request.strategy,
            budget=self.request.budget, reserve=self.request.reserve_tokens, provider=self.provider.name,
            model=self.model, max_tokens=self.request.max_output_tokens, cut=self.trim.cut if self.trim else None,
            problems=tuple(problems_of(self.payload, counts, budget=self.request.budget - self.request.reserve_tokens))
            if not overflow else (),
            error=mask_secrets(str(self.error)) if self.error else None,
            error_type=type(self.error).__name__ if self.error else None,
            previous_response_id=self.previous_response_id, cost=cost,
        )


def retry_store_write(write: Callable[[], T], *, seconds: float = SAVE_RETRY_SECONDS) -> T:
    """Run ``write``, retrying with backoff while the store is unavailable, for at most ``seconds``.

    Writes are idempotent by message id and turn number, so a retry after a write that did land (but whose
    answer was lost) stores nothing twice.
    """
    deadline = time.monotonic() + seconds
    delay = 0.1
    while True:
        try:
            return write()
        except StoreUnavailable:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            time.sleep(min(delay, left))
            delay = min(delay * 2, 1.0)


def save_reply_again(store: SessionStore, result: TurnResult) -> TurnResult:
    """Write what a store outage kept from being saved ("Save again"). Raises ReplyNotSaved if still down.

    The turn record is marked ``reply_saved_late`` so the timeline can show that the reply was saved
    after the turn. Safe to call twice: writes are idempotent by message id and turn number.
    """
    if not result.unsaved:
        return result
    record = result.unsaved_record or result.record
    try:
        assistant = result.assistant_message
        if result.unsaved_reply is not None:
            assistant = store.append_messages(result.session_id, result.unsaved_reply)[0]
            record = replace(record, assistant_id=assistant["id"], error=None, error_type=None,
                             reply_saved_late=True)
        store.append_turn(result.session_id, record.to_json())
    except StoreUnavailable as exc:
        raise ReplyNotSaved(exc) from exc
    error = None if isinstance(result.error, ReplyNotSaved) else result.error
    return replace(result, assistant_message=assistant, record=record, error=error, unsaved_reply=None,
                   unsaved_record=None)


def start_turn(store: SessionStore, provider: Provider, request: TurnRequest) -> PreparedTurn:
    """Validate, store the user message, and build the (trimmed) payload. Nothing is sent yet.

    Raises EmptyMessage, MessageTooLarge, InvalidSessionId, or the store's StoreError; nothing is
    stored in the first three cases. A message too large for the budget is stored and returned with ``error`` set.
    """
    if not request.user_text or not request.user_text.strip():
        raise EmptyMessage()
    if len(request.user_text) > MAX_MESSAGE_CHARS:
        raise MessageTooLarge(len(request.user_text))
    session_id = validate_session_id(request.session_id) if request.session_id else new_session_id()
    model = request.model or provider.default_model
    history = store.get_history(session_id)
    cut = _previous_cut(store, session_id) if request.strategy == "cache-aware" else None
    # One transaction stores the message and takes the next turn number: two tabs never share one.
    user, turn = store.begin_turn(session_id, {"role": "user", "content": request.user_text})
    system_text = request.system_prompt
    system = [{"role": "system", "content": system_text}] if system_text.strip() else []
    # The prompt is stored once per distinct text; each turn record keeps only its hash.
    store.set_meta(session_id, **{META_SYSTEM_PROMPT: system_text,
                                  **({system_meta_field(system_text): system_text} if system else {})})
    previous = _previous_response(store, provider, session_id, history)
    # With a live server-side chain only the new message goes over the wire; the server holds the rest.
    candidates = [*system, user] if previous else [*system, *history, user]
    prepared = PreparedTurn(store=store, provider=provider, request=request, session_id=session_id,
                            turn=turn, model=model, user_message=user, payload=[], payload_ids=[],
                            trim=None, previous_response_id=previous, history_positions=id_positions(history))
    try:
        trim = trim_history(candidates, request.budget, model=model, strategy=request.strategy,
                            reserve_tokens=request.reserve_tokens, low_water=request.low_water, cut=cut)
    except ContextOverflowError as exc:
        prepared.error = exc
        prepared.payload, prepared.payload_ids = wire_payload([*system, user])
        return prepared
    prepared.trim = trim
    prepared.payload, prepared.payload_ids = wire_payload(trim.kept)
    prepared.options = _options(provider, request, prepared, turn_numbers(candidates, turn))
    return prepared


def run_turn(store: SessionStore, provider: Provider, request: TurnRequest) -> TurnResult:
    """start_turn + drain the stream + finish, for callers that don't show deltas as they arrive."""
    return start_turn(store, provider, request).finish()


def _options(provider: Provider, request: TurnRequest, prepared: PreparedTurn,
             numbers: Mapping[str | None, int]) -> ProviderOptions:
    capabilities = provider.capabilities
    return ProviderOptions(
        previous_response_id=prepared.previous_response_id,
        prompt_caching=request.prompt_caching and capabilities.prompt_caching,
        strict=request.strict,
        context_window=request.budget,
        turn_numbers=tuple(numbers.get(i, 0) for i in prepared.payload_ids),
        current_turn=prepared.turn,
    )


def turn_numbers(messages: Sequence[Mapping[str, Any]], current_turn: int) -> dict[str | None, int]:
    """The turn number of every message id: user messages count back from the current turn.

    Counting back (not forward from 1) stays right after the store's cap removed the oldest messages.
    A message belongs to the turn of the user message before it; system messages (no id) are turn 0.
    """
    number = current_turn - sum(1 for m in messages if m.get("role") == "user")
    numbers: dict[str | None, int] = {}
    for message in messages:
        role = message.get("role")
        if role == "user":
            number += 1
        message_id = message.get("id")
        if isinstance(message_id, str):
            numbers[message_id] = 0 if role in SYSTEM_ROLES else max(1, number)
    return numbers


def _previous_cut(store: SessionStore, session_id: str) -> str | None:
    """The cache-aware cut of the previous turn, so the payload's prefix (and the provider's cache) survives."""
    turns = store.get_turns(session_id, -1)  # only the newest record is read
    if not turns:
        return None
    previous = TurnRecord.from_json(turns[-1])
    return previous.cut if previous.strategy == "cache-aware" else None


def _previous_response(
    store: SessionStore, provider: Provider, session_id: str, history: Sequence[Mapping[str, Any]]
) -> str | None:
    if not provider.capabilities.server_side_history or not history:
        return None
    meta = store.get_meta(session_id)
    response_id = meta.get(META_PREVIOUS_RESPONSE)
    # Only chain when the newest stored reply is the one that response produced; otherwise the server's
    # copy of the conversation is missing messages, and the full history must be re-sent.
    if response_id and history[-1].get("id") == meta.get(META_PREVIOUS_RESPONSE_MESSAGE):
        return response_id
    return None


def payload_counts(payload: Sequence[Mapping[str, Any]], model: str) -> dict[str, Any]:
    """The turn record's token fields: the seed's estimate, the exact count (None without an encoding)."""
    choice = choose_encoding(model)
    try:
        exact: int | None = count_chat_tokens(payload, model)
    except EncodingUnavailable:
        exact = None
    return {"estimate": estimate_chat_tokens(payload), "exact": exact, "encoding": choice.name,
            "approximate": choice.approximate}


def problems_of(payload: Sequence[Mapping[str, Any]], counts: Mapping[str, Any], *, budget: int) -> list[str]:
    """Why an API would reject this payload, plus "over budget" with both numbers (the seed can be)."""
    problems = payload_problems(payload)
    size = counts.get("exact") if counts.get("exact") is not None else counts.get("estimate")
    if isinstance(size, int) and size > budget:
        problems.append(f"Over budget: {size:,} tokens sent against a budget of {budget:,}.")
    return problems


def turn_records(store: SessionStore, session_id: str) -> list[TurnRecord]:
    """The session's turn records, typed (odd fields read as missing, never raised)."""
    return read_turns(store.get_turns(session_id))
