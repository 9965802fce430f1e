"""The API's answers go out uncompressed, so a turn does not pay for gzip at level 9 on the loopback.

Why this exists: the server's own middleware (Streamlit's, over Starlette's GZipMiddleware) gzips every
answer over 500 bytes at compression level 9 for a client that sends ``Accept-Encoding: gzip``, and httpx,
requests and browsers send it by default. A turn's answer at 2,000 messages is about 73 kB (its ``sent``
id list); level 9 made it 41 kB and the turn 2.3-2.6 ms slower (bench/vs_seed.py's model, p50 13.0 -> 15.1
ms), on a connection that is usually the loopback. A proxy in front of the app (README, "Exposing the app
safely") can compress for remote clients at a level of its own choosing.

    st.App(..., middleware=[host_middleware(), uncompressed_api_middleware()])

It must come before Streamlit's middleware (user middleware does: it wraps the server's own), which then
sees a request without ``Accept-Encoding`` and leaves the answer as it is. The pages are untouched.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from lib.api.routes import API_PREFIX


def under_api(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


class UncompressedApi:
    """ASGI middleware: a request under /api reaches the compression step without ``Accept-Encoding``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and under_api(scope.get("path", "")):
            headers = [(name, value) for name, value in scope.get("headers", []) if name != b"accept-encoding"]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def uncompressed_api_middleware() -> Middleware:
    return Middleware(UncompressedApi)
