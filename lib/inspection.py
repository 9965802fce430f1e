"""The token inspector's data: pandas frames built from a stored history and its turn records.

Per-message counts are computed once per message (lib.tokens caches them by text), and the untrimmed
size of every turn comes from prefix sums, so a 1,000-turn session builds in linear time.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lib.pricing import Price, estimate_cost, find_price
from lib.records import TurnRecord, id_positions
from lib.tokens import (
    REPLY_PRIMING,
    EncodingUnavailable,
    choose_encoding,
    content_text,
    estimate_tokens,
    message_tokens,
)
from lib.trimming import ContextOverflowError, payload_problems, trim_history

Message = Mapping[str, Any]
PREVIEW_CHARS = 70
# Turn records as a store returns them (dicts of any shape) or already typed.
Turns = Sequence[Mapping[str, Any] | TurnRecord]


def typed_turns(turns: Turns) -> list[TurnRecord]:
    """Typed records; a stored record with odd field types reads with those fields missing."""
    return [t if isinstance(t, TurnRecord) else TurnRecord.from_json(t) for t in turns]


@dataclass(frozen=True)
class Inspection:
    """Everything the page draws for one session."""

    turns: pd.DataFrame  # one row per turn record
    cumulative: pd.DataFrame  # running totals of tokens re-sent, with and without trimming
    messages: pd.DataFrame  # one row per stored message
    exact_available: bool
    encoding: str


def message_counts(history: Sequence[Message], model: str) -> tuple[list[int], list[int | None]]:
    """The seed's estimate and the exact chat-format count of every message (exact None without encoding)."""
    estimates = [estimate_tokens(m.get("content", "")) for m in history]
    try:
        exact: list[int | None] = [message_tokens(m, model) for m in history]
    except EncodingUnavailable:
        exact = [None] * len(history)
    return estimates, exact


