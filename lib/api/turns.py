"""POST /api/chat: one turn through ``lib.chat`` (the chat page's own functions), as JSON or as SSE.

The user message is stored by ``start_turn`` before the provider is called; ``finish`` stores the reply and
the turn record, or records the turn as failed. So a 502 loses nothing, and a client that disconnects
mid-stream leaves a turn recorded as interrupted, exactly as a reload does in the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

from lib.api.bodies import ChatBody, check_reserve
from lib.api.errors import ApiError, error_body
from lib.api.responses import sse_event
from lib.chat import PreparedTurn, TurnRequest, TurnResult, payload_counts, start_turn
from lib.config import Settings
from lib.pricing import estimate_cost
from lib.providers import PROVIDER_NAMES, Provider, default_provider_name
from lib.services import provider_for, store_handle
from lib.session_settings import SessionSettings
from lib.sessions import validate_session_id
from lib.trimming import STRATEGIES, ContextOverflowError, payload_problems

MAX_OUTPUT_TOKENS = 1024  # the chat page's reply budget, so both paths send the same request


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


def begin(body: ChatBody, settings: Settings) -> PreparedTurn:
    """Validate, store the user message and build the payload (blocking: run it in a worker thread)."""
    store = store_handle(settings).store
    # A session goes on with the settings its last turn ran with (lib.session_settings); what the body
    # names wins, and a new session takes the server's defaults.
    stored = SessionSettings.from_meta(store.get_meta(validate_session_id(body.session_id))) \
        if body.session_id else None
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
        max_output_tokens=MAX_OUTPUT_TOKENS,
    )
    return start_turn(store, provider, request)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    # Turn records are dicts today and typed records (lib.records) soon; read either.
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _cost(model: str, meta: Mapping[str, Any]) -> float | None:
    if isinstance(meta.get("cost"), int | float):
        return float(meta["cost"])
    usage = meta.get("usage") or {}
    if not isinstance(usage.get("input_tokens"), int):
        return None
    read = int(usage.get("cache_read_tokens") or 0)
    write = int(usage.get("cache_write_tokens") or 0)
    uncached = usage["input_tokens"] - (read + write if usage.get("cache_in_input", True) else 0)
    return estimate_cost(model, input_tokens=max(0, uncached), output_tokens=usage.get("output_tokens"),
                         cache_read_tokens=read, cache_write_tokens=write)


def response_object(prepared: PreparedTurn, result: TurnResult) -> dict[str, Any]:
    """The seed's ``{sessionId, reply, usage}`` plus what the lab knows about the turn."""
    record = result.record
    counts = {name: _get(record, name) for name in ("estimate", "exact", "encoding", "approximate")}
    if counts["estimate"] is None:
        counts = payload_counts(prepared.payload, prepared.model)
    assistant = result.assistant_message or {}
    meta = assistant.get("meta") or {}
    return {
        "sessionId": result.session_id,
        "turn": result.turn,
        "reply": result.text,
        "usage": meta.get("usage"),
        "sent": prepared.sent_ids,
        "dropped": prepared.dropped_ids,
        "tokens": counts,
        "cost": _cost(prepared.model, meta),
        "provider": meta.get("provider") or _get(record, "provider"),
        "model": prepared.model,
        "strategy": prepared.request.strategy,
        "timings": meta.get("timings"),
        "problems": list(_get(record, "problems", None) or payload_problems(prepared.payload)),
        "userMessageId": result.user_message.get("id"),
        "assistantMessageId": assistant.get("id"),
    }


class TurnFailed(Exception):
    """The turn's own error (already recorded), with what the client needs to retry or keep the reply."""

    def __init__(self, error: Exception, extra: dict[str, Any]) -> None:
        super().__init__(str(error))
        self.error = error
        self.extra = extra


def finish_or_raise(prepared: PreparedTurn) -> dict[str, Any]:
    """Send and store (blocking). Raises TurnFailed (the turn recorded first) so the caller maps its status."""
    result = prepared.finish()
    if result.error is not None:
        raise TurnFailed(result.error, failed_turn_extra(prepared, result))
    return response_object(prepared, result)


def failed_turn_extra(prepared: PreparedTurn, result: TurnResult | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"sessionId": prepared.session_id, "turn": prepared.turn}
    if result is not None and result.unsaved:
        extra["reply"] = result.text  # the store is down: the client holds the only copy of the reply
    return extra


def check_sendable(prepared: PreparedTurn) -> None:
    """A payload that could not be built (message over the budget) is recorded and answered with a 400."""
    if isinstance(prepared.error, ContextOverflowError):
        prepared.finish()
        raise prepared.error


async def sse_stream(prepared: PreparedTurn) -> AsyncIterator[str]:
    """``delta`` events as text arrives, then ``done`` (the JSON response object) or ``error``.

    The turn runs in one worker thread (the provider SDKs are blocking); events cross to the event loop
    through a queue. If the client goes away, the worker stops after the next delta and ``finish``
    records the turn as interrupted.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def put(kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is shutting down
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def work() -> None:
        try:
            deltas = prepared.deltas()
            for delta in deltas:
                put("delta", delta)
                if stop.is_set():
                    close = getattr(deltas, "close", None)  # a generator: ends the provider stream
                    if close is not None:
                        close()  # finish() then records the turn as interrupted
                    break
            result = prepared.finish()
            if result.error is not None:
                put("error", error_body(result.error, **failed_turn_extra(prepared, result)))
            else:
                put("done", response_object(prepared, result))
        except Exception as exc:  # noqa: BLE001 - e.g. the store failed while saving the reply
            put("error", error_body(exc, **failed_turn_extra(prepared)))

    worker = loop.run_in_executor(None, work)
    try:
        while True:
            kind, value = await queue.get()
            if kind == "delta":
                yield sse_event("delta", {"text": value})
                continue
            if kind == "error":
                status, body = value
                yield sse_event("error", {**body, "status": status})
            else:
                yield sse_event("done", value)
            break
    finally:
        stop.set()
        if worker.done():
            worker.result()
