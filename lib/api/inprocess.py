"""Call the /api routes from inside this process, as a loopback client would over HTTP.

The Lesson page sends its "curl" requests this way: the same routes, middleware and store as a request from
a terminal, without depending on the address the browser used to reach the server.

    status, body = call_api("POST", "/api/chat", {"message": "Hello"}, settings_factory=settings)
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
from starlette.applications import Starlette

from lib.api.routes import SettingsFactory, api_routes

LOOPBACK_CLIENT = ("127.0.0.1", 40_000)


def call_api(method: str, path: str, body: Any = None, *, settings_factory: SettingsFactory,
             timeout: float = 60) -> tuple[int, Any]:
    """(status, JSON body) of one request to the /api application. ``path`` starts with /api."""
    settings = settings_factory()
    headers = {"Authorization": f"Bearer {settings.api_token}"} if settings.api_token else {}
    app = Starlette(routes=api_routes(settings_factory))

    async def send() -> tuple[int, Any]:
        transport = httpx2.ASGITransport(app=app, client=LOOPBACK_CLIENT)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=timeout,
                                      headers=headers) as client:
            response = await client.request(method, path, json=body)
            return response.status_code, response.json()

    return asyncio.run(send())
