"""One chat turn, end to end: the seed's POST route as a function, with every step visible.

    prepared = start_turn(store, provider, TurnRequest(user_text="Hi", session_id=sid))
    for delta in prepared.deltas():     # stream these (e.g. into st.write_stream)
        ...
    result = prepared.finish()          # stores the reply and the turn record
    if result.error: ...                # a typed exception, never raised out of the stream
    if result.unsaved: save_reply_again(store, result)   # after a store outage ("Save again")

``run_turn`` does all three steps at once. The user message is stored *before* the provider is called,
so a failing provider loses nothing. The stored history is never trimmed: trimming (or the "summary"
strategy's compaction, lib.chat.summary) only shapes the payload, and the turn record
(``lib.core.records.TurnRecord``) says which id ranges were sent and dropped, and which summary was sent.
With server-side history (lib.chat.server_state) only the new input goes out while the chain is intact.

The turn itself lives in lib.chat.turn (streaming, the record) and lib.chat.saving (saving through an outage).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from lib.chat.choice import choice_from_turns, ignored_note
from lib.chat.interrupted import META_RUNNER, runner_token
from lib.chat.request import TurnInterrupted, TurnRequest, TurnResult
from lib.chat.saving import SAVE_RETRY_SECONDS, MessageNotSent, ReplyNotSaved, retry_store_write
from lib.chat.server_state import (
    META_PREVIOUS_RESPONSE,
    META_PREVIOUS_RESPONSE_MESSAGE,
    ServerChain,
    chain_for,
    held_by_chain,
    open_conversation,
)
from lib.chat.summary import store_summary, summarizer_for, usable_summary
from lib.chat.turn import PreparedTurn, payload_counts, problems_of
from lib.context import (
    MANUAL_STRATEGIES,
    META_MANUAL_CHOICE,
    STRATEGIES,
    SYSTEM_ROLES,
    ContextOverflowError,
    ManualChoice,
    compact_history,
    trim_history,
)
from lib.core import (
    HistoryLabError,
    SessionSettings,
    TurnRecord,
    id_positions,
    read_turns,
    system_meta_field,
    tools_meta_field,
    tools_to_meta,
    wire_payload,
)
from lib.providers import Provider, ProviderOptions
from lib.sessions import SessionStore, StoreUnavailable, new_session_id, stamp, validate_session_id
from lib.tokens import EncodingUnavailable, count_tool_tokens

__all__ = [  # the turn's parts moved to lib.chat.turn / lib.chat.saving; re-exported for existing callers
    "META_PREVIOUS_RESPONSE", "META_PREVIOUS_RESPONSE_MESSAGE", "META_SYSTEM_PROMPT", "SAVE_RETRY_SECONDS",
    "EmptyMessage", "MessageNotSent", "MessageTooLarge", "PreparedTurn", "ReplyNotSaved", "TurnInterrupted",
    "TurnRequest", "TurnResult", "payload_counts", "problems_of", "retry_store_write", "run_turn", "save_reply_again",
    "start_turn", "turn_numbers", "turn_records", "wire_payload",
]

# Session meta key written here; the inspector reads it to rebuild payloads.
# What a chat turn accepts: every trimming strategy, plus "summary" (compaction through lib.chat.summary).
CHAT_STRATEGIES: tuple[str, ...] = (*STRATEGIES, "summary")
META_SYSTEM_PROMPT = "system_prompt"
# About 125k tokens of English: beyond every model's window, and a sign of a pasted file gone wrong.
MAX_MESSAGE_CHARS = 500_000
Message = Mapping[str, Any]


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


def start_turn(store: SessionStore, provider: Provider, request: TurnRequest, *,
               expect_meta: Mapping[str, str | None] | None = None) -> PreparedTurn:
    """Validate, store the user message, and build the (trimmed or compacted) payload. Nothing is sent yet.

    Raises EmptyMessage, MessageTooLarge, InvalidSessionId, or the store's StoreError; nothing is
    stored in the first three cases. The store call (one: it reads the history and stores the message) is
    retried through a store outage for SAVE_RETRY_SECONDS, then raised as MessageNotSent, which names the
    session and says the message may be stored. A message too large for the budget is stored and returned
    with ``error`` set.
    A "summary" request may call the provider once to write the summary (a separate request, on the record).
    ``expect_meta``: session meta values (None: absent) this request was decided from, such as the settings
    the API took from the session; if one changed, the store writes nothing and raises MetaChanged.
    """
    if not request.user_text or not request.user_text.strip():
        raise EmptyMessage()
    if len(request.user_text) > MAX_MESSAGE_CHARS:
        raise MessageTooLarge(len(request.user_text))
    session_id = validate_session_id(request.session_id) if request.session_id else new_session_id()
    model = request.model or provider.default_model
    api_choice = None
    if request.pinned_turns is not None or request.left_out_turns is not None:
        # Checked before the message is stored: a choice naming turns that do not exist is a 400, not a turn.
        # Only a request that names turns pays this read; the choice is then saved by the turn's opening call.
        api_choice = choice_from_turns(store.get_history(session_id), store.turn_count(session_id),
                                       pinned=request.pinned_turns or (), left_out=request.left_out_turns or (),
                                       strategy=request.strategy)
    system_text = request.system_prompt
    system = [{"role": "system", "content": system_text}] if system_text.strip() else []
    # The prompt is stored once per distinct text; each turn record keeps only its hash.
    prompt = {META_SYSTEM_PROMPT: system_text, **({system_meta_field(system_text): system_text} if system else {})}
    # How this turn was made, so a reload, a shared link and the API show the session under its own settings.
    prompt |= SessionSettings(strategy=request.strategy, budget=request.budget, reserve=request.reserve_tokens,
                              provider=provider.name, model=model, system_prompt=system_text).meta_fields()
    if api_choice is not None:
        prompt[META_MANUAL_CHOICE] = api_choice.to_meta()
    if request.tools:  # kept once per distinct set, like the system prompt; each record keeps only the hash
        prompt[tools_meta_field(request.tools)] = tools_to_meta(request.tools)
    # One atomic call reads the history and meta, stores the message with the next turn number (two tabs
    # never share one), sets the prompt and refreshes the session's TTL. The message is stamped here, so a
    # retry after an attempt whose answer was lost (the server died between storing and replying) resends
    # the same id and gets the first attempt's number back: nothing is stored twice. The runner (this
    # process) lets a reader tell a turn still running from one whose server was killed.
    message = stamp({"role": "user", "content": request.user_text, "meta": {META_RUNNER: runner_token()}})
    try:
        opened = retry_store_write(lambda: store.open_turn(session_id, message, meta=prompt,
                                                           newest_record=request.strategy == "cache-aware",
                                                           expect=expect_meta),
                                   seconds=SAVE_RETRY_SECONDS)
    except StoreUnavailable as exc:
        raise MessageNotSent(exc, session_id=session_id, turn=None) from exc
    history, meta, user, turn = opened.history, opened.meta, opened.message, opened.turn
    cut = _previous_cut(opened.newest_record) if request.strategy == "cache-aware" else None
    choice = api_choice if api_choice is not None else ManualChoice.from_meta(meta)
    prepared = PreparedTurn(store=store, provider=provider, request=request, session_id=session_id,
                            turn=turn, model=model, user_message=user, payload=[], payload_ids=[],
                            trim=None, history_positions=id_positions(history), meta_written=prompt)
    chain = chain_for(provider, request.server_state, meta, history)
    if chain.note:
        prepared.notes.append(chain.note)
    note = ignored_note(choice, strategy=request.strategy, server_side=chain.live)
    if note:
        prepared.notes.append(note)
    prepared.choice = choice if choice and not note else ManualChoice()
    try:
        _build(prepared, system, history, chain, meta=meta, cut=cut)
    except ContextOverflowError as exc:
        prepared.error = exc
        prepared.payload, prepared.payload_ids = wire_payload([*system, user])
        return prepared
    if chain.live:  # if the server forgot the chain, deltas() re-sends everything within this turn
        # A lost conversation is replaced by a new one holding the history; a lost response id is dropped.
        full = ServerChain(chain.mode, seed=chain.mode == "conversation")
        prepared.resend = lambda again: _build(again, system, history, full, meta=meta, cut=cut)
    return prepared


def run_turn(store: SessionStore, provider: Provider, request: TurnRequest) -> TurnResult:
    """start_turn + drain the stream + finish, for callers that don't show deltas as they arrive."""
    return start_turn(store, provider, request).finish()


