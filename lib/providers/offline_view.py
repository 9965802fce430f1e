"""What the offline model can see: its payload message by message, and which turns are missing from it.

Everything here is learnt from the payload and ``ProviderOptions.turn_numbers`` (one per payload message),
never from a side channel, so the model's answer and its report say only what a real model could know.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lib.context import SYSTEM_ROLES
from lib.core import Message
from lib.providers.base import ProviderOptions
from lib.tokens import content_text

# What the compaction step writes at the start of its summary message: "Summary of turns 1–4: ...".
SUMMARY_LABEL = re.compile(r"^\W*summary of turns?\s+(\d+)(?:\s*(?:-|–|—|to|through)\s*(\d+))?", re.IGNORECASE)


@dataclass(frozen=True)
class Seen:
    """One payload message as the model sees it; ``turn`` is None when the caller gave no turn numbers."""

    role: str
    turn: int | None
    text: str
    summary: tuple[int, int] | None = None  # the turns a summary message covers

    @property
    def conversational(self) -> bool:
        return self.summary is None and self.role not in SYSTEM_ROLES

    @property
    def place(self) -> str:
        if self.summary is not None:
            return f"the summary of {turn_span(*self.summary)}"
        if self.role in SYSTEM_ROLES:
            return "the system prompt"
        return f"turn {self.turn} ({self.role})" if self.turn else f"a {self.role} message"


@dataclass(frozen=True)
class Coverage:
    """Which turns the payload holds: ``lost`` turns before the oldest visible one, ``gaps`` in the middle,
    ``headless`` turns seen without the user message that began them. ``known`` is False without turn numbers."""

    known: bool
    oldest: Seen | None
    lost: int = 0
    gaps: tuple[int, ...] = ()
    headless: tuple[int, ...] = ()
    summarised: bool = False  # the lost turns are covered by a summary in the payload

    @property
    def trimmed(self) -> bool:
        """True when some earlier turn (or part of one) is not in the payload."""
        return bool(self.lost or self.gaps or self.headless)


def view_payload(messages: Sequence[Message], options: ProviderOptions) -> list[Seen]:
    """The payload with each message's turn number, as given in ``options.turn_numbers``."""
    turns: Sequence[int | None] = [None] * len(messages)
    if options.turn_numbers is not None:
        if len(options.turn_numbers) != len(messages):
            raise ValueError(
                f"options.turn_numbers has {len(options.turn_numbers)} entries for {len(messages)} payload "
                "messages; give one per message (0 for the system prompt and summaries).")
        turns = list(options.turn_numbers)
    return [_seen(m, turn) for m, turn in zip(messages, turns, strict=True)]


def _seen(message: Message, turn: int | None) -> Seen:
    role = str(message.get("role") or "")
    text = content_text(message.get("content") or "")
    label = SUMMARY_LABEL.match(text) if role in (*SYSTEM_ROLES, "user") else None
    if label:
        first = int(label.group(1))
        return Seen(role, turn, text, (first, int(label.group(2) or first)))
    return Seen(role, turn, text)


def coverage(seen: Sequence[Seen], current_turn: int | None) -> Coverage:
    """Which turns are missing, learnt only from the turn numbers of what was received."""
    conversation = [s for s in seen if s.conversational]
    oldest = conversation[0] if conversation else None
    visible = sorted({s.turn for s in conversation if s.turn})
    if not visible:
        return Coverage(known=False, oldest=oldest)
    first, newest = visible[0], max(current_turn or 0, visible[-1])
    lost = first - 1
    opened = {s.turn for s in conversation if s.role == "user"}
    headless = tuple(t for t in visible if t not in opened)
    # Compaction drops the turns too; only the summary of them is left.
    summarised = bool(lost) and any(s.summary and s.summary[0] <= 1 and s.summary[1] >= lost for s in seen)
    gaps = tuple(sorted(set(range(first, newest + 1)) - set(visible)))
    return Coverage(known=True, oldest=oldest, lost=lost, gaps=gaps, headless=headless, summarised=summarised)


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def turn_span(first: int, last: int) -> str:
    return f"turn {first}" if first == last else f"turns {first}–{last}"
