"""The /api application in this process, on the memory store and the offline model: for tests that need
many requests or patch lib (a live server runs in another process, where a patch cannot reach)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2 as httpx

from lib.api import api_app

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