def inspect(
    history: Sequence[Message],
    turns: Turns,
    *,
    model: str,
    system_prompt: str = "",
    prices: Mapping[str, Price] | None = None,
) -> Inspection:
    records = typed_turns(turns)
    history = [m for m in history if isinstance(m, Mapping)]
    estimates, exact = message_counts(history, model)
    exact_ok = all(e is not None for e in exact)
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    sys_est, sys_exact = message_counts(system, model)
    position = id_positions(history)
    est_prefix = list(itertools.accumulate(estimates, initial=0))
    exact_prefix = list(itertools.accumulate((e or 0 for e in exact), initial=0))
    sys_exact_total = sum(e or 0 for e in sys_exact) + REPLY_PRIMING

    rows: list[dict[str, Any]] = []
    for record in records:
        end = position.get(record.user_id or "", len(history) - 1) + 1
        sent = [position[i] for i in record.sent_ids(history, position)]
        estimate = record.estimate
        if estimate is None:
            estimate = sum(sys_est) + sum(estimates[i] for i in sent)
        exact_sent = record.exact
        if exact_sent is None and exact_ok:
            exact_sent = sys_exact_total + sum(exact[i] or 0 for i in sent)
        rows.append({
            "turn": record.turn if record.turn is not None else len(rows) + 1,
            "estimate": estimate,
            "exact": exact_sent,
            "provider": record.usage.prompt_total if record.usage else None,
            "untrimmed_estimate": sum(sys_est) + est_prefix[end],
            "untrimmed_exact": sys_exact_total + exact_prefix[end] if exact_ok else None,
            "sent": record.sent_count,
            "dropped": record.dropped_count,
            "strategy": record.strategy,
            "budget": record.budget,
            "model": record.model or model,
            "failed": record.failed,
        })
    frame = pd.DataFrame(rows, columns=["turn", "estimate", "exact", "provider", "untrimmed_estimate",
                                        "untrimmed_exact", "sent", "dropped", "strategy", "budget", "model",
                                        "failed"])
    for column in ("exact", "provider", "untrimmed_exact"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Float64")
    frame["error_pct"] = ((frame["estimate"] - frame["exact"]) / frame["exact"] * 100).round(1)
    return Inspection(
        turns=frame,
        cumulative=cumulative_frame(frame, prices=prices),
        messages=message_frame(history, records, estimates, exact),
        exact_available=exact_ok,
        encoding=_encoding_name(records, model),
    )


def cumulative_frame(turns: pd.DataFrame, *, prices: Mapping[str, Price] | None = None) -> pd.DataFrame:
    """Tokens re-sent so far, as sent and as they would have been without trimming, plus the saving."""
    exact = turns["exact"].notna().all() and len(turns) > 0
    sent = turns["exact"] if exact else turns["estimate"]
    untrimmed = turns["untrimmed_exact"] if exact else turns["untrimmed_estimate"]
    frame = pd.DataFrame({
        "turn": turns["turn"],
        "sent": sent.astype("float"),
        "untrimmed": untrimmed.astype("float"),
    })
    frame["cumulative_sent"] = frame["sent"].cumsum()
    frame["cumulative_untrimmed"] = frame["untrimmed"].cumsum()
    frame["saved"] = frame["cumulative_untrimmed"] - frame["cumulative_sent"]
    frame["counted_with"] = "exact" if exact else "chars/4"
    costs = [_input_cost(model, n, prices) for model, n in zip(turns["model"], frame["sent"], strict=True)]
    frame["cost"] = pd.Series(costs, dtype="Float64").cumsum() if costs and None not in costs else pd.NA
    untrimmed_costs = [_input_cost(m, n, prices) for m, n in zip(turns["model"], frame["untrimmed"], strict=True)]
    frame["cost_untrimmed"] = (pd.Series(untrimmed_costs, dtype="Float64").cumsum()
                               if untrimmed_costs and None not in untrimmed_costs else pd.NA)
    return frame


def message_frame(
    history: Sequence[Message],
    turns: Turns,
    estimates: Sequence[int],
    exact: Sequence[int | None],
) -> pd.DataFrame:
    """One row per stored message, with the first turn whose payload left it out."""
    first_dropped: dict[str, int] = {}
    times_dropped: dict[str, int] = {}
    positions = id_positions(history)
    for record in typed_turns(turns):
        for message_id in record.dropped_ids(history, positions):
            first_dropped.setdefault(message_id, record.turn or 0)
            times_dropped[message_id] = times_dropped.get(message_id, 0) + 1
    rows = []
    for n, message in enumerate(history):
        text = content_text(message.get("content") or "")
        if message.get("tool_calls"):
            text = f"[tool call] {content_text(message['tool_calls'])}"
        preview = " ".join(text.split())
        stored_id = message.get("id") if isinstance(message.get("id"), str) else None
        role = message.get("role")
        rows.append({
            "#": n, "role": role if isinstance(role, str) else str(role),
            "preview": preview if len(preview) <= PREVIEW_CHARS else preview[: PREVIEW_CHARS - 1] + "…",
            "chars": len(text), "estimate": estimates[n], "exact": exact[n],
            "dropped_at_turn": first_dropped.get(stored_id or ""),
            "times_dropped": times_dropped.get(stored_id or "", 0),
            "id": stored_id,
        })
    frame = pd.DataFrame(rows, columns=["#", "role", "preview", "chars", "estimate", "exact", "dropped_at_turn",
                                        "times_dropped", "id"])
    frame["exact"] = pd.to_numeric(frame["exact"], errors="coerce").astype("Int64")
    frame["dropped_at_turn"] = pd.to_numeric(frame["dropped_at_turn"], errors="coerce").astype("Int64")
    return frame


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


def seed_breaking_budgets(
    history: Sequence[Message], *, model: str, system_prompt: str = "", steps: int = 24
) -> list[tuple[int, list[str]]]:
    """Budgets (largest first) where the seed strategy builds a payload an API would reject.

    The seed is quadratic, so this samples ``steps`` budgets between 1% and 100% of the estimate.
    """
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    total = sum(estimate_tokens(m.get("content", "")) for m in [*system, *history])
    found = []
    for step in range(steps, 0, -1):
        budget = max(1, total * step // steps)
        check = what_if(history, budget=budget, strategy="seed", model=model, system_prompt=system_prompt)
        if check.problems:
            found.append((budget, check.problems))
    return found


def _input_cost(model: str, tokens: float, prices: Mapping[str, Price] | None) -> float | None:
    if prices is None or pd.isna(tokens) or find_price(str(model), prices) is None:
        return None
    return estimate_cost(str(model), input_tokens=int(tokens), output_tokens=0, table=prices)


def _encoding_name(turns: Sequence[TurnRecord], model: str) -> str:
    encoding = next((t.encoding for t in reversed(turns) if t.encoding), None)
    return encoding or choose_encoding(model).name
