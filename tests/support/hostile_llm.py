"""A hostile OpenAI-compatible server: Chat Completions answered the ways a broken or malicious provider can,
with a count of the connections it holds open, so a test can tell that its client really let go.

    server = HostileLLM().start()
    server.openai_url          # "http://127.0.0.1:PORT/v1", for OPENAI_COMPATIBLE_BASE_URL
    server.open_connections    # TCP connections accepted and not yet closed
    server.requests            # chat requests received (a refused turn must not add one)
    server.wait_closed(10)     # True once no connection is open, within 10 s
    server.stop()

The request's ``model`` names the behaviour (anything else answers ``server.mode``, "normal" by default):
- ``slow``: one token every ``interval`` seconds (1 s), for ``tokens`` tokens (enough to outlast any test);
- ``endless``: tokens as fast as ``pace`` allows, forever;
- ``empty``: empty deltas (``"content": ""``) every ``pace`` seconds, forever;
- ``silent``: the stream's headers, then nothing at all;
- ``huge``: ``huge_chars`` characters in deltas of ``delta_chars``, then a finish reason and usage;
- ``malformed``: one delta, then an event that is not JSON;
- ``html``: a 200 whose body is a web page;
- ``odd-usage``: a normal reply whose usage figures are ``odd_usage`` (strings, negatives, 10**18);
- ``normal``: "Hostile server says hi." with a finish reason and usage.

"Forever" is bounded: every stream ends after ``max_stream_s`` (120 s), so a test that fails cannot leave a
stream running. While it waits between events, the handler watches its socket, so a client that hangs up
is noticed at once, not at the next write.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.loopback import LoopbackServer

MODES = ("normal", "slow", "endless", "empty", "silent", "huge", "malformed", "html", "odd-usage")


class ClientGone(Exception):
    """The client closed the connection."""


class HostileLLM(LoopbackServer):
    def __init__(self, *, mode: str = "normal") -> None:
        super().__init__()
        self.mode = mode
        self.interval = 1.0  # slow: seconds between tokens
        self.tokens = 10_000  # slow: how many tokens before it would finish
        self.pace = 0.01  # endless / empty: seconds between events (bounded so the test machine stays usable)
        self.huge_chars = 5_000_000
        self.delta_chars = 1024
        self.odd_usage: dict[str, Any] = {"prompt_tokens": "lots", "completion_tokens": -1_000_000,
                                          "total_tokens": 10**18}
        self.max_stream_s = 120.0
        self.requests = 0
        self.models: list[str] = []
        self._open = 0
        self._streams = 0
        self._lock = threading.Lock()
        self._closed = threading.Condition(self._lock)

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def open_streams(self) -> int:
        return self._streams

    def wait_closed(self, timeout: float) -> bool:
        """Wait until no connection is open; False if some still are after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._closed:
            while self._open:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._closed.wait(left)
        return True

    def wait_streams(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` streams have been opened in all (requests received)."""
        deadline = time.monotonic() + timeout
        while self.requests < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def handle_post(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        try:
            self._answer(handler, json.loads(raw or b"{}"))
        except (ClientGone, BrokenPipeError, ConnectionResetError, OSError):
            handler.close_connection = True

    def make_server(self, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
        hostile = self

        class Server(ThreadingHTTPServer):  # counts open connections, for wait_closed()
            daemon_threads = True

            def process_request_thread(self, request: Any, client_address: Any) -> None:
                with hostile._lock:
                    hostile._open += 1
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    with hostile._closed:
                        hostile._open -= 1
                        hostile._closed.notify_all()

        return Server(("127.0.0.1", 0), handler)

    # -- answers -----------------------------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = str(body.get("model") or "")
        with self._lock:
            self.requests += 1
            self.models.append(model)
        mode = model if model in MODES else self.mode
        if mode == "html":
            return _send(handler, 200, "text/html; charset=utf-8",
                         b"<!doctype html><html><body><form action=/login>Please sign in</form></body></html>")
        _start_stream(handler)
        with self._lock:
            self._streams += 1
        try:
            self._stream(handler, mode, model)
        finally:
            with self._lock:
                self._streams -= 1

    def _stream(self, handler: BaseHTTPRequestHandler, mode: str, model: str) -> None:
        stream = _Stream(handler, model, stopping=self._stopping, until=time.monotonic() + self.max_stream_s)
        if mode == "slow":
            for n in range(self.tokens):
                if n:
                    stream.wait(self.interval)
                stream.delta(f"tok{n} ")
        elif mode in ("endless", "empty"):
            n = 0
            while True:
                stream.delta("" if mode == "empty" else f"tok{n} ")
                stream.wait(self.pace)
                n += 1
        elif mode == "silent":
            stream.wait(self.max_stream_s)
        elif mode == "huge":
            block = ("x" * (self.delta_chars - 1) + "\n")[: self.delta_chars]
            for _ in range(self.huge_chars // self.delta_chars):
                stream.delta(block)
        elif mode == "malformed":
            stream.delta("Hello")
            stream.raw(b"data: {this is not json\n\n")
            return
        else:
            stream.delta("Hostile server says hi.")
        usage = self.odd_usage if mode == "odd-usage" else {"prompt_tokens": 10, "completion_tokens": 5,
                                                            "total_tokens": 15}
        stream.finish(usage)


class _Stream:
    """One SSE response; every write and wait raises ClientGone once the client has hung up."""

    def __init__(self, handler: BaseHTTPRequestHandler, model: str, *, stopping: threading.Event,
                 until: float) -> None:
        self.handler = handler
        self.base = {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1, "model": model}
        self.stopping = stopping
        self.until = until

    def wait(self, seconds: float) -> None:
        """Sleep, but return early (by raising) when the client hangs up or the stream's time is over."""
        end = min(time.monotonic() + seconds, self.until)
        sock = self.handler.connection
        while True:
            left = end - time.monotonic()
            if self.stopping.is_set() or time.monotonic() >= self.until:
                raise ClientGone()
            if left <= 0:
                return
            readable, _, _ = select.select([sock], [], [], min(left, 0.1))
            if readable and _hung_up(sock):
                raise ClientGone()

    def raw(self, data: bytes) -> None:
        if self.stopping.is_set() or time.monotonic() >= self.until:
            raise ClientGone()
        self.handler.wfile.write(data)
        self.handler.wfile.flush()

    def delta(self, text: str) -> None:
        chunk = {**self.base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
        self.raw(f"data: {json.dumps(chunk)}\n\n".encode())

    def finish(self, usage: dict[str, Any]) -> None:
        last = {**self.base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.raw(f"data: {json.dumps(last)}\n\n".encode())
        self.raw(f"data: {json.dumps({**self.base, 'choices': [], 'usage': usage})}\n\ndata: [DONE]\n\n".encode())


def _hung_up(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def _start_stream(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("cache-control", "no-cache")
    handler.send_header("connection", "close")  # one stream per connection: open connections = open streams
    handler.end_headers()
    handler.close_connection = True
    handler.wfile.flush()


def _send(handler: BaseHTTPRequestHandler, status: int, kind: str, data: bytes) -> None:
    handler.send_response(status)
    handler.send_header("content-type", kind)
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
