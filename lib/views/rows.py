"""The timeline's data: one row per turn, its blocks, its difference from the previous turn, and its badges.

Plain frozen dataclasses, below both ``lib.views.timeline`` (which builds rows) and ``lib.views.badges``
(which reads a row to say what happened), so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lib.context import Summary
from lib.core import TurnRecord, signed
from lib.views.timeline_cache import CacheView

Run = tuple[int, int]  # history positions [start, stop)
BlockKind = Literal["tools", "system", "summary", "message"]
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
    pinned: bool = False  # its turn is pinned by hand ("You choose"): sent whatever the budget
    left_out: bool = False  # its turn is left out by hand: never sent (a dropped block)


@dataclass(frozen=True)
class TurnDiff:
    """Difference from the previous request's context (the last turn that made one).

    For a turn whose history the server kept, the context is what was sent plus what the server re-read:
    those messages are neither re-sent nor dropped, and ``kept_by_server`` counts them.
    """

    added: int = 0  # messages sent now that the previous turn did not send
    removed: int = 0  # messages the previous turn sent that this one did not (newly dropped)
    tokens: int = 0  # change of the payload's tokens
    kept_by_server: int | None = None  # server-side history: stored messages the server re-read
    made: bool = True  # False: this turn made no request, so there is nothing to compare

    @property
    def text(self) -> str:
        if not self.made:
            return "no request was made in this turn, so nothing changed on the wire"
        if self.kept_by_server is not None:
            return (f"{self.added:,} sent · {self.kept_by_server:,} kept by the server (re-read there, not "
                    f"re-sent) · {signed(self.tokens)} tokens sent")
        messages = f"{self.added:,} message{'s' * (self.added != 1)} added"
        return f"{messages} · {self.removed:,} dropped · {signed(self.tokens)} tokens"


@dataclass(frozen=True)
class TurnRow:
    """One turn of the timeline: what was sent, how it differs from the previous turn, and its badges."""

    turn: int
    record: TurnRecord
    system: str | None
    summary: Summary | None
    runs: tuple[Run, ...]  # stored messages sent, as history positions
    previous_runs: tuple[Run, ...]  # the context of the previous request (sent plus kept by the server)
    dropped_runs: tuple[Run, ...]  # every stored message not sent: trimmed or left out by hand
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
    # Server-side history: the stored messages the server held and re-read for this request (not sent).
    server_runs: tuple[Run, ...] = ()
    new_tools: bool = False  # the tool definitions differ from the previous turn's (or are new)
    tools_first: bool = False  # the provider renders tools before the system prompt (Anthropic), else after
    pinned_runs: tuple[Run, ...] = ()  # sent because their turn is pinned
    left_out_runs: tuple[Run, ...] = ()  # not sent because their turn was left out by hand
    cache_reason: str | None = None  # why the prefix changed, when the cache broke (in words)

    @property
    def failed(self) -> bool:
        return self.record.failed

    @property
    def made_request(self) -> bool:
        return not self.record.not_sent

    @property
    def server_kept(self) -> int | None:
        """How many stored messages the server re-read (None: the history was not kept by the server)."""
        return sum(b - a for a, b in self.server_runs) if self.record.server_kept else None

    @property
    def context_runs(self) -> tuple[Run, ...]:
        """Every stored message the model read for this request: sent, or re-read by the server."""
        return union_runs(self.runs, self.server_runs)


def union_runs(*groups: Sequence[Run]) -> tuple[Run, ...]:
    """Runs merged into disjoint, sorted runs (each group is a handful of runs)."""
    merged: list[list[int]] = []
    for start, stop in sorted(r for group in groups for r in group if r[0] < r[1]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return tuple((a, b) for a, b in merged)
