"""Long series thinned for a chart, and long tables cut into pages, so a 10,000-message session draws fast."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Thinned:
    """Rows of a frame kept for drawing: every ``step``-th value of a column, and the last one."""

    frame: pd.DataFrame
    step: int  # 1: nothing was left out
    kept: int  # distinct values of the column kept
    total: int  # distinct values of the column in all

    def note(self, unit: str, *, subject: str = "Sampled for drawing") -> str:
        """What a caption must say when rows were left out ("" when none was)."""
        if self.step == 1:
            return ""
        return (f"{subject}: one {unit} in every {self.step:,} ({self.kept:,} of {self.total:,}, the "
                f"first and the last included); each value drawn is exact.")


def thin(frame: pd.DataFrame, column: str, *, max_points: int) -> Thinned:
    """Keep the rows whose ``column`` value is one of every ``step``-th distinct value (first and last included),
    so a chart draws at most about ``max_points`` of them. A browser draws 5,000 turns × 8 series slowly, and a
    line through every 10th turn still shows the trend; the caption says which were kept (``Thinned.note``).
    """
    values = pd.Series(frame[column].unique()).sort_values(ignore_index=True)
    total = len(values)
    if total <= max_points:
        return Thinned(frame, 1, total, total)
    step = -(-total // max_points)
    chosen = values.iloc[::step]
    if chosen.iloc[-1] != values.iloc[-1]:
        chosen = pd.concat([chosen, values.iloc[[-1]]])
    return Thinned(frame[frame[column].isin(set(chosen))], step, len(chosen), total)


@dataclass(frozen=True)
class Page:
    """One page of a long table: rows ``first``..``last`` (1-based, inclusive) of ``total``."""

    rows: pd.DataFrame
    number: int
    count: int
    first: int
    last: int
    total: int

    def caption(self, unit: str = "messages") -> str:
        if self.count == 1:
            return f"All {self.total:,} {unit}."
        return f"Page {self.number:,} of {self.count:,}: {unit} {self.first:,}–{self.last:,} of {self.total:,}."


def page_count(rows: int, *, size: int) -> int:
    """Pages of ``size`` rows that ``rows`` rows fill (one, even when empty)."""
    return max(1, -(-rows // size))


def page_of(frame: pd.DataFrame, number: int, *, size: int) -> Page:
    """Page ``number`` (1-based, clamped to the pages there are) of ``size`` rows."""
    count = page_count(len(frame), size=size)
    number = min(max(1, number), count)
    start = (number - 1) * size
    rows = frame.iloc[start:start + size]
    return Page(rows, number, count, start + 1 if len(rows) else 0, start + len(rows), len(frame))
