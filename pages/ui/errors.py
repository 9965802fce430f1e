"""The one boundary where exceptions become UI messages: st.error with what to do, never a traceback.

Errors of lib's user-facing family (``lib.core.errors.HistoryLabError``) are shown as they are, secrets masked.
Anything else is a bug: it is logged with its traceback and the page shows a short message.
"""

from __future__ import annotations

import logging

import streamlit as st

from lib.chat import MessageTooLarge
from lib.context import ContextOverflowError
from lib.core import ConfigError, HistoryLabError, markdown_literal, mask_secrets
from lib.providers import MissingKeyError, ProviderError
from lib.sessions import InvalidSessionId, StoreError
from lib.tokens import EncodingUnavailable

log = logging.getLogger(__name__)


def describe_error(exc: BaseException) -> str:
    """The actionable message for one of our exceptions (the text shown by show_error), secrets masked.

    Plain text, not Markdown: it quotes provider replies, stored values and user input. Put it in Markdown
    through ``lib.core.content.markdown_literal``, as show_error does."""
    if not _is_known(exc):
        return f"Unexpected error ({type(exc).__name__}). Details are in the server log."
    text = exc.user_message if isinstance(exc, HistoryLabError) else mask_secrets(str(exc))
    if isinstance(exc, ContextOverflowError):
        return f"Your message is saved, but it was not sent. {text}"
    if isinstance(exc, ProviderError) and not isinstance(exc, MissingKeyError):
        return f"The provider failed: {text} Your message is saved; try again."
    if isinstance(exc, StoreError):
        return (f"The session store is not available: {text} Check that Redis is running "
                "(or unset REDIS_URL to use the embedded store), then reload the page.")
    if isinstance(exc, EncodingUnavailable):
        return f"Exact token counts are unavailable: {text}"
    return text


def show_error(exc: BaseException) -> None:
    """The one boundary where exceptions become UI messages: st.error with what to do, no traceback."""
    if not _is_known(exc):
        log.error("Unexpected error shown to the user", exc_info=exc)
    shown = markdown_literal(describe_error(exc))
    if isinstance(exc, EncodingUnavailable):
        st.warning(shown)
    else:
        st.error(shown)


def _is_known(exc: BaseException) -> bool:
    # The explicit classes cover lib modules still moving onto HistoryLabError.
    return isinstance(exc, HistoryLabError | ProviderError | StoreError | ConfigError | InvalidSessionId
                      | ContextOverflowError | EncodingUnavailable | MessageTooLarge)
