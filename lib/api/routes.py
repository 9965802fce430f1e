"""The /api routes: thin handlers over lib.chat, lib.tokens, lib.context and the shared store.

Each handler parses its body (lib.api.bodies), runs the blocking lib call in a worker thread, and answers
JSON; every failure becomes ``{"error": {"type", "message"}}`` through one wrapper (``_endpoint``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from lib.api import bodies, turns
from lib.api.access import SETTINGS_STATE, ApiAccess
from lib.api.errors import ApiError
from lib.api.openapi import openapi_document
from lib.api.pool import turn_pool
from lib.api.responses import MaskedJSON, json_error
from lib.chat import read_turn_body, with_interrupted
from lib.context import payload_problems, trim_history
from lib.core import SessionSettings, Settings
from lib.providers import StreamGuard
from lib.services import store_handle
from lib.sessions import validate_session_id
from lib.tokens import choose_encoding, count_chat_tokens, estimate_chat_tokens, message_breakdown

SettingsFactory = Callable[[], Settings]
Handler = Callable[[Request, Settings], Awaitable[Response]]


def _endpoint(settings_factory: SettingsFactory, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Settings for this request, and the one place where exceptions become JSON error responses."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            settings = getattr(request.state, SETTINGS_STATE, None) or settings_factory()
            return await handler(request, settings)
        except Exception as exc:  # noqa: BLE001 - mapped to a status by lib.api.errors, unknown ones logged
            return json_error(exc)

    return run


async def chat(request: Request, settings: Settings) -> Response:
    body = bodies.chat_body(await bodies.read_json(request))
    # A slot of the API's own turn pool, or a 503 at once: nothing stored, no provider request.
    slot = turn_pool(settings.max_concurrent_turns).acquire()
    streaming = False
    try:
        guard = StreamGuard(time_limit=settings.stream_time_limit)
        if not body.stream:
            return await turns.json_turn(request, body, settings, slot, guard)
        prepared, unsendable = await slot.run(turns.begin_checked, body, settings, guard)
        if unsendable is not None:  # the user message is stored; say which session holds it
            return json_error(unsendable, **turns.failed_turn_extra(prepared))
        streaming = True  # from here the response releases the slot, however the stream ends
        return turns.TurnStream(prepared, slot, guard, body.include)
    finally:
        if not streaming:
            slot.close()


def _session_id(request: Request) -> str:
    return validate_session_id(request.path_params["session_id"])


def _read_session(settings: Settings, session_id: str) -> dict[str, Any]:
    store = store_handle(settings).store
    if not store.exists(session_id):
        raise ApiError(404, "not_found", f"No session {session_id!r}: it never existed, was deleted, or expired "
                       "(sessions expire after SESSION_TTL seconds without use). Start one with POST /api/chat.")
    history, turns = store.get_history(session_id), store.get_turns(session_id)
    stored = SessionSettings.from_meta(store.get_meta(session_id))
    return {"sessionId": session_id, "messages": history, "turns": with_interrupted(history, turns),
            "ttl": store.ttl(session_id), "settings": stored.to_api() if stored else None}


async def get_session(request: Request, settings: Settings) -> Response:
    return MaskedJSON(await run_in_threadpool(_read_session, settings, _session_id(request)))


def _turn_request(settings: Settings, session_id: str, turn: int) -> dict[str, Any]:
    """The body turn ``turn`` sent, rebuilt through the adapter that sent it (as every page shows it)."""
    shown = read_turn_body(store_handle(settings).store, session_id, turn)
    if shown is None:
        raise ApiError(404, "not_found", f"Session {session_id!r} has no turn {turn}. GET /api/chat/{session_id} "
                       "lists its turns.")
    return {"sessionId": session_id, "turn": turn, "request": shown.body, "complete": shown.complete,
            "missing": list(shown.missing), "note": shown.note or None}


async def get_turn_request(request: Request, settings: Settings) -> Response:
    raw = request.path_params["turn"]
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise ApiError(400, "invalid_turn", f"The turn must be a positive whole number, not {raw[:20]!r}.")
    return MaskedJSON(await run_in_threadpool(_turn_request, settings, _session_id(request), int(raw)))


async def delete_session(request: Request, settings: Settings) -> Response:
    session_id = _session_id(request)
    await run_in_threadpool(store_handle(settings).store.clear_history, session_id)
    return MaskedJSON({"message": "Session cleared", "sessionId": session_id})


def _count(items: list[dict[str, Any]], model: str) -> dict[str, Any]:
    choice = choose_encoding(model)
    rows = message_breakdown(items, model)
    exact = None if any(r.exact is None for r in rows) else count_chat_tokens(items, model)
    return {
        "model": model, "encoding": choice.name, "approximate": choice.approximate,
        "messages": [{"index": r.index, "id": r.id, "role": r.role, "chars": r.chars, "estimate": r.estimate,
                      "exact": r.exact} for r in rows],
        "total": {"estimate": estimate_chat_tokens(items), "exact": exact},
        "note": None if exact is not None else f"The {choice.name} encoding could not be loaded; estimates only.",
    }


async def tokens(request: Request, settings: Settings) -> Response:
    body = await bodies.read_json(request)
    bodies.check_fields(body, ("messages", "model"))
    items = bodies.messages(body)
    model = bodies.model(body, bodies.DEFAULT_COUNT_MODEL)
    return MaskedJSON(await run_in_threadpool(_count, items, model))


def _trim(items: list[dict[str, Any]], *, budget: int, strategy: str, model: str, reserve: int,
          cut: Any) -> dict[str, Any]:
    # Messages without an id get a stand-in (ids are not counted), so kept/dropped map back to indexes.
    tagged = [{**m, "id": m.get("id") or f"__index_{i}"} for i, m in enumerate(items)]
    index_of = {m["id"]: i for i, m in enumerate(tagged)}
    options: dict[str, Any] = {"model": model, "strategy": strategy, "reserve_tokens": reserve}
    if cut is not None:
        options["cut"] = cut  # cache-aware: keep the previous turn's cut while the payload fits
    result = trim_history(tagged, budget, **options)

    def listing(part: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"index": index_of[m["id"]], "id": items[index_of[m["id"]]].get("id")} for m in part]

    return {
        "kept": listing(result.kept), "dropped": listing(result.dropped),
        "tokensBefore": result.tokens_before, "tokensAfter": result.tokens_after, "budget": result.budget,
        "strategy": result.strategy, "counter": result.counter, "notes": list(result.notes),
        "problems": payload_problems(result.kept), "cut": getattr(result, "cut", None),
    }


async def trim(request: Request, settings: Settings) -> Response:
    body = await bodies.read_json(request)
    bodies.check_fields(body, ("messages", "budget", "strategy", "model", "reserve", "cut"))
    items = bodies.messages(body)
    budget = bodies.token_count("budget", bodies.field(body, "budget", int, settings.default_budget))
    reserve = bodies.token_count("reserve", bodies.field(body, "reserve", int, 0), minimum=0)
    if reserve >= budget:
        raise ApiError(400, "invalid_field", f"'reserve' ({reserve}) must be smaller than 'budget' ({budget}).")
    strategy = bodies.strategy(bodies.field(body, "strategy", str, "turns"))
    model = bodies.model(body, bodies.DEFAULT_COUNT_MODEL)
    result = await run_in_threadpool(functools.partial(_trim, items, budget=budget, strategy=strategy, model=model,
                                                       reserve=reserve, cut=body.get("cut")))
    return MaskedJSON(result)


def _health(settings: Settings) -> Response:
    handle = store_handle(settings)
    answers = bool(handle.store.ping())
    store = {"kind": handle.kind, "label": handle.label, "answers": answers}
    if not answers:
        return MaskedJSON({"error": {"type": "store_unavailable", "message": "The store does not answer PING."},
                           "store": store}, status_code=503)
    return MaskedJSON({"status": "ok", "store": store})


async def health(request: Request, settings: Settings) -> Response:
    return await run_in_threadpool(_health, settings)


async def openapi(request: Request, settings: Settings) -> Response:
    return MaskedJSON(openapi_document())


async def _http_error(request: Request, exc: Exception) -> Response:
    # Unknown /api paths and wrong methods answer in the same JSON shape as every other error.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    kind = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    if status == 404:
        detail = f"No API route {request.url.path}. The routes are listed at GET /api/openapi.json."
    elif status == 405:
        allowed = (getattr(exc, "headers", None) or {}).get("Allow", "")
        detail = f"{request.method} is not allowed on {request.url.path}; use {allowed or 'another method'}."
    else:
        detail = str(getattr(exc, "detail", exc))
    return json_error(ApiError(status, kind, detail))


# (path under /api, method, handler): the OpenAPI test compares this table with openapi.json.
ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("/chat", "POST", chat),
    ("/chat/{session_id}", "GET", get_session),
    ("/chat/{session_id}", "DELETE", delete_session),
    ("/chat/{session_id}/turns/{turn}/request", "GET", get_turn_request),
    ("/tokens", "POST", tokens),
    ("/trim", "POST", trim),
    ("/health", "GET", health),
    ("/openapi.json", "GET", openapi),
)


def api_app(settings_factory: SettingsFactory = Settings.from_env) -> Starlette:
    """The /api application: its routes, the access rule, and JSON errors for unknown paths."""
    routes = [Route(path, _endpoint(settings_factory, handler), methods=[method], name=f"{method} {path}")
              for path, method, handler in ROUTES]
    return Starlette(routes=routes, middleware=[Middleware(ApiAccess, settings_factory=settings_factory)],
                     exception_handlers={HTTPException: _http_error})


API_PREFIX = "/api"


def api_routes(settings_factory: SettingsFactory = Settings.from_env) -> list[BaseRoute]:
    """The /api application mounted at /api: for lib.api.dispatch, in-process calls and tests."""
    return [Mount(API_PREFIX, app=api_app(settings_factory), name="api")]
