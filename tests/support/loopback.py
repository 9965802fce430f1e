"""The plumbing the test model servers share: a threaded HTTP server on 127.0.0.1 (a free port) that hands
each POST to the subclass, and stops at once.

    class MyServer(LoopbackServer):
        def handle_post(self, handler, raw): ...
    server = MyServer().start(); server.openai_url; server.stop()
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackServer:
    # Nagle off on each connection (see tests/support/fake_llm.py for why the fake model needs it).
    nodelay = False

    def __init__(self) -> None:
        self._stopping = threading.Event()  # set by stop(): wakes slow streams, so stop() returns at once
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def handle_post(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        raise NotImplementedError

    def make_server(self, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
        """The server object; a subclass may return its own ThreadingHTTPServer (to count connections, say)."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        return server

    def start(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = owner.nodelay

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                owner.handle_post(self, self.rfile.read(int(self.headers.get("content-length") or 0)))

        self._server = self.make_server(Handler)
        # A short poll interval so stop() returns at once instead of after the default 0.5 s.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
