"""The HTTP API, served beside the pages by ``streamlit run app.py`` (see app.py and the README).

    app = st.App("app.py", middleware=[host_middleware(), api_first_middleware()])

``host_middleware`` refuses foreign Host headers on every route, Streamlit's own included;
``api_first_middleware`` serves everything under /api from the API application (lib.api.routes), past the
page server's own middleware (lib.api.dispatch). ``api_routes`` mounts the same application elsewhere
(in-process calls, tests). Nothing here imports streamlit.
"""

from __future__ import annotations

from lib.api.access import DEFAULT_ALLOWED_HOSTS, allowed_hosts, host_middleware, is_loopback, same_origin
from lib.api.bodies import MAX_BUDGET, MAX_CONTENT_CHARS, MAX_MESSAGES, MODEL_MAX_CHARS
from lib.api.dispatch import api_first_middleware
from lib.api.errors import error_body
from lib.api.inprocess import call_api
from lib.api.listener import nodelay_lifespan, nodelay_listeners
from lib.api.openapi import openapi_document
from lib.api.routes import API_PREFIX, ROUTES, api_app, api_routes

__all__ = [
    "API_PREFIX", "DEFAULT_ALLOWED_HOSTS", "MAX_BUDGET", "MAX_CONTENT_CHARS", "MAX_MESSAGES", "MODEL_MAX_CHARS",
    "ROUTES", "allowed_hosts", "api_app", "api_routes", "call_api", "error_body", "host_middleware",
    "is_loopback", "openapi_document", "same_origin", "nodelay_lifespan", "nodelay_listeners",
    "api_first_middleware",
]
