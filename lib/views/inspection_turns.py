"""Per-turn models for the token inspector: each turn counted in its own model's encoding and labelled so.

A session may switch provider and model between turns (Claude, then OpenAI, then the offline model);
lib.views.inspection counts, labels and prices every turn by its own model with these helpers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from lib.core import TurnRecord
from lib.tokens import choose_encoding, count_label, reply_priming

Message = Mapping[str, Any]


class ExactCounts:
    """Exact per-message counts of the history and system prompt, once per encoding: a session whose turns
    went to Claude and to OpenAI counts each turn in its own model's encoding."""

    def __init__(self, history: Sequence[Message], system: Sequence[Message],
                 exact: Callable[[Sequence[Message], str], list[int | None]]) -> None:
        """``exact``: the per-message exact counts of some messages in a model's encoding (None without it)."""
        self.history, self.system, self._exact = history, system, exact
        self._by_encoding: dict[str, tuple[list[int], int] | None] = {}

    def of(self, model: str) -> tuple[list[int], int] | None:
        """(prefix sums over the history, system prompt + reply priming) in ``model``'s encoding."""
        encoding = choose_encoding(model).name
        if encoding not in self._by_encoding:
            exact = self._exact(self.history, model)
            system = self._exact(self.system, model)
            ok = all(e is not None for e in [*exact, *system])
            self._by_encoding[encoding] = (list(itertools.accumulate((e or 0 for e in exact), initial=0)),
                                           sum(e or 0 for e in system) + reply_priming(model)) if ok else None
        return self._by_encoding[encoding]


def turn_count_label(record: TurnRecord, model: str) -> str:
    """How this turn's exact count was made: its own model's tiktoken encoding, exact or standing in."""
    return count_label("tiktoken", encoding=record.encoding, model=model)


def models_used(turns: pd.DataFrame) -> list[str]:
    """One line per run of consecutive turns on one model: "turns 1–2: claude-sonnet-4-6 (anthropic),
    approximate (o200k_base stands in for claude-sonnet-4-6)"."""
    lines: list[str] = []
    columns = ["turn", "model", "provider_name", "count_label", "priced_as"]
    runs: list[list[Any]] = []
    for row in turns[columns].itertuples(index=False):
        key = (row.model, row.provider_name, row.count_label, row.priced_as)
        if runs and runs[-1][0] == key:
            runs[-1][2] = row.turn
        else:
            runs.append([key, row.turn, row.turn])
    for (model, provider, label, basis), first, last in runs:
        span = f"turn {first}" if first == last else f"turns {first}–{last}"
        who = f"{model} ({provider})" if isinstance(provider, str) and provider else str(model)
        priced = "" if basis == model else f", priced as {basis}"
        lines.append(f"{span}: {who}, {label}{priced}")
    return lines
