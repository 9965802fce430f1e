"""Who may call the API, and which Host headers the whole server answers.

- ``ApiAccess`` (on /api only): with HISTORY_LAB_API_TOKEN set, every request needs
  ``Authorization: Bearer <token>`` (compared in constant time); without it, only loopback clients are
  answered, and anyone else gets a 403 that says how to open the API up safely. A request that carries an
  ``Origin`` other than the app's own (a web page on another site, or another port on this machine) gets a
  403 too: a page the user visits must not drive the API with a "simple" request that needs no preflight.
- ``host_middleware`` (on everything, the websocket at /_stcore/stream included): Starlette's
  TrustedHostMiddleware with localhost, 127.0.0.1 and [::1] plus ALLOWED_HOSTS, so a DNS-rebinding page
  that points evil.example at 127.0.0.1 gets "Invalid host header" instead of the sessions.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from lib.api.errors import ApiError
from lib.api.responses import json_error
from lib.core import ConfigError, Settings

log = logging.getLogger(__name__)

TOKEN_ENV = "HISTORY_LAB_API_TOKEN"
HOSTS_ENV = "ALLOWED_HOSTS"
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def api_token(settings: Settings) -> str | None:
    """The configured bearer token. Settings.api_token when present (lib.core.config), else the variable."""
    if hasattr(settings, "api_token"):
        return settings.api_token or None
    return os.environ.get(TOKEN_ENV) or None


def extra_allowed_hosts(settings: Settings | None) -> tuple[str, ...]:
    """ALLOWED_HOSTS (comma-separated) from Settings when it has the field, else the variable."""
    if settings is not None and hasattr(settings, "allowed_hosts"):
        value = settings.allowed_hosts
        return tuple(value) if not isinstance(value, str) else _split(value)
    return _split(os.environ.get(HOSTS_ENV, ""))


def _split(raw: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in raw.split(",") if part.strip())


def allowed_hosts(settings_factory: Callable[[], Settings] = Settings.from_env) -> list[str]:
    """The defaults plus ALLOWED_HOSTS. A broken setting elsewhere must not open the server up, so on a
    ConfigError only the loopback names are allowed (the pages then show the error)."""
    try:
        extra = extra_allowed_hosts(settings_factory())
    except ConfigError as exc:
        log.error("Settings are invalid (%s); answering only %s", exc, ", ".join(DEFAULT_ALLOWED_HOSTS))
        extra = ()
    hosts = list(dict.fromkeys([*DEFAULT_ALLOWED_HOSTS, *extra]))
    for host in hosts:
        if "*" in host[1:] or (host.startswith("*") and host != "*" and not host.startswith("*.")):
            raise ConfigError(f"{HOSTS_ENV} entry {host!r} is not valid: use a host name, an IP, or '*.example.com'.")
    return hosts


def host_middleware(settings_factory: Callable[[], Settings] = Settings.from_env) -> Middleware:
    """TrustedHostMiddleware for st.App(middleware=[...]); it runs before Streamlit's own middleware."""
    return Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings_factory), www_redirect=False)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return (mapped or address).is_loopback


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return bytes(value).decode("latin-1")
    return None


def _bearer(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` (a browser's Origin header) names the server that the ``Host`` header names.

    Host name and port must match; the port an origin leaves out is its scheme's default. The scheme itself
    is not compared with the request's: behind a TLS-terminating proxy the app sees http while the page is
    https, and the port already pins which server the page came from. "null" (sandboxed frames, file: pages)
    and anything that is not a bare scheme://host[:port] never match.
    """
    try:
        page, server = urlsplit(origin), urlsplit(f"//{host}")
        page_port, server_port = page.port, server.port
    except ValueError:  # a port that is not a number, or an unbalanced [ in an IPv6 host
        return False
    if page.scheme not in _DEFAULT_PORTS or not page.hostname or origin != f"{page.scheme}://{page.netloc}":
        return False
    if page.username is not None or page.hostname != server.hostname:
        return False
    # A Host without a port: the client used its scheme's default port, so the page must have too.
    return (page_port or _DEFAULT_PORTS[page.scheme]) == (server_port or _DEFAULT_PORTS[page.scheme])


def check_origin(scope: Scope) -> None:
    """Raise ApiError(403) when a browser sent this request from a page of another origin.

    No Origin header: curl, an SDK or a server, which no web page can make the user's browser impersonate.
    The Host header is already one of the allowed names (``host_middleware`` runs first), so an Origin that
    matches it is this app's own page. Checked on every method, reads included, so no route depends on the
    browser's preflight to stay out of reach.
    """
    origin = _header(scope, b"origin")
    if origin is None:
        return
    host = _header(scope, b"host") or ""
    if not same_origin(origin.strip(), host):
        raise ApiError(403, "cross_origin", f"Requests from a web page of another origin ({origin!r}) are refused, "
                       f"so a site you visit cannot use this API (only pages served at {host or 'this server'} "
                       "may). Call the API from a script, an SDK or curl, which send no Origin header.")


def check_access(scope: Scope, settings: Settings) -> None:
    """Raise ApiError(401/403) unless this request may use the API."""
    token = api_token(settings)
    if token:
        given = _bearer(scope)
        # compare_digest: the time taken must not tell an attacker how many leading characters matched.
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            what = "missing" if given is None else "wrong"
            raise ApiError(401, "unauthorized", f"The bearer token is {what}. Send 'Authorization: Bearer <token>' "
                           f"with the value of {TOKEN_ENV} set on the server.")
        return
    client = scope.get("client")
    if not is_loopback(client[0] if client else None):
        raise ApiError(403, "forbidden", f"This API answers only clients on this machine, because {TOKEN_ENV} is not "
                       f"set on the server. Set {TOKEN_ENV} there and send 'Authorization: Bearer <token>'.")


SETTINGS_STATE = "history_lab_settings"  # request.state key: the settings this request was checked with


class ApiAccess:
    """ASGI middleware for the /api mount: the token or loopback rule and the Origin check, before any
    handler runs."""

    def __init__(self, app: ASGIApp, settings_factory: Callable[[], Settings] = Settings.from_env) -> None:
        self.app = app
        self.settings_factory = settings_factory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                settings = self.settings_factory()
                check_access(scope, settings)
                check_origin(scope)
                # The route's handler takes these same settings (request.state): building them costs 0.1-0.2 ms
                # in the server (environment and secrets), once per request is enough.
                scope.setdefault("state", {})[SETTINGS_STATE] = settings
            except Exception as exc:  # noqa: BLE001 - ApiError or ConfigError; both become JSON errors
                await json_error(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)
