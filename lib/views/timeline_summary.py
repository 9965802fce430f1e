"""The payload timeline in words: what a chart says to someone who cannot see it, or reads it on a projector.

    summary = summarize_timeline(timeline, turn=7)   # the turn shown in detail (None: the newest)
    summary.text                                     # "7 requests drawn (turns 1–7). Turn 7 sent 236 tokens …"

Every figure comes from the timeline's rows and blocks (lib.views.timeline), with the label of its source: token
counts carry the count label of the turn's encoding, cache reads the cache view's source (provider-reported,
or simulated for the offline model).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lib.views.timeline import Timeline


@dataclass(frozen=True)
class TimelineSummary:
    """The figures of the summary; ``text`` says them in one paragraph."""

    rows: int
    first_turn: int
    last_turn: int
    turn: int
    tokens: int  # the turn's payload, reply priming included
    by_role: dict[str, int] = field(default_factory=dict)  # the turn's payload tokens per role
    count_source: str = ""
    dropped_messages: int = 0
    dropped_tokens: int = 0
    cached_tokens: int = 0
    cache_source: str = ""
    failed: bool = False
    total_tokens: int = 0  # every drawn request's payload, added up
    total_dropped_rows: int = 0  # requests that left at least one stored message out

    @property
    def text(self) -> str:
        span = f"turn {self.first_turn}" if self.rows == 1 else f"turns {self.first_turn}–{self.last_turn}"
        head = f"{self.rows:,} request{'s' * (self.rows != 1)} drawn ({span})."
        if self.failed and not self.tokens:
            turn = f"Turn {self.turn} sent nothing: its request failed before it was made."
        else:
            roles = ", ".join(f"{role} {tokens:,}" for role, tokens in self.by_role.items())
            turn = (f"Turn {self.turn} sent {self.tokens:,} tokens ({self.count_source}): {roles}, "
                    f"and {self.tokens - sum(self.by_role.values())} priming the reply.")
            if self.failed:
                turn += " The request failed."
        dropped = (f"{self.dropped_messages:,} stored message{'s' * (self.dropped_messages != 1)} "
                   f"({self.dropped_tokens:,} tokens) not sent in turn {self.turn}."
                   if self.dropped_messages else f"Nothing was dropped in turn {self.turn}.")
        cached = (f"{self.cached_tokens:,} tokens of it read from the prompt cache ({self.cache_source})."
                  if self.cached_tokens else f"No tokens read from a prompt cache ({self.cache_source}).")
        total = (f"Together the {self.rows:,} requests sent {self.total_tokens:,} tokens; "
                 f"{self.total_dropped_rows:,} of them left stored messages out.") if self.rows > 1 else ""
        return " ".join(part for part in (head, turn, dropped, cached, total) if part)


def summarize_timeline(data: Timeline, *, turn: int | None = None) -> TimelineSummary | None:
    """The summary of the rows drawn, with ``turn`` (default: the newest) in detail; None with no rows."""
    if not data.rows:
        return None
    chosen = turn if turn in data.turns else data.rows[-1].turn
    row = data.row(chosen)
    by_role: dict[str, int] = {}
    for block in data.blocks(chosen):
        by_role[block.role] = by_role.get(block.role, 0) + block.tokens
    return TimelineSummary(
        rows=len(data.rows), first_turn=data.rows[0].turn, last_turn=data.rows[-1].turn, turn=chosen,
        tokens=row.tokens, by_role=by_role, count_source=row.count_source,
        dropped_messages=sum(stop - start for start, stop in row.dropped_runs),
        dropped_tokens=data.dropped_tokens(chosen), cached_tokens=row.cache.cached_tokens,
        cache_source=row.cache.source, failed=row.failed,
        total_tokens=sum(r.tokens for r in data.rows),
        total_dropped_rows=sum(1 for r in data.rows if r.dropped_runs),
    )
