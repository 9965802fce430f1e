"""Requests under /api go straight to the API application, past the page server's own middleware.

Why this exists: mounted as a route of ``st.App``, every API request went through Streamlit's middleware
for the pages: path checks for served files, session cookies, and gzip at level 9 for any client that
accepts it (httpx, requests and browsers do by default). The gzip step made a turn at 2,000 messages
2.3-2.6 ms slower, for an answer of 73 kB cut to 41 kB on what is usually the loopback. (The other layers
cost little: timestamps in the server showed no measurable change without them.) None of them does
anything for the API, which has its own access rule (lib.api.access) and JSON errors. A proxy in front of
the app can compress for remote clients.

    st.App(..., middleware=[host_middleware(settings), api_first_middleware(settings)])

User middleware wraps Streamlit's own, so this one sees a request first. Put it after the Host check, which
then still applies to the API.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from lib.api.routes import API_PREFIX, SettingsFactory, api_routes
from lib.core import Settings


def under_api(path: str) -> bool:
    return path.startswith(API_PREFIX + "/")


class ApiFirst:
    """ASGI middleware: HTTP requests under /api to the API application, everything else to ``app``."""

    def __init__(self, app: ASGIApp, settings_factory: SettingsFactory = Settings.from_env) -> None:
        self.app = app
        self.api = Router(routes=api_routes(settings_factory))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and under_api(scope.get("path", "")):
            await self.api(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def api_first_middleware(settings_factory: SettingsFactory = Settings.from_env) -> Middleware:
    return Middleware(ApiFirst, settings_factory=settings_factory)
