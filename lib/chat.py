"""One chat turn, end to end: the seed's POST route as a function, with every step visible.

    prepared = start_turn(store, provider, TurnRequest(user_text="Hi", session_id=sid))
    for delta in prepared.deltas():     # stream these (e.g. into st.write_stream)
        ...
    result = prepared.finish()          # stores the reply and the turn record
    if result.error: ...                # a typed exception, never raised out of the stream

``run_turn`` does all three steps at once. The user message is stored *before* the provider is called,
so a failing provider loses nothing. The stored history is never trimmed: trimming only shapes the
payload, and the turn record says which message ids were sent and which were dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lib.providers import ProviderError
from lib.sessions import new_session_id, validate_session_id
from lib.tokens import (
    WIRE_KEYS,
    EncodingUnavailable,
    choose_encoding,
    count_chat_tokens,
    estimate_chat_tokens,
)
from lib.trimming import ContextOverflowError, TrimResult, trim_history

log = logging.getLogger(__name__)

# Session meta keys written here; the inspector reads them to rebuild payloads.
META_SYSTEM_PROMPT = "system_prompt"
META_PREVIOUS_RESPONSE = "previous_response_id"
# About 125k tokens of English: beyond every model's window, and a sign of a pasted file gone wrong.
MAX_MESSAGE_CHARS = 500_000
# The assistant message that previous_response_id produced: the server-side chain is only valid while
# that message is still the newest reply (another provider may have answered in between).
META_PREVIOUS_RESPONSE_MESSAGE = "previous_response_message_id"


class EmptyMessage(ValueError):
    """The user message is empty or only whitespace; there is nothing to send."""

    def __init__(self) -> None:
        super().__init__("The message is empty. Type something to send.")


class MessageTooLarge(ValueError):
    """Larger than any context window we could send; refused before anything is stored."""

    def __init__(self, chars: int) -> None:
        super().__init__(
            f"The message has {chars:,} characters; the limit is {MAX_MESSAGE_CHARS:,}. "
            "Shorten it or split it over several messages."
        )


class TurnInterrupted(RuntimeError):
    """The reply stream was closed before it finished (the page was reloaded or stopped)."""

    def __init__(self) -> None:
        super().__init__("The reply was interrupted before it finished. Your message is saved; send again.")


@dataclass(frozen=True)
class TurnRequest:
    """What the user asked for; ``budget`` is the trimmer's max_tokens, ``reserve_tokens`` is kept free."""

    user_text: str
    session_id: str | None = None
    system_prompt: str = ""
    strategy: str = "turns"
    budget: int = 80_000
    reserve_tokens: int = 0
    model: str | None = None
    max_output_tokens: int = 1024


@dataclass
class TurnResult:
    """The outcome of one turn. ``error`` is set (and ``assistant_message`` is None) when it failed."""

    session_id: str
    turn: int
    user_message: dict[str, Any]
    assistant_message: dict[str, Any] | None
    record: dict[str, Any]
    payload: list[dict[str, Any]]
    trim: TrimResult | None
    request: dict[str, Any] | None = None
    text: str = ""
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class PreparedTurn:
    """A turn whose user message is stored and whose payload is built, ready to stream.

    Iterate ``deltas()`` once, then call ``finish()``. ``error`` is already set when the payload could
    not be built (the message alone is larger than the budget); ``deltas()`` then yields nothing.
    """

    store: Any
    provider: Any
    request: TurnRequest
    session_id: str
    turn: int
    model: str
    user_message: dict[str, Any]
    payload: list[dict[str, Any]]
    payload_ids: list[str | None]
    trim: TrimResult | None
    previous_response_id: str | None = None
    error: Exception | None = None
    _reply: Any = field(default=None, repr=False)
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
            self._reply = self.provider.stream(
                self.payload,
                model=self.model,
                max_tokens=self.request.max_output_tokens,
                previous_response_id=self.previous_response_id,
                dropped=len(self.dropped_ids),
            )
            for delta in self._reply:
                self._chunks.append(delta)
                yield delta
        except GeneratorExit:
            raise  # the consumer stopped; finish() records the turn as interrupted
        except Exception as exc:  # noqa: BLE001 - every failure becomes a typed result, not a traceback
            if not isinstance(exc, ProviderError):
                log.exception("Unexpected error from provider %s", _provider_name(self.provider))
            self.error = exc
        self._completed = True

    def finish(self) -> TurnResult:
        """Store the reply (if any) and the turn record. Safe to call twice; drains the stream if needed."""
        if self._result is not None:
            return self._result
        if not self._started:
            for _ in self.deltas():
                pass
        if not self._completed and self.error is None:
            self.error = TurnInterrupted()
        assistant = None
        if self.error is None:
            assistant = self._store_reply()
        record = self._record(assistant)
        self.store.append_turn(self.session_id, record)
        self._result = TurnResult(
            session_id=self.session_id, turn=self.turn, user_message=self.user_message,
            assistant_message=assistant, record=record, payload=self.payload, trim=self.trim,
            request=getattr(self._reply, "request", None), text="".join(self._chunks), error=self.error,
        )
        return self._result

    def _store_reply(self) -> dict[str, Any]:
        reply = self._reply
        timings = getattr(reply, "timings", None)
        meta = {
            "provider": _provider_name(self.provider),
            "model": self.model,
            "usage": _as_dict(getattr(reply, "usage", None)),
            "timings": {
                "ttft": getattr(timings, "first_token_s", None),
                "total": getattr(timings, "total_s", None),
            },
        }
        response_id = getattr(reply, "response_id", None)
        if response_id:
            meta["response_id"] = response_id
        text = getattr(reply, "text", None) or "".join(self._chunks)
        (assistant,) = self.store.append_messages(
            self.session_id, {"role": "assistant", "content": text, "meta": meta}
        )
        if getattr(self.provider, "server_side_history", False) and response_id:
            self.store.set_meta(self.session_id, **{
                META_PREVIOUS_RESPONSE: response_id, META_PREVIOUS_RESPONSE_MESSAGE: assistant["id"],
            })
        return assistant

    def _record(self, assistant: Mapping[str, Any] | None) -> dict[str, Any]:
        usage = getattr(self._reply, "usage", None) if assistant is not None else None
        overflow = isinstance(self.error, ContextOverflowError)
        return {
            "turn": self.turn,
            "ts": time.time(),
            "sent_ids": [] if overflow else self.sent_ids,
            "dropped_ids": self.dropped_ids,
            **payload_counts(self.payload, self.model),
            "provider_input_tokens": getattr(usage, "input_tokens", None),
            "provider_output_tokens": getattr(usage, "output_tokens", None),
            "provider_prompt_tokens": getattr(usage, "prompt_total", None),
            "strategy": self.request.strategy,
            "budget": self.request.budget,
            "reserve": self.request.reserve_tokens,
            "provider": _provider_name(self.provider),
            "model": self.model,
            "system_prompt": self.request.system_prompt,
            "previous_response_id": self.previous_response_id,
            "user_id": self.user_message["id"],
            "assistant_id": assistant["id"] if assistant else None,
            "error": str(self.error) if self.error else None,
            "error_type": type(self.error).__name__ if self.error else None,
        }


