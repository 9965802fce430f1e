"""POST /api/chat: one turn through ``lib.chat.conversation`` (the chat page's own functions), as JSON or as SSE.

The user message is stored by ``start_turn`` before the provider is called; ``finish`` stores the reply and
the turn record, or records the turn as failed. So a 502 loses nothing, and a client that disconnects
mid-stream leaves a turn recorded as interrupted, exactly as a reload does in the page.

Every turn runs on a slot of the API's own pool (lib.api.pool) under a ``StreamGuard``: when the client
leaves (SSE or JSON) the guard stops the stream and cuts the provider connection at once, and the stream's
total time is bounded by STREAM_TIME_LIMIT. The slot is freed only when the turn's worker has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from lib.api.bodies import ChatBody, check_reserve
from lib.api.errors import ApiError, error_body
from lib.api.pool import TurnSlot
from lib.api.responses import RenderedJSON, dumps, json_error, sse_event
from lib.chat import PreparedTurn, TurnInterrupted, TurnRequest, TurnResult, payload_counts, start_turn
from lib.context import STRATEGIES, ContextOverflowError, payload_problems
from lib.core import META_SETTINGS, SessionSettings, Settings, field_of, usage_cost, usage_from_json
from lib.providers import PROVIDER_NAMES, Provider, StreamGuard, StreamTimeLimit, default_provider_name
from lib.services import provider_for, store_handle
from lib.sessions import MetaChanged, validate_session_id

MAX_OUTPUT_TOKENS = 1024  # the chat page's reply budget, so both paths send the same request
# Past the time limit the guard cuts the provider connection and the worker records the failure; if it has
# not ended this much later (a provider that cannot be cut), the client is told without waiting for it.
GRACE_S = 10.0
log = logging.getLogger(__name__)


def provider_named(name: str | None, settings: Settings) -> Provider:
    """The provider the request names (or the server's default); 400 when unknown or not configured."""
    name = name or default_provider_name(settings)
    if name not in PROVIDER_NAMES:
        raise ApiError(400, "unknown_provider",
                       f"Unknown provider {name!r}. Choose one of: {', '.join(PROVIDER_NAMES)}.")
    provider = provider_for(name, settings)
    info = provider.info
    if not info.configured:
        # Checked before anything is stored: a request that can never be sent should not leave a message.
        raise ApiError(400, "provider_not_configured", f"{info.label} is not configured on this server. {info.hint}")
    return provider


# The settings field each session held when this process last opened a turn on it, keyed by (store, session):
# a hint that spares a turn the separate meta read. The turn's own opening call checks it (``expect``), so a
# stale hint costs one more call, never a turn run under settings the session no longer has.
_SEEN_SETTINGS: dict[tuple[int, str], str | None] = {}
_SEEN_LIMIT = 10_000
_SEEN_LOCK = threading.Lock()
# Each retry follows a settings change made by another writer between our read and our turn: a bound, not a
# number normal use reaches. The last attempt runs unchecked, as a turn did before the check existed.
SETTINGS_ATTEMPTS = 3


def _seen(key: tuple[int, str]) -> tuple[bool, str | None]:
    with _SEEN_LOCK:
        return key in _SEEN_SETTINGS, _SEEN_SETTINGS.get(key)


def _remember(key: tuple[int, str], raw: str | None) -> None:
    with _SEEN_LOCK:
        if len(_SEEN_SETTINGS) >= _SEEN_LIMIT:  # a bound, not an LRU: forgetting costs one meta read
            _SEEN_SETTINGS.clear()
        _SEEN_SETTINGS[key] = raw


def begin(body: ChatBody, settings: Settings, guard: StreamGuard) -> PreparedTurn:
    """Validate, store the user message and build the payload (blocking: run it on the turn's slot)."""
    store = store_handle(settings).store
    if not body.session_id:
        prepared = start_turn(store, *_turn_request(body, settings, guard, None))
    else:
        # A session goes on with the settings its last turn ran with (lib.session_settings). Decided from the
        # value this process saw there last (else read now), and the turn's opening call stores the message
        # only if the session still holds that value; if another writer changed it, decide again from what
        # it holds now.
        key = (id(store), validate_session_id(body.session_id))
        known, raw = _seen(key)
        if not known:
            raw = store.get_meta(key[1]).get(META_SETTINGS)
        for attempt in range(1, SETTINGS_ATTEMPTS + 1):
            try:
                prepared = start_turn(store, *_turn_request(body, settings, guard, raw),
                                      expect_meta={META_SETTINGS: raw} if attempt < SETTINGS_ATTEMPTS else None)
                break
            except MetaChanged as changed:
                raw = changed.meta.get(META_SETTINGS)
    _remember((id(store), prepared.session_id), prepared.meta_written.get(META_SETTINGS))
    prepared.guard = guard
    return prepared


def _turn_request(body: ChatBody, settings: Settings, guard: StreamGuard,
                  raw: str | None) -> tuple[Provider, TurnRequest]:
    """The provider and request for ``body`` on a session whose stored settings field is ``raw``: what the body
    names wins, a stored setting comes next, and a new session takes the server's defaults."""
    stored = SessionSettings.from_meta({META_SETTINGS: raw}) if raw is not None else None
    provider = provider_named(body.provider or (stored.provider if stored else None), settings)
    same_provider = stored is not None and stored.provider == provider.name
    budget = body.budget or (stored.budget if stored else settings.default_budget)
    reserve = body.reserve if body.reserve is not None else (stored.reserve if stored else 0)
    check_reserve(budget, reserve)
    request = TurnRequest(
        user_text=body.message, session_id=body.session_id,
        system_prompt=body.system if body.system is not None else (stored.system_prompt if stored else ""),
        strategy=body.strategy or (stored.strategy if stored else STRATEGIES[0]),
        budget=budget, reserve_tokens=reserve,
        model=body.model or (stored.model if stored and same_provider else None),
        max_output_tokens=MAX_OUTPUT_TOKENS, stream_time_limit=guard.time_limit,
        max_reply_chars=settings.max_reply_chars, pinned_turns=body.pinned, left_out_turns=body.left_out,
        tools=body.tools,
    )
    return provider, request


def _cost(model: str, meta: Mapping[str, Any]) -> float | None:
    if isinstance(meta.get("cost"), int | float):
        return float(meta["cost"])
    usage = usage_from_json(meta.get("usage"))
    return None if usage is None else usage_cost(usage, model)


def _problems(prepared: PreparedTurn, record: Any) -> Sequence[str]:
    # The record's list, even when empty: an empty list means checked and clean, not "work it out again".
    problems = field_of(record, "problems")
    return payload_problems(prepared.payload) if problems is None else problems


def response_object(prepared: PreparedTurn, result: TurnResult,
                    include: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The seed's ``{sessionId, reply, usage}`` plus what the lab knows about the turn; ``include`` names the
    optional parts (lib.api.bodies.ANSWER_PARTS) to add."""
    record = result.record
    counts = {name: field_of(record, name) for name in ("estimate", "exact", "encoding", "approximate")}
    counts["tools"] = field_of(record, "tool_tokens")
    if counts["estimate"] is None:
        counts = payload_counts(prepared.payload, prepared.model, prepared.request.tools)
    assistant = result.assistant_message or {}
    meta = assistant.get("meta") or {}
    answer = {
        "sessionId": result.session_id,
        "turn": result.turn,
        "reply": result.text,
        # The model's report of what it could see (the offline model), kept in the reply's meta, never re-sent.
        "report": list(meta.get("report") or []),
        "usage": meta.get("usage"),
        "sent": prepared.sent_ids,
        "dropped": prepared.dropped_ids,
        "pinned": list(prepared.trim.pinned_ids) if prepared.trim else [],
        "leftOut": list(prepared.trim.left_out_ids) if prepared.trim else [],
        "tokens": counts,
        "cost": _cost(prepared.model, meta),
        "provider": meta.get("provider") or field_of(record, "provider"),
        "model": prepared.model,
        "strategy": prepared.request.strategy,
        "timings": meta.get("timings"),
        "problems": list(_problems(prepared, record)),
        "notes": list(result.notes),
        "userMessageId": result.user_message.get("id"),
        "assistantMessageId": assistant.get("id"),
        # The body the adapter built and sent, as every page shows it: fetched from here, or echoed on request.
        "requestUrl": f"/api/chat/{result.session_id}/turns/{result.turn}/request",
        # Set when the reply reached MAX_REPLY_CHARS: the stored reply is cut there (see its meta).
        "truncated": {"atChars": meta["truncated_at"], "note": meta.get("truncated")}
        if meta.get("truncated_at") else None,
    }
    if "request" in include:
        answer["request"] = result.request
    return answer


class TurnFailed(Exception):
    """The turn's own error (already recorded), with what the client needs to retry or keep the reply."""

    def __init__(self, error: Exception, extra: dict[str, Any]) -> None:
        super().__init__(str(error))
        self.error = error
        self.extra = extra


def finish_or_raise(prepared: PreparedTurn, include: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Send and store (blocking). Raises TurnFailed (the turn recorded first) so the caller maps its status."""
    result = prepared.finish()
    if result.error is not None:
        raise TurnFailed(result.error, failed_turn_extra(prepared, result))
    return response_object(prepared, result, include)


def failed_turn_extra(prepared: PreparedTurn, result: TurnResult | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"sessionId": prepared.session_id, "turn": prepared.turn}
    if result is not None and result.request is not None:
        extra["request"] = result.request  # what was sent before the provider failed (none: never sent)
    if result is not None and result.unsaved:
        extra["reply"] = result.text  # the store is down: the client holds the only copy of the reply
    return extra


def check_sendable(prepared: PreparedTurn) -> None:
    """A payload that could not be built (message over the budget) is recorded and answered with a 400."""
    if isinstance(prepared.error, ContextOverflowError):
        prepared.finish()
        raise prepared.error


def begin_checked(body: ChatBody, settings: Settings, guard: StreamGuard) -> tuple[PreparedTurn, Exception | None]:
    """``begin`` then ``check_sendable`` in one call on the slot (one thread handoff, not two). ``begin``'s own
    errors propagate (nothing names a session yet); ``check_sendable``'s come back with the prepared turn, since
    the user message is stored and the answer says which session holds it."""
    prepared = begin(body, settings, guard)
    try:
        check_sendable(prepared)
    except Exception as exc:  # noqa: BLE001 - answered by the caller with the session and turn
        return prepared, exc
    return prepared, None


def finish_rendered(prepared: PreparedTurn, include: frozenset[str] = frozenset()) -> bytes:
    """``finish_or_raise`` and the masked JSON of its answer, both on the turn's thread: the answer of a long
    session is tens of kB (hundreds with its request body), and rendering it on the event loop would hold
    every other request."""
    return dumps(finish_or_raise(prepared, include)).encode("utf-8")


def turn_rendered(body: ChatBody, settings: Settings, guard: StreamGuard, started: list[PreparedTurn]) -> bytes:
    """A whole JSON turn on one slot thread: ``begin_checked``, then ``finish_rendered``: one handoff to the
    worker and one back, where a round trip through the event loop between the two cost about 0.25 ms.
    ``started`` receives the prepared turn as soon as it exists, for an answer given before the worker ends."""
    prepared, unsendable = begin_checked(body, settings, guard)
    started.append(prepared)
    if unsendable is not None:  # the user message is stored; the answer says which session holds it
        raise TurnFailed(unsendable, failed_turn_extra(prepared))
    return finish_rendered(prepared, body.include)


async def json_turn(request: Request, body: ChatBody, settings: Settings, slot: TurnSlot,
                    guard: StreamGuard) -> Response:
    """Open, send and store on the turn's slot; stop the provider when the client leaves or time runs out."""
    started: list[PreparedTurn] = []

    def extra() -> dict[str, Any]:
        return failed_turn_extra(started[0]) if started else {}

    work = slot.submit(turn_rendered, body, settings, guard, started)
    gone = asyncio.ensure_future(_client_gone(request.receive))
    limit = guard.time_limit
    either: set[asyncio.Future[Any]] = {work, gone}
    try:
        await asyncio.wait(either, timeout=None if limit is None else limit + GRACE_S,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not work.done():
        # The worker records the turn (interrupted, or failed on the time limit) when it ends.
        work.add_done_callback(_log_failure)
        if gone.done() and not gone.cancelled():
            guard.stop()
            return json_error(TurnInterrupted(), **extra())  # nobody is left to read it
        guard.expire()
        return json_error(StreamTimeLimit(limit or 0.0), **extra())
    try:
        return RenderedJSON(work.result())
    except TurnFailed as failed:  # 502 etc. with the session and turn, so the client can retry
        return json_error(failed.error, **failed.extra)
    except Exception as exc:  # noqa: BLE001 - e.g. the store failed while saving, or refused the message
        return json_error(exc, **extra())


async def _client_gone(receive: Receive) -> None:
    """Return when the client disconnects (the body is already read, so nothing else arrives)."""
    while (await receive())["type"] != "http.disconnect":
        await asyncio.sleep(0.05)  # a stray message: don't spin


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None and not isinstance(future.exception(), TurnFailed):
        log.error("A chat turn failed after its client had gone", exc_info=future.exception())


class TurnStream(StreamingResponse):
    """The SSE response of one turn. However it ends (finished, client gone, cancelled), the guard stops
    the provider, and the slot is released once the worker is done. If the client left before the stream
    began, the turn is still finished on its slot: the guard stops it before any provider request, and it is
    recorded as interrupted."""

    def __init__(self, prepared: PreparedTurn, slot: TurnSlot, guard: StreamGuard,
                 include: frozenset[str] = frozenset()) -> None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies must not buffer events
        super().__init__(sse_stream(prepared, slot, guard, include), media_type="text/event-stream",
                         headers=headers)
        self._prepared, self._slot, self._guard = prepared, slot, guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._guard.stop()  # harmless once the turn has finished
            if not self._slot.started:
                self._slot.submit(self._prepared.finish).add_done_callback(_log_failure)
            self._slot.close()


async def sse_stream(prepared: PreparedTurn, slot: TurnSlot, guard: StreamGuard,
                     include: frozenset[str] = frozenset()) -> AsyncIterator[str]:
    """``delta`` events as text arrives, then ``done`` (the JSON response object) or ``error``.

    The turn runs on its slot's thread (the provider SDKs are blocking); events cross to the event loop
    through a queue. If the client goes away, the generator is closed and ``TurnStream`` stops the guard,
    which cuts the provider connection; ``finish`` records the turn as interrupted.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is shutting down
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def work() -> None:
        try:
            for delta in prepared.deltas():
                put("delta", delta)
            result = prepared.finish()
            if result.error is not None:
                put("error", error_body(result.error, **failed_turn_extra(prepared, result)))
            else:
                put("done", response_object(prepared, result, include))
        except Exception as exc:  # noqa: BLE001 - e.g. the store failed while saving the reply
            put("error", error_body(exc, **failed_turn_extra(prepared)))

    slot.submit(work).add_done_callback(_log_failure)
    # A backstop only: the guard's own timer cuts the stream at the limit and the worker reports it.
    backstop = None if guard.time_limit is None else loop.time() + guard.time_limit + GRACE_S
    while True:
        try:
            kind, value = await asyncio.wait_for(queue.get(), None if backstop is None else backstop - loop.time())
        except TimeoutError:
            guard.expire()
            status, body = error_body(StreamTimeLimit(guard.time_limit or 0.0), **failed_turn_extra(prepared))
            yield sse_event("error", {**body, "status": status})
            return
        if kind == "delta":
            yield sse_event("delta", {"text": value})
            continue
        if kind == "error":
            status, body = value
            yield sse_event("error", {**body, "status": status})
        else:
            yield sse_event("done", value)
        return
