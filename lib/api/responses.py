"""Response bodies: JSON and Server-Sent Events, both passed through ``mask_secrets`` as they are written.

Masking the serialised text (not selected fields) is what makes "a key never appears in a response" hold
for every field, including provider text quoted inside a reply or an error.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse, Response

from lib.api.errors import error_body
from lib.core import mask_secrets


def _default(value: Any) -> Any:
    # Typed records and usage objects: their JSON form when they have one, else their public fields.
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    if hasattr(value, "__dict__"):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


def _finite(value: Any) -> Any:
    # JSON has no NaN or Infinity; a client parser would reject the whole body.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _encode(content: Any) -> str:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=_default, allow_nan=False)


def dumps(content: Any) -> str:
    """Compact JSON with every configured secret masked."""
    try:
        # Almost every body is finite: the encoder itself says when one is not (allow_nan=False), so the copy
        # that replaces NaN and Infinity (a walk over every value, ~1.5 ms for a 2,000-message answer) is made
        # only then.
        text = _encode(content)
    except ValueError:
        text = _encode(_finite(content))
    return mask_secrets(text)


class MaskedJSON(JSONResponse):
    """A JSONResponse whose body never contains a configured secret."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


class RenderedJSON(Response):
    """A JSON body already rendered by ``dumps`` (masked), e.g. on a worker thread."""

    media_type = "application/json"


def json_error(exc: BaseException, **extra: Any) -> MaskedJSON:
    status, body = error_body(exc, **extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    retry_after = body["error"].get("retryAfter")
    if isinstance(retry_after, int):  # 503 server_busy: when a client may try again
        headers["Retry-After"] = str(retry_after)
    return MaskedJSON(body, status_code=status, headers=headers or None)


def sse_event(event: str, data: Any) -> str:
    """One Server-Sent Event. The data is one JSON line, so it never needs multi-line framing."""
    return f"event: {event}\ndata: {dumps(data)}\n\n"
