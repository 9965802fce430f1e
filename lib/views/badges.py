"""Badges for one turn of the payload timeline, and costs written so that different costs never look alike.

Pure data (no streamlit): ``turn_badges(row)`` turns a ``lib.views.timeline.TurnRow`` into ``Badge`` values; the
page gives each level a colour (errors red, warnings orange). Every badge says where its number comes from
in ``source`` (exact, provider-reported, simulated, estimate, or the turn record).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lib.context import belief_text
from lib.core import ReplyMeta, TurnRecord, cache_verdict, safe_title, ttl_text, usage_caption
from lib.tokens import ESTIMATE_LABEL, count_label
from lib.views.rows import Badge, Level, TurnRow

COST_UNIT_NOTE = "µ$ = micro-dollars (millionths of a US dollar)"
ERROR_CHARS = 160
PROBLEM_CHARS = 320  # a payload problem names the rule it breaks: long enough to keep it
OVER_BUDGET_PREFIX = "Over budget"  # lib.chat.conversation.problems_of writes the over-budget problem this way
_VERDICT_LEVELS: dict[str, Level] = {"ok": "ok", "info": "info", "neutral": "neutral", "warning": "warning"}


def format_cost(usd: float | None) -> str:
    """A cost that never reads the same as a different one: below a cent in micro-dollars to 0.1 µ$
    ("12.3 µ$"), from a cent up in dollars to 7 decimals, trailing zeros dropped ("$0.0123457", "$1.5").

    Both steps resolve 0.1 µ$, so two costs at least 1 µ$ apart always differ in their text.
    """
    if usd is None:
        return "no price"
    if usd == 0:
        return "$0"
    if abs(usd) < 0.01:
        return f"{usd * 1_000_000:,.1f} µ$"
    text = f"{abs(usd):,.7f}".rstrip("0").rstrip(".")
    return f"-${text}" if usd < 0 else f"${text}"


def turn_badges(row: TurnRow) -> list[Badge]:
    """What a teacher points at for one turn: counts, budget, validity, trimming, cache, compaction, cost.

    A turn that made no request gets its error alone: nothing was sent, trimmed, cached or paid. A turn whose
    history the server kept says so ("sent 1 new · the server re-read 5 · billed 75"), never "dropped".
    """
    record = row.record
    if record.not_sent:
        return _validity(row)
    if record.server_kept:
        badges = _server_sent(row)
    else:
        badges = [_sent(row), Badge(f"dropped {record.dropped_count}", "notice" if record.dropped_count else
                                    "neutral", ":material/content_cut:", "turn record")]
    trimmed = row.diff.removed - _left_out_now(row)  # those left out by hand have a badge of their own
    if trimmed > 0:
        badges.append(Badge(f"trimmed {trimmed} message{'s' * (trimmed != 1)} this turn",
                            "notice", ":material/content_cut:", "difference from the previous payload"))
    badges += _tools(row)
    badges += _manual(row)
    badges += _validity(row)
    if row.summary is not None:
        s = row.summary
        span = f"turn {s.first_turn}" if s.first_turn == s.last_turn else f"turns {s.first_turn}–{s.last_turn}"
        badges.append(Badge(f"{span} compacted into a summary ({s.tokens:,} tokens)" + (" · new" if row.new_summary
                            else ""), "notice", ":material/compress:", f"summary written by {s.model}"))
    cache = _cache(row)
    if cache is not None:
        badges.append(cache)
    badges.append(_cost(row))
    if record.reply_saved_late:
        badges.append(Badge("reply saved late (after a store outage)", "warning", ":material/sync_problem:",
                            "turn record"))
    return badges


def _sent(row: TurnRow) -> Badge:
    record = row.record
    with_system = "system prompt included" if record.system_sent else "no system prompt"
    return Badge(f"sent {record.sent_count} ({with_system}) · {row.tokens:,} tokens", "info", ":material/send:",
                 f"messages: turn record; tokens: {row.count_source}")


def _server_sent(row: TurnRow) -> list[Badge]:
    """Server-side history: what went over the wire; then what the server re-read, and what it billed."""
    record = row.record
    stored = record.sent_count - int(record.system_sent)
    system = " + system prompt" if record.system_sent else ""
    billed = record.usage.prompt_total if record.usage is not None else None
    billed_text = f"billed {billed:,} input tokens" if billed is not None else "billed input not reported"
    billed_source = "simulated" if record.usage is not None and record.usage.simulated else "provider-reported"
    return [Badge(f"sent {stored} new message{'s' * (stored != 1)}{system} · {row.tokens:,} tokens", "info",
                  ":material/send:", f"messages: turn record; tokens: {row.count_source}"),
            Badge(f"the server re-read {row.server_kept or 0:,} · {billed_text}", "info", ":material/cloud_sync:",
                  f"re-read: the stored messages the server held ({record.server_state}); billed: {billed_source} "
                  "usage")]


def _validity(row: TurnRow) -> list[Badge]:
    record = row.record
    badges: list[Badge] = []
    limit = (record.budget or 0) - (record.reserve or 0)
    size, source = (record.exact, _exact_label(row)) if record.exact is not None else (record.estimate, ESTIMATE_LABEL)
    belief = seed_belief(record)
    if belief is not None:  # the seed's own arithmetic beside the truth says "over budget" and why it happened
        over = record.exact is not None and record.exact > limit
        badges.append(Badge(belief, "error" if over or record.failed else "info", ":material/calculate:",
                            f"{ESTIMATE_LABEL} against {source}"))
    elif record.budget and size is not None and size > limit and record.sent_count:
        badges.append(Badge(f"over budget: {size:,} tokens sent > budget {limit:,}", "error", ":material/error:",
                            source))
    for problem in record.problems:
        if not problem.startswith(OVER_BUDGET_PREFIX):
            badges.append(Badge(f"invalid payload: {safe_title(problem, limit=PROBLEM_CHARS)}", "error",
                                ":material/block:", "payload check (lib.context.trimming.payload_problems)"))
    if record.failed:
        what = "not sent" if record.not_sent else "rejected"
        badges.append(Badge(f"{what}: {safe_title(record.error or record.error_type or '', limit=ERROR_CHARS)}",
                            "error", ":material/cancel:", f"{record.error_type or 'error'} from {record.provider}"))
    return badges


def seed_belief(record: TurnRecord) -> str | None:
    """What the seed's chars/4 arithmetic believed about a "seed" turn's payload, against the exact count:
    "chars/4 said 172 ≤ 200, so the seed sent it; exact count 236; the API refuses it". None for other turns."""
    if record.strategy != "seed" or record.estimate is None or not record.budget or not record.sent_count:
        return None
    refused = record.failed and record.error_type == "ContextLengthExceeded"
    return belief_text(record.estimate, record.budget - (record.reserve or 0), record.exact, refused=refused)
def _tools(row: TurnRow) -> list[Badge]:
    """The tool definitions re-sent with this payload, and their tokens (never trimmed)."""
    record = row.record
    if not record.tools_hash:
        return []
    count = len(record.tool_names)
    tokens = f" · {record.tool_tokens:,} tokens" if record.tool_tokens is not None else ""
    source = count_label("tools", model=record.model) if record.model else "turn record"
    return [Badge(f"{count} tool definition{'s' * (count != 1)} sent{tokens}, never trimmed", "info",
                  ":material/build:", f"tokens: {source}")]


def _left_out_now(row: TurnRow) -> int:
    """Messages the previous payload sent that this one left out by hand."""
    return sum(max(0, min(b, d) - max(a, c)) for a, b in row.left_out_runs for c, d in row.previous_runs)


def _manual(row: TurnRow) -> list[Badge]:
    """"You choose": turns pinned and left out by hand, with the messages they hold."""
    badges = []
    pinned = sum(stop - start for start, stop in row.pinned_runs)
    left_out = sum(stop - start for start, stop in row.left_out_runs)
    if pinned:
        badges.append(Badge(f"pinned by you: {pinned} message{'s' * (pinned != 1)} always sent", "notice",
                            ":material/push_pin:", "turn record (You choose)"))
    if left_out:
        badges.append(Badge(f"left out by you: {left_out} message{'s' * (left_out != 1)} never sent", "notice",
                            ":material/block:", "turn record (You choose)"))
    return badges


def _exact_label(row: TurnRow) -> str:
    record = row.record
    if record.encoding and record.model:
        return count_label("tiktoken", encoding=record.encoding, model=record.model)
    return row.count_source


def _cache(row: TurnRow) -> Badge | None:
    """The one cache badge (lib.core.usage_view.cache_verdict): reported figures win over the simulation."""
    cache = row.cache
    verdict = cache_verdict(row.record.usage, simulated_status=cache.status, simulated_label=cache.label,
                            simulated_tokens=cache.cached_tokens, simulated_source=cache.status_source)
    if verdict is None:
        return None
    icon = {"ok": ":material/check_circle:", "warning": ":material/link_off:"}.get(verdict.level,
                                                                                   ":material/cached:")
    source = f"{verdict.source}; {verdict.hint}" if verdict.hint else verdict.source
    # What changed first in the prefix (lib.views.timeline.cache_reason), set only when the replay saw it break.
    why = f": {row.cache_reason}" if row.cache_reason and verdict.level == "warning" else ""
    return Badge(f"{verdict.text}{why}", _VERDICT_LEVELS[verdict.level], icon, source)


def _cost(row: TurnRow) -> Badge:
    total = f" · running total {format_cost(row.running_total)}"
    if row.cost is None:
        return Badge(f"cost: {row.cost_source}{total}", "neutral", ":material/payments:", row.cost_source)
    return Badge(f"cost {format_cost(row.cost)}{total}", "info", ":material/payments:", row.cost_source)


def reply_caption(meta: Mapping[str, Any] | ReplyMeta | None) -> str:
    """'in 80 = 70 uncached + 3 cache read + 7 cache write (5m 5, 1h 2) · out 5 tokens (provider-reported) ·
    first token 0.21 s · total 1.30 s · cost 12.3 µ$ (price of claude-sonnet-4-6)'.

    The tokens part is lib.core.usage_view.usage_caption, the one rendering of usage. Reads a stored assistant
    message's ``meta`` tolerantly: a missing or odd figure reads "?".
    """
    reply = meta if isinstance(meta, ReplyMeta) else ReplyMeta.from_json(meta)
    usage = reply.usage
    parts = [usage_caption(usage)]
    if usage and usage.reasoning_tokens:
        parts.append(f"{usage.reasoning_tokens:,} of the output thinking")
    if usage and usage.explicit_cache_tokens:
        parts.append(f"explicit cache created: {usage.explicit_cache_tokens:,} tokens kept "
                     f"{ttl_text(usage.explicit_cache_hours)} (storage in the cost)")
    parts += [f"first token {_s(reply.ttft)}", f"total {_s(reply.total)}"]
    parts.append(f"cost {format_cost(reply.cost)}" + (f" ({reply.cost_source})" if reply.cost_source else ""))
    return " · ".join(parts)


def truncation_caption(meta: Mapping[str, Any] | ReplyMeta | None) -> str | None:
    """The note of a reply cut at the reply cap (MAX_REPLY_CHARS), as stored in its meta; None for a whole one."""
    reply = meta if isinstance(meta, ReplyMeta) else ReplyMeta.from_json(meta)
    if reply.truncated_at is None:
        return None
    return reply.truncated or f"Truncated at {reply.truncated_at:,} characters (MAX_REPLY_CHARS)."


def running_total_text(total: float, *, turns: int, unpriced: int = 0) -> str:
    """'Running total: 45.6 µ$ over 12 turns (estimate from the price table)'."""
    gap = f"; {unpriced} turn{'s' * (unpriced != 1)} without a price" if unpriced else ""
    return f"Running total: {format_cost(total)} over {turns} turn{'s' * (turns != 1)} (estimate{gap})"


def _s(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} s"
