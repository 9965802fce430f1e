"""The HTTP API, served beside the pages by ``streamlit run app.py`` (see app.py and the README).

    app = st.App("app.py", routes=api_routes(), middleware=[host_middleware(), uncompressed_api_middleware()])

``api_routes`` mounts the /api application (lib.api.routes); ``host_middleware`` refuses foreign Host
headers on every route, Streamlit's own included; ``uncompressed_api_middleware`` keeps the server's gzip
step off the API's answers (lib.api.compression). Nothing here imports streamlit.
"""

from __future__ import annotations

from lib.api.access import DEFAULT_ALLOWED_HOSTS, allowed_hosts, host_middleware, is_loopback, same_origin
from lib.api.bodies import MAX_BUDGET, MAX_CONTENT_CHARS, MAX_MESSAGES, MODEL_MAX_CHARS
from lib.api.compression import uncompressed_api_middleware
from lib.api.errors import error_body
from lib.api.inprocess import call_api
from lib.api.listener import nodelay_lifespan, nodelay_listeners
from lib.api.openapi import openapi_document
from lib.api.routes import API_PREFIX, ROUTES, api_app, api_routes

__all__ = [
    "API_PREFIX", "DEFAULT_ALLOWED_HOSTS", "MAX_BUDGET", "MAX_CONTENT_CHARS", "MAX_MESSAGES", "MODEL_MAX_CHARS",
    "ROUTES", "allowed_hosts", "api_app", "api_routes", "call_api", "error_body", "host_middleware",
    "is_loopback", "openapi_document", "same_origin", "nodelay_lifespan", "nodelay_listeners",
    "uncompressed_api_middleware",
]
