"""What a turn is asked to do (``TurnRequest``) and what came of it (``TurnResult``), as plain data.

``lib.chat.turn.PreparedTurn`` runs the turn between the two; the pages and the API read only these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lib.chat.server_state import (
    ServerState,
)
from lib.context import Summarizer, Summary, TrimResult
from lib.core import (
    MAX_REPLY_CHARS,
    HistoryLabError,
    Price,
    ToolDef,
    TurnRecord,
)


class TurnInterrupted(HistoryLabError, RuntimeError):
    """The reply stream was closed before it finished (the page was reloaded or stopped)."""

    def __init__(self) -> None:
        super().__init__("The reply was interrupted before it finished. Your message is saved; send again.")


@dataclass(frozen=True)
class TurnRequest:
    """What the user asked for; ``budget`` is the trimmer's max_tokens, ``reserve_tokens`` is kept free.

    ``strict`` rejects what a strict API would (offline: an assistant-first payload). ``reference_model``
    prices the reply as that model (the page passes it for the offline model). ``low_water`` is the
    cache-aware and summary strategies' refill level. ``summarizer`` overrides who writes a "summary"
    (default: extractive for the offline model, otherwise the provider itself).

    Server-side history (providers with ``capabilities.server_side_history``): ``server_state`` is
    "previous_response" (the default), "conversation", or None to re-send everything each turn;
    ``truncation`` and ``compaction_threshold`` are passed to the provider as they are.

    ``stream_time_limit`` (seconds, None for none) bounds the whole reply stream: past it the stream is cut
    and the turn fails with StreamTimeLimit. A reply longer than ``max_reply_chars`` is cut there and stored,
    marked as truncated.
    """

    user_text: str
    session_id: str | None = None
    system_prompt: str = ""
    strategy: str = "turns"
    budget: int = 80_000
    reserve_tokens: int = 0
    model: str | None = None
    max_output_tokens: int = 1024
    strict: bool = True
    prompt_caching: bool = False
    reference_model: str | None = None
    low_water: float = 0.7
    prices: Mapping[str, Price] | None = None
    summarizer: Summarizer | None = None
    server_state: ServerState | None = "previous_response"
    truncation: Literal["auto", "disabled"] | None = None
    compaction_threshold: int | None = None
    stream_time_limit: float | None = None
    max_reply_chars: int | None = MAX_REPLY_CHARS
    # "You choose" by turn number (the API's form): given, they replace the session's stored choice (checked
    # before the message is stored); None uses the stored one (the chat page sets it turn by turn).
    pinned_turns: tuple[int, ...] | None = None
    left_out_turns: tuple[int, ...] | None = None
    # Tool definitions offered with every request of this turn (lib.core.tools): counted, cached, never trimmed.
    tools: tuple[ToolDef, ...] = ()


def truncation_note(limit: int) -> str:
    """What a reply cut at the reply cap says about itself (in its metadata, its record and the page)."""
    return (f"Truncated: the reply reached {limit:,} characters (MAX_REPLY_CHARS), so the provider stream was "
            "closed and the rest was never received. The provider reported no usage for it and may still bill "
            "what it generated.")


@dataclass
class TurnResult:
    """The outcome of one turn. ``error`` is set (and ``assistant_message`` is None) when it failed.

    ``unsaved`` holds what a store outage kept from being written (the reply and/or the turn record);
    ``text`` still carries the reply, and ``save_reply_again`` writes it once the store is back.
    ``summary``: the summary this turn sent (``record.summary_new`` says whether it wrote it);
    ``notes``: what the page should say (summary fallback, a broken server chain), also in the record.
    """

    session_id: str
    turn: int
    user_message: dict[str, Any]
    assistant_message: dict[str, Any] | None
    record: TurnRecord
    payload: list[dict[str, Any]]
    trim: TrimResult | None
    request: dict[str, Any] | None = None
    text: str = ""
    error: Exception | None = None
    unsaved_reply: dict[str, Any] | None = None
    unsaved_record: TurnRecord | None = None
    summary: Summary | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def unsaved(self) -> bool:
        return self.unsaved_reply is not None or self.unsaved_record is not None
