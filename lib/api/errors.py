"""Every API failure as ``{"error": {"type", "message"}}`` with one status, decided in one place.

Handlers raise ``ApiError`` for what they check themselves and let lib's typed errors through;
``error_response`` maps both. Anything else is a bug: logged with its traceback, answered with a 500
that says where to look. Every body goes through ``mask_secrets`` (see ``lib.api.responses``).
"""

from __future__ import annotations

import logging
from typing import Any

from lib.chat import EmptyMessage, MessageNotSent, MessageTooLarge, ReplyNotSaved, TurnInterrupted
from lib.context import ChoiceConflict, ContextOverflowError
from lib.core import ConfigError, HistoryLabError, mask_secrets
from lib.providers import MissingKeyError, ProviderError, StreamTimeLimit
from lib.sessions import InvalidSessionId, StoreError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000  # 1 MB: the largest message (500k characters) fits; a runaway upload does not


class ApiError(HistoryLabError):
    """A refused request: HTTP ``status``, a stable machine-readable ``kind``, and what to do."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.extra = extra


# (exception class, status, type). Order matters: the first match wins, so subclasses come first.
_MAPPED: tuple[tuple[type[BaseException], int, str], ...] = (
    (EmptyMessage, 400, "empty_message"),
    (MessageTooLarge, 400, "message_too_large"),
    (InvalidSessionId, 400, "invalid_session_id"),
    (ContextOverflowError, 400, "context_overflow"),
    (ChoiceConflict, 400, "invalid_choice"),
    (MissingKeyError, 400, "provider_not_configured"),
    (StreamTimeLimit, 502, "stream_time_limit"),
    (ProviderError, 502, "provider_error"),
    (ReplyNotSaved, 503, "reply_not_saved"),
    # The client left mid-turn (nginx's "client closed request"): the answer is written for the log alone.
    (TurnInterrupted, 499, "interrupted"),
    (MessageNotSent, 503, "message_not_sent"),
    (StoreError, 503, "store_unavailable"),
    (ConfigError, 500, "config_error"),
)


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(status, type, message) for an exception; unknown ones are logged and get a 500."""
    if isinstance(exc, ApiError):
        return exc.status, exc.kind, str(exc)
    for cls, status, kind in _MAPPED:
        if isinstance(exc, cls):
            return status, kind, _describe(exc, kind)
    log.error("Unexpected error in the HTTP API", exc_info=exc)
    return 500, "internal_error", f"Unexpected error ({type(exc).__name__}). Details are in the server log."


def _describe(exc: BaseException, kind: str) -> str:
    text = str(exc)
    if kind in ("provider_error", "stream_time_limit"):
        return f"The provider failed: {text} Your message is saved; send it again to retry."
    if kind == "store_unavailable":  # the store's own message says what to do, and it differs per store
        return f"The session store is not available: {text}"
    if kind == "context_overflow":
        return f"Your message is saved, but it was not sent. {text}"
    return text


def error_body(exc: BaseException, **extra: Any) -> tuple[int, dict[str, Any]]:
    """The status and the JSON body for ``exc``; ``extra`` keys (sessionId, turn) go inside ``error``."""
    status, kind, message = classify(exc)
    error: dict[str, Any] = {"type": kind, "message": mask_secrets(message)}
    error.update(getattr(exc, "extra", {}) or {})
    error.update({k: v for k, v in extra.items() if v is not None})
    return status, {"error": error}
