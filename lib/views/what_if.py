"""The inspector's "What if?": the trimmer re-run live on a stored history at another budget or strategy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lib.context import ContextOverflowError, payload_problems, trim_history, trim_seed_literal
from lib.tokens import (
    estimate_tokens,
)

Message = Mapping[str, Any]


@dataclass(frozen=True)
class WhatIf:
    """trim_history re-run on the stored history with another budget or strategy."""

    strategy: str
    budget: int
    kept_ids: list[str] = field(default_factory=list)
    dropped_ids: list[str] = field(default_factory=list)
    tokens_before: int = 0
    tokens_after: int = 0
    counter: str = ""
    problems: list[str] = field(default_factory=list)
    error: str | None = None


def what_if(
    history: Sequence[Message],
    *,
    budget: int,
    strategy: str,
    model: str,
    system_prompt: str = "",
    reserve_tokens: int = 0,
) -> WhatIf:
    """The payload the trimmer would build now, and whether an API would accept it."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    try:
        result = trim_history([*system, *history], budget, model=model, strategy=strategy,
                              reserve_tokens=reserve_tokens)
    except (ContextOverflowError, ValueError) as exc:
        return WhatIf(strategy, budget, error=str(exc))
    return WhatIf(strategy, budget, result.kept_ids, result.dropped_ids, result.tokens_before, result.tokens_after,
                  result.counter, payload_problems(result.kept))


def literal_seed_breaking_budgets(
    history: Sequence[Message], *, model: str, system_prompt: str = "", steps: int = 24
) -> list[tuple[int, list[str]]]:
    """Budgets (largest first) where the literal seed builds a payload an API would reject.

    The reference for lib.context.seed.seed_breaking_budgets (which the page uses): ``steps`` runs of the
    seed's quadratic loop at budgets between 1% and 100% of the estimate. ``model`` is accepted for the same
    signature; the seed counts chars/4 whatever the model.
    """
    del model
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    messages = [*system, *history]
    total = sum(estimate_tokens(m.get("content", "")) for m in messages)
    found = []
    for step in range(steps, 0, -1):
        budget = max(1, total * step // steps)
        result = trim_seed_literal(messages, budget)
        problems = payload_problems(result.kept)
        if problems:
            found.append((budget, problems))
    return found
