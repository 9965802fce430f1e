"""The one boundary where exceptions become UI messages: st.error with what to do, never a traceback.

Errors of lib's user-facing family (``lib.core.errors.HistoryLabError``) are shown as they are, secrets masked.
Anything else is a bug: it is logged with its traceback and the page shows a short message.

Every page and helper catches through ``error_boundary`` (nowhere else in the UI says ``except Exception``):

    with error_boundary() as caught:
        store = services.store_handle().store
    if caught.error:
        return          # already shown (or, with show=False, kept for the caller to report)

Streamlit's st.rerun and st.stop raise BaseException subclasses, so they pass through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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


@dataclass
class Caught:
    """What an ``error_boundary`` caught: None when the block ran to the end."""

    error: Exception | None = None


@contextmanager
def error_boundary(*, show: bool = True, stop: bool = False) -> Iterator[Caught]:
    """Run a block; turn any exception into one message (``show``), log a bug's traceback, and go on.

    ``show=False`` keeps the error in ``Caught.error`` for a caller that reports it elsewhere (a callback's
    notice queue, an export file); ``stop=True`` stops the page after showing it.
    """
    caught = Caught()
    try:
        yield caught
    except Exception as exc:  # noqa: BLE001 - this is the UI's one error boundary
        caught.error = exc
        if show:
            show_error(exc)
        elif not _is_known(exc):
            log.error("Unexpected error", exc_info=exc)
        if stop:
            st.stop()


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
