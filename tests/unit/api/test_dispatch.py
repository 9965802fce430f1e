"""Only HTTP requests under /api/ go to the API application; everything else reaches the page server."""

from __future__ import annotations

import asyncio
from typing import Any

from lib.api.dispatch import ApiFirst, under_api


def _route(scope_type: str, path: str) -> str:
    reached: list[str] = []

    async def pages(scope: Any, receive: Any, send: Any) -> None:
        reached.append("pages")

    async def api(scope: Any, receive: Any, send: Any) -> None:
        reached.append("api")

    dispatch = ApiFirst(pages)
    dispatch.api = api  # type: ignore[assignment]
    asyncio.run(dispatch({"type": scope_type, "path": path, "headers": []}, None, None))
    return reached[0]


def test_http_under_api_goes_to_the_api_and_the_rest_to_the_pages():
    assert _route("http", "/api/chat") == "api"
    assert _route("http", "/api/health") == "api"
    assert _route("http", "/api") == "pages"  # not a route of the API: the pages answer as before
    assert _route("http", "/apinotes") == "pages"
    assert _route("http", "/") == "pages"
    assert _route("websocket", "/api/chat") == "pages"  # the API has no websocket: the pages' server decides
    assert _route("lifespan", "") == "pages"
    assert under_api("/api/x") and not under_api("/api-docs")
