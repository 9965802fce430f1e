"""The token inspector's data: pandas frames built from a stored history and its turn records.

Linear in the session's size, so a 10,000-message session builds in well under 2 s cold:
- per-message counts are computed once per message (lib.tokens.counting caches them by text);
- a turn record stores what it sent and dropped as id ranges; they are resolved to position spans and
  summed with prefix sums, never expanded into id lists (turn N drops ~N messages: that would be quadratic);
- "dropped at turn" is filled with skip pointers, so each message is assigned once, and "times dropped"
  comes from a difference array over the spans;
- the seed's breaking points come from lib.context.seed (an exact O(n log n) computation), not 24 re-runs of
  the seed's quadratic loop. ``literal_seed_breaking_budgets`` keeps the loop, for the agreement test.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lib.core import IdRange, Price, TurnRecord, estimate_cost, find_price, id_positions
from lib.tokens import (
    REPLY_PRIMING,
    TEXT_KINDS,
    EncodingUnavailable,
    choose_encoding,
    content_text,
    count_text,
    error_pct,
    estimate_tokens,
    message_kind,
    message_tokens,
)

Message = Mapping[str, Any]
PREVIEW_CHARS = 70
# Turn records as a store returns them (dicts of any shape) or already typed.
Turns = Sequence[Mapping[str, Any] | TurnRecord]
Span = tuple[int, int]  # inclusive positions in the stored history


def typed_turns(turns: Turns) -> list[TurnRecord]:
    """Typed records; a stored record with odd field types reads with those fields missing."""
    return [t if isinstance(t, TurnRecord) else TurnRecord.from_json(t) for t in turns]


def latest_settings(turns: Turns) -> tuple[str | None, int]:
    """The model and budget of the newest turn records that name them (None and 0 when none does).

    Types records newest first and stops as soon as both are found: typing all 5,000 records of a long
    session on every rerun cost about half a second.
    """
    model: str | None = None
    budget = 0
    for raw in reversed(turns):
        record = raw if isinstance(raw, TurnRecord) else TurnRecord.from_json(raw)
        model = model or record.model
        budget = budget or record.budget or 0
        if model and budget:
            break
    return model, budget


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


def spans_of(ranges: Sequence[IdRange], positions: Mapping[str, int]) -> list[Span]:
    """Id ranges as position spans, tolerant as lib.core.ranges.resolve_ranges: a range whose first id is gone
    (the store's cap trimmed it) starts at 0; one whose last id is gone is skipped."""
    spans = []
    for first, last in ranges:
        stop = positions.get(last)
        if stop is not None:
            start = positions.get(first)
            spans.append((0 if start is None else min(start, stop), stop))
    return spans


def _span_sum(prefix: Sequence[int], spans: Sequence[Span]) -> int:
    return sum(prefix[stop + 1] - prefix[start] for start, stop in spans)


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
        sent = spans_of(record.sent, position)
        estimate = record.estimate
        if estimate is None:
            estimate = sum(sys_est) + _span_sum(est_prefix, sent)
        exact_sent = record.exact
        if exact_sent is None and exact_ok:
            exact_sent = sys_exact_total + _span_sum(exact_prefix, sent)
        usage = record.usage
        row = {
            "turn": record.turn if record.turn is not None else len(rows) + 1,
            "estimate": estimate,
            "exact": exact_sent,
            "provider": usage.prompt_total if usage else None,
            "provider_simulated": bool(usage and usage.simulated),
            "untrimmed_estimate": sum(sys_est) + est_prefix[end],
            "untrimmed_exact": sys_exact_total + exact_prefix[end] if exact_ok else None,
            "sent": record.sent_count,
            "dropped": record.dropped_count,
            "strategy": record.strategy,
            "budget": record.budget,
            "model": record.model or model,
            "failed": record.failed,
            "server_kept": record.server_kept,
            "reread_estimate": 0,
            "reread_exact": 0 if exact_ok else None,
        }
        if record.not_sent:  # no request: nothing was sent, read, saved or billed
            row.update(estimate=0, exact=0, provider=None, untrimmed_estimate=0, untrimmed_exact=0, sent=0, dropped=0)
        elif record.server_kept:
            row.update(_reread(record, position, est_prefix, exact_prefix if exact_ok else None, row))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["turn", "estimate", "exact", "provider", "provider_simulated",
                                        "untrimmed_estimate", "untrimmed_exact", "sent", "dropped", "strategy",
                                        "budget", "model", "failed", "server_kept", "reread_estimate",
                                        "reread_exact"])
    for column in ("exact", "provider", "untrimmed_exact", "reread_exact"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Float64")
    frame["error_pct"] = ((frame["estimate"] - frame["exact"]) / frame["exact"] * 100).round(1)
    encoding = _encoding_name(records, model)
    return Inspection(
        turns=frame,
        cumulative=cumulative_frame(frame, prices=prices),
        messages=message_frame(history, records, estimates, exact, encoding=encoding),
        exact_available=exact_ok,
        encoding=encoding,
    )


def cumulative_frame(turns: pd.DataFrame, *, prices: Mapping[str, Price] | None = None) -> pd.DataFrame:
    """Tokens re-sent so far, as sent and as they would have been without trimming, plus the saving.

    With server-side history a turn sends little, but the server re-reads what it holds and bills it as input:
    ``read`` is what the model read (sent plus re-read), the saving is measured against it (the server's
    re-read is not trimming), and the input cost follows the provider's billed figure when it reported one.
    """
    exact = turns["exact"].notna().all() and len(turns) > 0
    sent = turns["exact"] if exact else turns["estimate"]
    untrimmed = turns["untrimmed_exact"] if exact else turns["untrimmed_estimate"]
    reread = (turns["reread_exact"] if exact else turns["reread_estimate"]).astype("float").fillna(0.0)
    frame = pd.DataFrame({
        "turn": turns["turn"],
        "sent": sent.astype("float"),
        "untrimmed": untrimmed.astype("float"),
    })
    frame["read"] = frame["sent"] + reread
    frame["cumulative_sent"] = frame["sent"].cumsum()
    frame["cumulative_read"] = frame["read"].cumsum()
    frame["cumulative_untrimmed"] = frame["untrimmed"].cumsum()
    frame["saved"] = frame["cumulative_untrimmed"] - frame["cumulative_read"]
    frame["counted_with"] = "exact" if exact else "chars/4"
    billed = turns["provider"].astype("Float64")
    charged = frame["read"].where(~(turns["server_kept"].astype(bool) & billed.notna()), billed.astype("float"))
    costs = [_input_cost(model, n, prices) for model, n in zip(turns["model"], charged, strict=True)]
    frame["cost"] = pd.Series(costs, dtype="Float64").cumsum() if costs and None not in costs else pd.NA
    untrimmed_costs = [_input_cost(m, n, prices) for m, n in zip(turns["model"], frame["untrimmed"], strict=True)]
    frame["cost_untrimmed"] = (pd.Series(untrimmed_costs, dtype="Float64").cumsum()
                               if untrimmed_costs and None not in untrimmed_costs else pd.NA)
    return frame


def _reread(record: TurnRecord, positions: Mapping[str, int], est_prefix: Sequence[int],
            exact_prefix: Sequence[int] | None, row: Mapping[str, Any]) -> dict[str, Any]:
    """The tokens the server re-read for a server-kept turn: the stored messages its record says it held (a
    record written before records said so: everything before the turn that was not sent)."""
    if record.server_held:
        held = spans_of(record.server_held, positions)
        return {"reread_estimate": _span_sum(est_prefix, held),
                "reread_exact": _span_sum(exact_prefix, held) if exact_prefix is not None else None}
    exact = row["untrimmed_exact"] - row["exact"] if exact_prefix is not None and row["exact"] is not None else None
    return {"reread_estimate": max(0, row["untrimmed_estimate"] - row["estimate"]),
            "reread_exact": max(0, exact) if exact is not None else None}


def _drops(history: Sequence[Message], records: Sequence[TurnRecord]) -> tuple[list[int | None], list[int]]:
    """Per position: the first turn that dropped it, and how many turns dropped it, in O(n + spans)."""
    n = len(history)
    first: list[int | None] = [None] * n
    delta = [0] * (n + 1)
    # skip[i]: the next position at or after i with no "first dropped" yet (path-halving, as union-find).
    skip = list(range(n + 1))

    def find(i: int) -> int:
        while skip[i] != i:
            skip[i] = skip[skip[i]]
            i = skip[i]
        return i

    positions = id_positions(history)
    for record in records:
        for start, stop in spans_of(record.dropped, positions):
            delta[start] += 1
            delta[stop + 1] -= 1
            i = find(start)
            while i <= stop:
                first[i] = record.turn or 0
                skip[i] = i + 1
                i = find(i + 1)
    return first, list(itertools.accumulate(delta[:n]))


def message_frame(
    history: Sequence[Message],
    turns: Turns,
    estimates: Sequence[int],
    exact: Sequence[int | None],
    *,
    encoding: str = "o200k_base",
) -> pd.DataFrame:
    """One row per stored message: its kind, the seed's estimate against the exact tokens of its text, and
    the first turn whose payload left it out."""
    first_dropped, times_dropped = _drops(history, typed_turns(turns))
    rows = []
    for n, message in enumerate(history):
        text = content_text(message.get("content") or "")
        if message.get("tool_calls"):
            text = f"{text} {content_text(message['tool_calls'])}".strip()
        text_tokens = _text_tokens(text, encoding) if exact[n] is not None else None
        preview = " ".join(text.split())
        stored_id = message.get("id") if isinstance(message.get("id"), str) else None
        role = message.get("role")
        rows.append({
            "#": n, "role": role if isinstance(role, str) else str(role), "kind": message_kind(message),
            "preview": preview if len(preview) <= PREVIEW_CHARS else preview[: PREVIEW_CHARS - 1] + "…",
            "chars": len(text), "estimate": estimates[n], "text_tokens": text_tokens,
            # The seed estimates the content only: a tool call's arguments count as nothing.
            "error_pct": error_pct(estimates[n], text_tokens),
            "chars_per_token": round(len(text) / text_tokens, 2) if text_tokens else None,
            "exact": exact[n], "dropped_at_turn": first_dropped[n], "times_dropped": times_dropped[n],
            "id": stored_id,
        })
    frame = pd.DataFrame(rows, columns=["#", "role", "kind", "preview", "chars", "estimate", "text_tokens",
                                        "error_pct", "chars_per_token", "exact", "dropped_at_turn",
                                        "times_dropped", "id"])
    for column in ("text_tokens", "exact", "dropped_at_turn"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in ("error_pct", "chars_per_token"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Float64")
    return frame


def _text_tokens(text: str, encoding: str) -> int | None:
    try:
        return count_text(text, encoding)
    except EncodingUnavailable:
        return None


def kind_frame(messages: pd.DataFrame) -> pd.DataFrame:
    """chars/4 against the exact count, summed per kind of text (prose, CJK, code, JSON / tool call, emoji)."""
    counted = messages.dropna(subset=["text_tokens"])
    counted = counted[counted["text_tokens"] > 0]
    grouped = counted.groupby("kind", observed=True).agg(
        messages=("kind", "size"), chars=("chars", "sum"), estimate=("estimate", "sum"),
        exact=("text_tokens", "sum"))
    grouped = grouped.reindex([k for k in TEXT_KINDS if k in grouped.index]).reset_index()
    grouped["error_pct"] = ((grouped["estimate"] - grouped["exact"]) / grouped["exact"] * 100).round(1)
    grouped["chars_per_token"] = (grouped["chars"] / grouped["exact"]).round(2)
    return grouped


def error_series(turns: pd.DataFrame, *, max_points: int = 150) -> pd.DataFrame:
    """The chars/4 error per turn, or per group of turns when there are more than ``max_points``.

    Grouped rows give the mean error (weighted by tokens) and the smallest and largest turn error, so a
    1,000-turn session reads as 150 bars with whiskers rather than 1,000 slivers.
    """
    frame = turns.dropna(subset=["error_pct"])[["turn", "estimate", "exact", "error_pct"]].copy()
    frame["exact"] = frame["exact"].astype(float)
    if len(frame) <= max_points:
        frame = frame.assign(first=frame["turn"], last=frame["turn"], low=frame["error_pct"],
                             high=frame["error_pct"], label=frame["turn"].astype(str))
        return frame.reset_index(drop=True)
    size = -(-len(frame) // max_points)
    groups = frame.reset_index(drop=True).groupby(lambda i: i // size)
    out = groups.agg(first=("turn", "min"), last=("turn", "max"), estimate=("estimate", "sum"),
                     exact=("exact", "sum"), low=("error_pct", "min"), high=("error_pct", "max"))
    out["error_pct"] = ((out["estimate"] - out["exact"]) / out["exact"] * 100).round(1)
    out["turn"] = out["first"]
    out["label"] = out["first"].astype(str) + "–" + out["last"].astype(str)
    return out.reset_index(drop=True)


def _input_cost(model: str, tokens: float, prices: Mapping[str, Price] | None) -> float | None:
    if prices is None or pd.isna(tokens) or find_price(str(model), prices) is None:
        return None
    return estimate_cost(str(model), input_tokens=int(tokens), output_tokens=0, table=prices)


def _encoding_name(turns: Sequence[TurnRecord], model: str) -> str:
    encoding = next((t.encoding for t in reversed(turns) if t.encoding), None)
    return encoding or choose_encoding(model).name
