"""POST /api/chat echoes the body it sent only when asked (``include``); every answer says where to fetch it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2 as httpx

from lib.api import api_app
from lib.core import Settings
from lib.services import store_handle
from tests.support.api_inprocess import inprocess_api


def get(path: str) -> Any:
    async def send() -> Any:
        transport = httpx.ASGITransport(app=api_app(), client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            response = await http.get(path.removeprefix("/api"))
            assert response.status_code == 200, response.text[:300]
            return response.json()

    return asyncio.run(send())


def test_the_request_body_is_left_out_unless_asked_for_and_requestUrl_fetches_it(monkeypatch):
    post = inprocess_api(monkeypatch)
    plain = post("/chat", {"message": "Hello"}).json()
    assert "request" not in plain
    sid = plain["sessionId"]
    assert plain["requestUrl"] == f"/api/chat/{sid}/turns/1/request"
    asked = post("/chat", {"message": "Again", "sessionId": sid, "include": ["request"]}).json()
    assert asked["request"]["messages"][-1]["content"] == "Again"
    assert [m["content"] for m in asked["request"]["messages"]] == ["Hello", plain["reply"], "Again"]
    # The echoed body is the one the turn's own route rebuilds: one body, whichever way it is read.
    assert get(asked["requestUrl"])["request"] == asked["request"]


def test_the_streamed_done_event_carries_the_body_when_asked(monkeypatch):
    post = inprocess_api(monkeypatch)
    events = post("/chat", {"message": "Hello", "stream": True, "include": ["request"]}).text
    done = next(json.loads(line.removeprefix("data: ")) for block in events.split("\n\n") if "event: done" in block
                for line in block.splitlines() if line.startswith("data: "))
    assert done["request"]["messages"] == [{"role": "user", "content": "Hello"}]


def test_an_unknown_part_is_400_before_anything_is_stored(monkeypatch):
    post = inprocess_api(monkeypatch)
    store = store_handle(Settings.from_env()).store
    before = len(store.list_sessions())
    response = post("/chat", {"message": "Hello", "include": ["requests"]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_field" and "'requests'" in error["message"] and "'request'" in error["message"]
    assert post("/chat", {"message": "Hi", "include": "request"}).status_code == 400  # a list, not a string
    assert len(store.list_sessions()) == before
