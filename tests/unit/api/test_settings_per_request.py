"""One request builds its settings once: the access check and the route's handler share them."""

from __future__ import annotations

import asyncio

import httpx2 as httpx

from lib.api import api_app
from lib.core import Settings


def test_a_chat_turn_and_a_read_build_the_settings_once_each(monkeypatch):
    monkeypatch.delenv("HISTORY_LAB_API_TOKEN", raising=False)
    monkeypatch.setenv("HISTORY_LAB_STORE", "memory")
    monkeypatch.setenv("OFFLINE_DELAY", "0")
    calls: list[int] = []

    def settings() -> Settings:
        calls.append(1)
        return Settings.from_env()

    async def exchange() -> list[int]:
        transport = httpx.ASGITransport(app=api_app(settings), client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            counts = []
            for method, path, body in (("POST", "/chat", {"message": "Hi"}), ("GET", "/health", None)):
                before = len(calls)
                response = await http.request(method, path, json=body)
                assert response.status_code == 200, response.text[:300]
                counts.append(len(calls) - before)
            return counts

    assert asyncio.run(exchange()) == [1, 1]
