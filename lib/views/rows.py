"""The timeline's data: one row per turn, its blocks, its difference from the previous turn, and its badges.

Plain frozen dataclasses, below both ``lib.views.timeline`` (which builds rows) and ``lib.views.badges``
(which reads a row to say what happened), so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lib.context import Summary
from lib.core import TurnRecord
from lib.views.timeline_cache import CacheView

Run = tuple[int, int]  # history positions [start, stop)
BlockKind = Literal["system", "summary", "message"]
Level = Literal["info", "ok", "notice", "neutral", "warning", "error"]


@dataclass(frozen=True)
class Badge:
    """A short statement about one turn: a level for its colour, an icon, and the source of its number."""

    text: str
    level: Level = "info"
    icon: str = ":material/info:"
    source: str = ""


# -- data ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One message of a payload (or one dropped message), sized by its exact tokens."""

    index: int  # position in the payload (0 = system prompt when sent); -1 for dropped messages
    kind: BlockKind
    role: str
    tokens: int
    message_id: str | None
    message_turn: int  # the turn the message belongs to (0: system prompt)
    new: bool = False  # not in the previous turn's payload
    cached: bool = False  # inside the cached prefix
    dropped: bool = False
    preview: str = ""


@dataclass(frozen=True)
class TurnDiff:
    """Difference from the previous turn's payload."""

    added: int = 0  # messages sent now that the previous turn did not send
    removed: int = 0  # messages the previous turn sent that this one did not (newly dropped)
    tokens: int = 0  # change of the payload's tokens

    @property
    def text(self) -> str:
        return f"+{self.added} messages · −{self.removed} dropped · {self.tokens:+,} tokens"


@dataclass(frozen=True)
class TurnRow:
    """One turn of the timeline: what was sent, how it differs from the previous turn, and its badges."""

    turn: int
    record: TurnRecord
    system: str | None
    summary: Summary | None
    runs: tuple[Run, ...]  # stored messages sent, as history positions
    dropped_runs: tuple[Run, ...]
    previous_runs: tuple[Run, ...]
    new_system: bool
    new_summary: bool
    tokens: int  # payload tokens, reply priming included
    count_source: str
    diff: TurnDiff
    cache: CacheView
    cost: float | None
    cost_source: str
    running_total: float
    badges: tuple[Badge, ...] = ()

    @property
    def failed(self) -> bool:
        return self.record.failed


