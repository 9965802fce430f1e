"""A local HTTP server that speaks the OpenAI and Anthropic wire protocols, for the real SDKs to call.

    server = FakeLLM().start()
    server.openai_url      # "http://127.0.0.1:PORT/v1"  (Chat Completions, Responses, Conversations, counts)
    server.anthropic_url   # "http://127.0.0.1:PORT"     (the SDK adds /v1/messages, /v1/messages/count_tokens)
    server.gemini_url      # "http://127.0.0.1:PORT/"    (google-genai adds v1/models/M:streamGenerateContent,
                           #                              :countTokens, and v1/cachedContents)
    server.requests        # every request: {"path", "query", "headers", "body", "raw"} (body: the parsed JSON,
                           # raw: the bytes as sent)
    server.fail_next(429, retry_after=7)             # the next request gets this error (each API's error JSON)
    server.fail_next(400, code="previous_response_not_found", message="...")
    server.fail_next("malformed")                    # ... or an SSE line that is not JSON
    server.fail_next("hang", seconds=3)              # ... or no answer for a while
    server.fail_next("response.failed", code="server_error", message="...")   # Responses: failed mid-stream
    server.fail_next("refusal", message="...")       # the model declines (each API's own way)
    server.fail_next("html")                         # a 200 whose body is a web page (a wrong base URL, a proxy)
    server.fail_next("usage", usage={"prompt_tokens": "lots"})  # Chat Completions: these usage fields instead
    server.fail_next("slow", delay=0.5)              # the normal reply, each event after the first this late
    server.fail_next(404)                            # e.g. /tokenize on a server that is not llama.cpp
    server.cache_diagnostics = {...}                 # OpenAI: prompt_cache_diagnostics in every reply
    server.gemini_caches                             # Gemini: explicit cache name -> the tokens it holds
    server.fail_next("usage", usage={"prompt_tokens_details": OMIT})   # a local server that sends no cache figure
    server.stop()

llama.cpp's server extras are there too: ``/apply-template`` renders the messages with a ChatML-like template
(``render_template``) and ``/tokenize`` splits a text on whitespace, one token each, plus one for BOS when
``add_special`` is true, so a test can state the exact count.

Replies are deterministic: "Fake reply to N messages." streamed word by word (in one JSON object when a
Chat Completions request does not ask for a stream), with usage numbers derived
from the request so tests can check the parsing. Server-side state is modelled too: each response id and
conversation remembers how many tokens of context it holds, so a chained request is billed for all of it,
and ``context_management`` compacts the context once it passes the threshold.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from lib.core import Settings
from lib.providers import Provider, get_provider
from tests.support.fake_llm_events import (
    CACHED,
    OMIT,
    anthropic_count,
    anthropic_events,
    chat_completion,
    chat_events,
    gemini_cache,
    gemini_count,
    gemini_events,
    responses_count,
    responses_events,
)
from tests.support.loopback import LoopbackServer

__all__ = ["CACHED", "OMIT", "FakeLLM"]


class FakeLLM(LoopbackServer):
    # TCP_NODELAY on each connection. Headers and body go out in separate writes: with Nagle on, a client
    # reusing the connection (keep-alive JSON answers) would wait ~40 ms for its delayed ACK.
    nodelay = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.cache_diagnostics: dict[str, Any] | None = None
        self._failures: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # Server-side state: tokens of context held by each response id and each conversation.
        self.contexts: dict[str, int] = {}
        self.gemini_caches: dict[str, int] = {}

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gemini_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def handle_post(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        self._handle(handler, json.loads(raw or b"{}"), raw)

    def fail_next(self, kind: int | str, **options: Any) -> None:
        with self._lock:
            self._failures.append({"kind": kind, **options})

    def bodies(self, path_end: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"].endswith(path_end)]

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids)}"

    # -- dispatch --------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], raw: bytes = b"") -> None:
        path, _, query = handler.path.partition("?")
        with self._lock:
            headers = {k.lower(): v for k, v in handler.headers.items()}
            self.requests.append({"path": path, "query": query, "headers": headers, "body": body, "raw": raw})
            failure = self._failures.pop(0) if self._failures else None
        gemini = ":" in path.rsplit("/", 1)[-1] or path.endswith("/cachedContents")
        api = "anthropic" if "/messages" in path else "gemini" if gemini else "openai"
        if failure and failure["kind"] == "hang":
            time.sleep(failure.get("seconds", 5))
            failure = None
        if failure and isinstance(failure["kind"], int):
            return _error(handler, failure["kind"], api=api, retry_after=failure.get("retry_after"),
                          message=failure.get("message"), code=failure.get("code"), reason=failure.get("reason"))
        scripted = failure["kind"] if failure else None
        if scripted == "html":
            return _html(handler, failure.get("body") if failure else None)
        json_reply = self._json_reply(path, body)
        if json_reply is not None:
            return _json(handler, json_reply)
        with self._lock:  # the state of chains and conversations changes one request at a time
            events = self._events(path, body, scripted, failure or {})
        if events is None:
            return _error(handler, 404, api=api)
        if isinstance(events, tuple):  # a state error (unknown previous response, conversation or thread)
            return _error(handler, events[0], api=api, message=events[1], code=events[2])
        delay = float(failure.get("delay", 1.0)) if scripted == "slow" and failure else 0.0
        _sse(handler, events, malformed=scripted == "malformed", delay=delay, stopping=self._stopping)

    def _json_reply(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if path.endswith("/chat/completions") and body.get("stream") is not True:
            return chat_completion(body)
        if path.endswith(":countTokens"):
            return gemini_count(body)
        if path.endswith("/cachedContents"):
            cache, tokens = gemini_cache(body, self.new_id("cachedContents/cache"))
            with self._lock:
                self.gemini_caches[cache["name"]] = tokens
            return cache
        if path == "/apply-template":
            return {"prompt": render_template(body)}
        if path == "/tokenize":
            words = str(body.get("content") or "").split()
            return {"tokens": list(range(len(words) + (1 if body.get("add_special") else 0)))}
        if path.endswith("/messages/count_tokens"):
            return anthropic_count(body)
        if path.endswith("/responses/input_tokens"):
            return responses_count(body, self.contexts)
        if path.endswith("/conversations"):
            conversation = self.new_id("conv")
            with self._lock:
                self.contexts[conversation] = 10 * len(body.get("items") or [])
            return {"id": conversation, "object": "conversation", "created_at": 1, "metadata": {}}
        return None

    def _events(self, path: str, body: dict[str, Any], scripted: str | None,
                failure: dict[str, Any]) -> list[tuple[str | None, Any]] | tuple[int, str, str] | None:
        if path.endswith("/chat/completions"):
            return chat_events(body, refusal=failure.get("message") if scripted == "refusal" else None,
                               diagnostics=self.cache_diagnostics,
                               usage=failure.get("usage") if scripted == "usage" else None)
        if path.endswith("/responses"):
            return responses_events(body, self, scripted=scripted, failure=failure)
        if path.endswith("/messages"):
            return anthropic_events(body, self, refusal=failure.get("message") if scripted == "refusal" else None)
        if path.endswith(":streamGenerateContent"):
            model = path.rsplit("/", 1)[-1].split(":")[0]
            if body.get("cachedContent") and any(k in body for k in ("systemInstruction", "tools", "toolConfig")):
                # The real API's rule: what a cache holds may not be set again beside it.
                return 400, ("CachedContent can not be used with GenerateContent request setting "
                             "system_instruction, tools or tool_config."), "INVALID_ARGUMENT"
            return gemini_events(body, self.gemini_caches, model=model, refusal=scripted == "refusal",
                                 usage=failure.get("usage") if scripted == "usage" else None)
        return None


def render_template(body: dict[str, Any]) -> str:
    """The fake llama.cpp chat template: the tools as JSON, then one "<|im_start|>role content <|im_end|>" per
    message, then the assistant's opening."""
    parts = [f"<|tools|> {json.dumps(body['tools'])} <|end_tools|>"] if body.get("tools") else []
    parts += [f"<|im_start|>{m.get('role')} {m.get('content') or ''} <|im_end|>" for m in body.get("messages") or []]
    return "\n".join([*parts, "<|im_start|>assistant"])