def _build(prepared: PreparedTurn, system: list[dict[str, Any]], history: Sequence[Message], chain: ServerChain,
           *, meta: Mapping[str, str], cut: str | None) -> None:
    """Fill ``prepared`` with the payload, its trim (or compaction) and the provider options for ``chain``."""
    request, user = prepared.request, prepared.user_message
    # With a live server-side chain only the new message goes over the wire; the server holds the rest.
    candidates = [*system, user] if chain.live else [*system, *history, user]
    prepared.compaction = None
    tool_tokens = _tool_tokens(prepared)
    if request.strategy == "summary" and not chain.live:
        summarizer = request.summarizer or summarizer_for(prepared.provider, model=prepared.model,
                                                          prices=request.prices)
        summary, note = usable_summary(meta, history)
        if note:
            prepared.notes.append(note)
        # The tool definitions are sent with every payload: held like the reply's reserve, never compacted.
        compaction = compact_history(candidates, request.budget, model=prepared.model, summarizer=summarizer,
                                     summary=summary, reserve_tokens=request.reserve_tokens + tool_tokens,
                                     low_water=request.low_water)
        if compaction.compacted and compaction.summary is not None:
            after = compaction.trim.kept[compaction.trim.kept.index(compaction.summary.message()) + 1:]
            store_summary(prepared.store, prepared.session_id, compaction.summary,
                          next_id=next((m.get("id") for m in after if m.get("role") == "user"), None))
        prepared.compaction, trim = compaction, compaction.trim
    else:
        choice = prepared.choice if request.strategy in MANUAL_STRATEGIES and not chain.live else None
        trim = trim_history(candidates, request.budget, model=prepared.model, strategy=request.strategy,
                            reserve_tokens=request.reserve_tokens, low_water=request.low_water, cut=cut,
                            choice=choice, tool_tokens=tool_tokens)
        if choice:
            prepared.notes.extend(trim.notes)
    conversation = chain.conversation_id
    kept = trim.kept
    prepared.server_held_ids = held_by_chain(prepared.store, prepared.session_id, history,
                                             prepared.history_positions) if chain.live else []
    if chain.seed:  # a new conversation holding the history this turn would have re-sent
        held = [m for m in kept if m.get("id") != user["id"] and m.get("role") not in SYSTEM_ROLES]
        conversation, note = open_conversation(prepared.provider, held)
        if note:
            prepared.notes.append(note)
        if conversation:  # the conversation holds that history now: only the new message goes with the request
            seeded = {id(m) for m in held}
            kept = [m for m in kept if id(m) not in seeded]
            prepared.server_held_ids = [i for m in held if isinstance(i := m.get("id"), str)]
    prepared.chain = replace(chain, conversation_id=conversation) if conversation or chain.live \
        else ServerChain(chain.mode)
    prepared.previous_response_id = chain.previous_response_id if chain.live else None
    prepared.trim = trim
    prepared.payload, prepared.payload_ids = wire_payload(kept)
    numbers = turn_numbers(candidates, prepared.turn) if prepared.provider.capabilities.names_turns else None
    prepared.options = _options(prepared, numbers, conversation=conversation,
                                comparison=previous_reply_id(history, provider=prepared.provider.name,
                                                             model=prepared.model))


