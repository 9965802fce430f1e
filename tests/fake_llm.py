"""A local HTTP server that speaks the OpenAI and Anthropic wire protocols, for the real SDKs to call.

    server = FakeLLM().start()
    server.openai_url      # "http://127.0.0.1:PORT/v1"  (Chat Completions and Responses)
    server.anthropic_url   # "http://127.0.0.1:PORT"     (the SDK adds /v1/messages)
    server.requests        # every request: {"path", "headers", "body"} (body is the parsed JSON)
    server.fail_next(429, retry_after=7)   # the next request gets this error (each API's error JSON)
    server.fail_next("malformed")          # ... or an SSE line that is not JSON
    server.fail_next("hang", seconds=3)    # ... or no answer for a while
    server.stop()

Replies are deterministic: "Fake reply to N messages." streamed word by word, with usage numbers
derived from the request so tests can check the parsing.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CACHED = 3  # cached / cache-read tokens every usage report claims


class FakeLLM:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._failures: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._responses = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake._handle(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def fail_next(self, kind: int | str, **options: Any) -> None:
        with self._lock:
            self._failures.append({"kind": kind, **options})

    def bodies(self, path_end: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"].endswith(path_end)]

    # -- responses -------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self._lock:
            headers = {k.lower(): v for k, v in handler.headers.items()}
            self.requests.append({"path": handler.path, "headers": headers, "body": body})
            failure = self._failures.pop(0) if self._failures else None
        anthropic = handler.path.endswith("/messages")
        if failure and failure["kind"] == "hang":
            time.sleep(failure.get("seconds", 5))
            failure = None
        if failure and isinstance(failure["kind"], int):
            return _error(handler, failure["kind"], anthropic=anthropic, retry_after=failure.get("retry_after"))
        malformed = bool(failure and failure["kind"] == "malformed")
        if handler.path.endswith("/chat/completions"):
            events = _chat_events(body)
        elif handler.path.endswith("/responses"):
            with self._lock:
                self._responses += 1
                events = _responses_events(body, f"resp_{self._responses}")
        elif anthropic:
            events = _anthropic_events(body)
        else:
            return _error(handler, 404, anthropic=False)
        _sse(handler, events, malformed=malformed)


def _words(body: dict[str, Any], key: str) -> list[str]:
    text = f"Fake reply to {len(body.get(key) or [])} messages."
    return [w + " " for w in text.split()[:-1]] + [text.split()[-1]]


def _chat_events(body: dict[str, Any]) -> list[tuple[str | None, Any]]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": body.get("model")}
    events: list[tuple[str | None, Any]] = [
        (None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": word},
                                     "finish_reason": None}]})
        for word in _words(body, "messages")
    ]
    prompt = 10 * len(body.get("messages") or [])
    usage = {"prompt_tokens": prompt, "completion_tokens": 5, "total_tokens": prompt + 5,
             "prompt_tokens_details": {"cached_tokens": CACHED}}
    events.append((None, {**base, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return events


def _responses_events(body: dict[str, Any], response_id: str) -> list[tuple[str | None, Any]]:
    response = {"id": response_id, "object": "response", "created_at": 1, "model": body.get("model"),
                "status": "in_progress", "output": []}
    events: list[tuple[str | None, Any]] = [("response.created", {"type": "response.created",
                                                                  "sequence_number": 0, "response": response})]
    for n, word in enumerate(_words(body, "input"), start=1):
        events.append(("response.output_text.delta", {
            "type": "response.output_text.delta", "sequence_number": n, "item_id": "msg_1",
            "output_index": 0, "content_index": 0, "delta": word, "logprobs": []}))
    prompt = 10 * len(body.get("input") or [])
    usage = {"input_tokens": prompt, "output_tokens": 5, "total_tokens": prompt + 5,
             "input_tokens_details": {"cached_tokens": CACHED, "cache_write_tokens": 0},
             "output_tokens_details": {"reasoning_tokens": 0}}
    events.append(("response.completed", {"type": "response.completed", "sequence_number": 99,
                                          "response": {**response, "status": "completed", "usage": usage}}))
    return events


def _anthropic_events(body: dict[str, Any]) -> list[tuple[str | None, Any]]:
    usage = {"input_tokens": 10 * len(body.get("messages") or []), "output_tokens": 1,
             "cache_creation_input_tokens": 7, "cache_read_input_tokens": CACHED}
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "content": [], "model": body.get("model"),
            "stop_reason": None, "stop_sequence": None, "usage": usage}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    ]
    for word in _words(body, "messages"):
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": word}}))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 5}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


def _sse(handler: BaseHTTPRequestHandler, events: list[tuple[str | None, Any]], *, malformed: bool) -> None:
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("cache-control", "no-cache")
    handler.send_header("connection", "close")
    handler.end_headers()
    for n, (name, data) in enumerate(events):
        line = f"event: {name}\n" if name else ""
        if malformed and n == 1:
            handler.wfile.write(f"{line}data: {{this is not json\n\n".encode())
            break
        payload = data if isinstance(data, str) else json.dumps(data)
        handler.wfile.write(f"{line}data: {payload}\n\n".encode())
        handler.wfile.flush()
    handler.close_connection = True


def _error(handler: BaseHTTPRequestHandler, status: int, *, anthropic: bool, retry_after: int | None = None) -> None:
    message = {401: "Incorrect API key provided", 429: "Rate limit reached for requests",
               400: "Invalid model name", 404: "Not found"}.get(status, "The server had an error")
    if anthropic:
        kind = {401: "authentication_error", 429: "rate_limit_error", 400: "invalid_request_error"}.get(
            status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    if retry_after is not None:
        handler.send_header("retry-after", str(retry_after))
    handler.end_headers()
    handler.wfile.write(data)