def _json(handler: BaseHTTPRequestHandler, body: dict[str, Any], status: int = 200) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _sse(handler: BaseHTTPRequestHandler, events: list[tuple[str | None, Any]], *, malformed: bool,
         delay: float = 0.0, stopping: threading.Event | None = None) -> None:
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("cache-control", "no-cache")
    handler.send_header("connection", "close")
    handler.end_headers()
    handler.close_connection = True
    for n, (name, data) in enumerate(events):
        if delay and n and stopping is not None and stopping.wait(delay):
            return  # the server is stopping: end the stream unfinished
        line = f"event: {name}\n" if name else ""
        if malformed and n == 1:
            handler.wfile.write(f"{line}data: {{this is not json\n\n".encode())
            break
        payload = data if isinstance(data, str) else json.dumps(data)
        try:
            handler.wfile.write(f"{line}data: {payload}\n\n".encode())
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the client went away (or was killed) mid-stream


def _html(handler: BaseHTTPRequestHandler, body: str | None) -> None:
    """A 200 with a web page, as a wrong base URL or a proxy's login page answers."""
    data = (body or "<!doctype html><html><head><title>Sign in</title></head>"
            "<body><form action=/login>Please sign in</form></body></html>").encode()
    handler.send_response(200)
    handler.send_header("content-type", "text/html; charset=utf-8")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


GEMINI_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def _error(handler: BaseHTTPRequestHandler, status: int, *, api: str, retry_after: int | None = None,
           message: str | None = None, code: str | None = None, reason: str | None = None) -> None:
    """Each API's error JSON. Gemini's carries a RetryInfo detail on 429 (no retry-after header) and an
    ErrorInfo ``reason`` when given (a bad key is 400 with reason API_KEY_INVALID)."""
    message = message or {401: "Incorrect API key provided", 429: "Rate limit reached for requests",
                          400: "Invalid model name", 404: "Not found"}.get(status, "The server had an error")
    if api == "anthropic":
        kind = {401: "authentication_error", 429: "rate_limit_error", 400: "invalid_request_error",
                404: "not_found_error"}.get(status, "api_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    elif api == "gemini":
        details: list[dict[str, Any]] = []
        if reason:
            details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                            "domain": "googleapis.com"})
        if status == 429 and retry_after is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"})
            retry_after = None
        body = {"error": {"code": status, "message": message, "status": GEMINI_STATUS.get(status, "UNKNOWN"),
                          "details": details}}
    else:
        body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    if retry_after is not None:
        handler.send_header("retry-after", str(retry_after))
    handler.end_headers()
    handler.wfile.write(data)


TEST_KEY = "sk-test-SECRET123"  # the tests check that this never shows in a body, error, record or log


def wire_provider(name: str, fake: FakeLLM, *, api_key: str | None = TEST_KEY, **options: Any) -> Provider:
    """A real provider (the real SDK) pointed at ``fake``, with the SDK's retries off so requests count once."""
    url = {"anthropic": fake.anthropic_url, "gemini": fake.gemini_url}.get(name, fake.openai_url)
    return get_provider(name, Settings(), api_key=api_key, base_url=url, max_retries=0, **options)