def start_turn(store: Any, provider: Any, request: TurnRequest) -> PreparedTurn:
    """Validate, store the user message, and build the (trimmed) payload. Nothing is sent yet.

    Raises EmptyMessage, MessageTooLarge, InvalidSessionId, or the store's StoreError; nothing is
    stored in the first three cases. A message too large for the budget is stored and returned with ``error`` set.
    """
    if not request.user_text or not request.user_text.strip():
        raise EmptyMessage()
    if len(request.user_text) > MAX_MESSAGE_CHARS:
        raise MessageTooLarge(len(request.user_text))
    session_id = validate_session_id(request.session_id) if request.session_id else new_session_id()
    model = request.model or _default_model(provider)
    history = store.get_history(session_id)
    turn = store.turn_count(session_id) + 1
    (user,) = store.append_messages(session_id, {"role": "user", "content": request.user_text})
    store.set_meta(session_id, **{META_SYSTEM_PROMPT: request.system_prompt})

    system = [{"role": "system", "content": request.system_prompt}] if request.system_prompt.strip() else []
    previous = _previous_response(store, provider, session_id, history)
    # With a live server-side chain only the new message goes over the wire; the server holds the rest.
    candidates = [*system, user] if previous else [*system, *history, user]
    prepared = PreparedTurn(store=store, provider=provider, request=request, session_id=session_id,
                            turn=turn, model=model, user_message=user, payload=[], payload_ids=[],
                            trim=None, previous_response_id=previous)
    try:
        trim = trim_history(candidates, request.budget, model=model, strategy=request.strategy,
                            reserve_tokens=request.reserve_tokens)
    except ContextOverflowError as exc:
        prepared.error = exc
        prepared.payload, prepared.payload_ids = wire_payload([*system, user])
        return prepared
    prepared.trim = trim
    prepared.payload, prepared.payload_ids = wire_payload(trim.kept)
    return prepared


def run_turn(store: Any, provider: Any, request: TurnRequest) -> TurnResult:
    """start_turn + drain the stream + finish, for callers that don't show deltas as they arrive."""
    return start_turn(store, provider, request).finish()


def _previous_response(
    store: Any, provider: Any, session_id: str, history: Sequence[Mapping[str, Any]]
) -> str | None:
    if not getattr(provider, "server_side_history", False) or not history:
        return None
    meta = store.get_meta(session_id)
    response_id = meta.get(META_PREVIOUS_RESPONSE)
    # Only chain when the newest stored reply is the one that response produced; otherwise the server's
    # copy of the conversation is missing messages, and the full history must be re-sent.
    if response_id and history[-1].get("id") == meta.get(META_PREVIOUS_RESPONSE_MESSAGE):
        return response_id
    return None


def wire_payload(messages: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str | None]]:
    """The messages as the API sees them (wire keys only; id, ts and meta are ours), and their ids."""
    payload = [{k: m[k] for k in WIRE_KEYS if m.get(k) is not None} for m in messages]
    return payload, [m.get("id") for m in messages]


def payload_counts(payload: Sequence[Mapping[str, Any]], model: str) -> dict[str, Any]:
    """The turn record's token fields: the seed's estimate, the exact count (None without an encoding)."""
    choice = choose_encoding(model)
    try:
        exact: int | None = count_chat_tokens(payload, model)
    except EncodingUnavailable:
        exact = None
    return {"estimate": estimate_chat_tokens(payload), "exact": exact, "encoding": choice.name,
            "approximate": choice.approximate}


def _default_model(provider: Any) -> str:
    info = getattr(provider, "info", None)
    model = getattr(provider, "default_model", None) or getattr(info, "default_model", None)
    if not model:
        raise ValueError(f"No model given and provider {_provider_name(provider)!r} has no default model.")
    return str(model)


def _provider_name(provider: Any) -> str:
    return str(getattr(provider, "name", None) or type(provider).__name__)


def _as_dict(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = dataclasses.asdict(value)
    elif isinstance(value, Mapping):
        data = dict(value)
    else:
        data = {k: v for k, v in vars(value).items() if not k.startswith("_")}
    if hasattr(value, "prompt_total"):
        data["prompt_total"] = value.prompt_total
    return data
