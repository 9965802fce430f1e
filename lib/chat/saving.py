"""Saving a turn's reply through a store outage: bounded retries, then "Save again" from the page.

``PreparedTurn.finish`` writes the reply and the turn record with ``retry_store_write``; when the store stays
down longer than the retries, the result keeps what was not written (``unsaved_reply``/``unsaved_record``)
and ``save_reply_again`` (lib.chat.conversation) writes it once the store is back. Writes are idempotent by
message id and turn number, so a retry after a write that landed (but whose answer was lost) stores nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from lib.core import HistoryLabError
from lib.sessions import StoreUnavailable

T = TypeVar("T")
# How long finish() keeps retrying to store a reply while the store is down (a restart, a failover).
SAVE_RETRY_SECONDS = 5.0


class ReplyNotSaved(HistoryLabError):
    """The reply arrived but the store was down for longer than the retries; it lives only in the page."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(
            f"The reply is shown but could not be saved: the store did not answer ({cause}). "
            "Use “Save again” once the store is back; until then the reply exists only on this page."
        )


class MessageNotSent(StoreUnavailable):
    """The store went away while the user message was being stored, or just after: the turn was not sent.

    A 503 that says so (with ``extra``: the session, and the turn when its number came back) rather than a
    plain "store unavailable", which would tell the client that nothing was written when its message may
    be in the history.
    """

    def __init__(self, cause: StoreUnavailable, *, session_id: str, turn: int | None) -> None:
        if turn is None:  # the first attempt may have been stored with its answer lost
            saved = ("Your message may be saved (the store went away while saving it), but it was not sent: "
                     f"{cause.reason} Nothing went to the model. Reload the session to see whether it is there "
                     "before you send it again.")
        else:
            saved = (f"Your message is saved as turn {turn}, but it was not sent: {cause.reason} Nothing went to "
                     "the model. Once the store is back, send your next message (this one stays in the history).")
        super().__init__(saved)
        self.extra = {"sessionId": session_id, **({"turn": turn} if turn is not None else {})}


def retry_store_write(write: Callable[[], T], *, seconds: float = SAVE_RETRY_SECONDS) -> T:
    """Run ``write``, retrying with backoff while the store is unavailable, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    delay = 0.1
    while True:
        try:
            return write()
        except StoreUnavailable:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            time.sleep(min(delay, left))
            delay = min(delay * 2, 1.0)
