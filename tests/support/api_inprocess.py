"""The /api application in this process, on the memory store and the offline model: for tests that need
many requests or patch lib (a live server runs in another process, where a patch cannot reach)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import uvicorn
from starlette.applications import Starlette

from lib.api import api_app, api_routes

Post = Callable[[str, Any], httpx.Response]


def inprocess_api(monkeypatch: Any) -> Post:
    """``post(path, body)`` POSTs ``body`` as JSON to ``/api{path}`` from a loopback client."""
    monkeypatch.delenv("HISTORY_LAB_API_TOKEN", raising=False)
    monkeypatch.setenv("HISTORY_LAB_STORE", "memory")
    monkeypatch.setenv("OFFLINE_DELAY", "0")
    app = api_app()

    async def send(path: str, body: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=120) as http:
            return await http.post(path, json=body)

    return lambda path, body: asyncio.run(send(path, body))


@contextlib.contextmanager
def served_api(timeout: float = 30.0) -> Iterator[str]:
    """The /api application served by uvicorn on a free loopback port in this process, for tests that need a
    real socket (streams read as they arrive, clients that hang up); yields its base URL (``.../api``)."""
    app = Starlette(routes=api_routes())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        server.should_exit = True
        thread.join(timeout)
