"""Only requests under /api lose Accept-Encoding on the way to the server's gzip step; the pages keep it."""

from __future__ import annotations

import asyncio
from typing import Any

from lib.api.compression import UncompressedApi, under_api


def _seen(path: str) -> list[tuple[bytes, bytes]]:
    seen: dict[str, Any] = {}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    scope = {"type": "http", "path": path, "headers": [(b"host", b"127.0.0.1"), (b"accept-encoding", b"gzip")]}
    asyncio.run(UncompressedApi(inner)(scope, None, None))
    assert scope["headers"][1] == (b"accept-encoding", b"gzip")  # the caller's scope is left as it was
    return seen["headers"]


def test_api_requests_lose_accept_encoding_and_page_requests_keep_it():
    assert _seen("/api/chat") == [(b"host", b"127.0.0.1")]
    assert _seen("/api") == [(b"host", b"127.0.0.1")]
    assert (b"accept-encoding", b"gzip") in _seen("/static/js/index.js")
    assert (b"accept-encoding", b"gzip") in _seen("/apinotes")
    assert under_api("/api/health") and not under_api("/api-docs") and not under_api("/")