def previous_reply_id(history: Sequence[Message], *, provider: str, model: str) -> str | None:
    """The id of the newest stored reply from this provider and model: the request the provider compares this
    one with to say why its cache missed. Only the newest reply counts: one from another provider in between
    changed the history, which the comparison would only report again."""
    for message in reversed(history):
        if message.get("role") != "assistant":
            continue
        meta = message.get("meta")
        if not isinstance(meta, Mapping):
            return None
        same = meta.get("provider") == provider and meta.get("model") == model
        response = meta.get("response_id")
        return response if same and isinstance(response, str) else None
    return None


def prompt_cache_key(session_id: str) -> str:
    """A stable key per session (hashed, so the provider never sees our session ids): OpenAI routes requests
    with one key to the same cache."""
    return "history-lab-" + hashlib.sha256(session_id.encode()).hexdigest()[:16]


def _tool_tokens(prepared: PreparedTurn) -> int:
    try:
        return count_tool_tokens(prepared.request.tools, prepared.model)
    except EncodingUnavailable:
        return 0  # the trimmer falls back to chars/4 too; the record says the count is an estimate


def _options(prepared: PreparedTurn, numbers: Mapping[str | None, int] | None, *, conversation: str | None,
             comparison: str | None = None) -> ProviderOptions:
    request, capabilities = prepared.request, prepared.provider.capabilities
    return ProviderOptions(
        previous_response_id=prepared.previous_response_id,
        conversation_id=conversation,
        prompt_caching=request.prompt_caching and capabilities.prompt_caching,
        truncation=request.truncation if capabilities.server_side_history else None,
        compaction_threshold=request.compaction_threshold if capabilities.server_compaction else None,
        strict=request.strict,
        context_window=request.budget,
        turn_numbers=None if numbers is None else tuple(numbers.get(i, 0) for i in prepared.payload_ids),
        current_turn=prepared.turn,
        prompt_cache_key=prompt_cache_key(prepared.session_id),
        cache_comparison_id=comparison,
        tools=request.tools,
    )


