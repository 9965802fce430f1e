"""Redis URLs as shown to people: never with the password, wherever the URL carries it.

redis-py takes a password from the userinfo (``redis://user:PW@host``) and from the query string
(``redis://host/0?password=PW``, ``unix:///x.sock?password=PW``), so both are hidden. Neither function
raises: a URL too broken to parse (a bad port, an unclosed ``[``) is still redacted, by pattern.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

MASK = "***"
PASSWORD_PARAMS = frozenset({"password"})
# Fallbacks for URLs urlsplit refuses: the userinfo password and any password= query value.
_USERINFO_PASSWORD = re.compile(r"(//[^/?#@:]*:)[^/?#@]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def _split_netloc(netloc: str) -> tuple[str | None, str | None, str]:
    """(user, password, host[:port]) without parsing the port, which is what raises on a bad one."""
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        return None, None, netloc
    user, colon, password = userinfo.partition(":")
    return user, (password if colon else None), hostport


def url_passwords(url: str | None) -> list[str]:
    """Every password the URL carries (userinfo and ``?password=``), decoded, for ``register_secrets``."""
    if not url:
        return []
    found: list[str] = []
    try:
        parts = urlsplit(url)
        password = _split_netloc(parts.netloc)[1]
        if password:
            found.append(unquote(password))
        found += [value for name, value in parse_qsl(parts.query, keep_blank_values=True)
                  if name.lower() in PASSWORD_PARAMS and value]
    except ValueError:
        match = _USERINFO_PASSWORD.search(url)
        if match:
            found.append(unquote(url[match.end(1): match.end() - 1]))
        found += [unquote(m.group(0)[len(m.group(1)):]) for m in _QUERY_PASSWORD.finditer(url)]
    return found


def redact_url(url: str) -> str:
    """``redis://user:secret@host:6379/0?password=x`` -> ``redis://user:***@host:6379/0?password=***``."""
    try:
        parts = urlsplit(url)
        user, password, hostport = _split_netloc(parts.netloc)
        netloc = parts.netloc if not password else f"{user}:{MASK}@{hostport}"
        query = parts.query
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name.lower() in PASSWORD_PARAMS for name, _ in pairs):
            query = urlencode([(name, MASK if name.lower() in PASSWORD_PARAMS else value) for name, value in pairs],
                              safe="*", quote_via=quote)
        if (netloc, query) == (parts.netloc, parts.query):
            return url
        # Assembled by hand: urlunsplit turns ``unix:///x.sock`` (empty netloc) into ``unix:/x.sock``.
        slashes = "//" if url[len(parts.scheme) + 1:].startswith("//") else ""
        head = f"{parts.scheme}:" if parts.scheme else ""
        tail = (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
        return f"{head}{slashes}{netloc}{parts.path}{tail}"
    except ValueError:
        return _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", _USERINFO_PASSWORD.sub(rf"\g<1>{MASK}@", url))