def turn_numbers(messages: Sequence[Message], current_turn: int) -> dict[str | None, int]:
    """The turn number of every message id: user messages count back from the current turn.

    Counting back (not forward from 1) stays right after the store's cap removed the oldest messages.
    A message belongs to the turn of the user message before it; system messages (no id) and summary
    messages are turn 0, and a summary (a user-role message) is not counted as a user turn.
    """
    def is_turn_start(message: Message) -> bool:
        return message.get("role") == "user" and not _is_summary(message)

    number = current_turn - sum(1 for m in messages if is_turn_start(m))
    numbers: dict[str | None, int] = {}
    for message in messages:
        if is_turn_start(message):
            number += 1
        message_id = message.get("id")
        if isinstance(message_id, str):
            zero = message.get("role") in SYSTEM_ROLES or _is_summary(message)
            numbers[message_id] = 0 if zero else max(1, number)
    return numbers


def _is_summary(message: Message) -> bool:
    meta = message.get("meta")
    return isinstance(meta, Mapping) and "summary" in meta


def _previous_cut(newest: Mapping[str, Any] | None) -> str | None:
    """The cache-aware cut of the previous turn, so the payload's prefix (and the provider's cache) survives."""
    if newest is None:
        return None
    previous = TurnRecord.from_json(newest)
    return previous.cut if previous.strategy == "cache-aware" else None


def turn_records(store: SessionStore, session_id: str) -> list[TurnRecord]:
    """The session's turn records, typed (odd fields read as missing, never raised)."""
    return read_turns(store.get_turns(session_id))


def save_reply_again(store: SessionStore, result: TurnResult) -> TurnResult:
    """Write what a store outage kept from being saved ("Save again"). Raises ReplyNotSaved if still down.

    The turn record is marked ``reply_saved_late`` so the timeline can show that the reply was saved
    after the turn. Safe to call twice: writes are idempotent by message id and turn number.
    """
    if not result.unsaved:
        return result
    record = result.unsaved_record or result.record
    assistant = result.assistant_message
    if result.unsaved_reply is not None:
        record = replace(record, assistant_id=result.unsaved_reply["id"], error=None, error_type=None,
                         reply_saved_late=True)
    try:
        stored = store.close_turn(result.session_id, turn=result.turn, reply=result.unsaved_reply,
                                  record=record.to_json())
    except StoreUnavailable as exc:
        raise ReplyNotSaved(exc) from exc
    assistant = stored if stored is not None else assistant
    error = None if isinstance(result.error, ReplyNotSaved) else result.error
    return replace(result, assistant_message=assistant, record=record, error=error, unsaved_reply=None,
                   unsaved_record=None)
