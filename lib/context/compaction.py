"""The "summary" strategy: client-side compaction of old turns into one stored summary message.

When the payload no longer fits, the oldest whole turns are replaced by ONE message right after the system
prompt, labelled "Summary of turns 1–8 (compacted): ...", and the newest turns stay verbatim. The summary
is a session artefact (``Summary``, stored by the chat in session meta via ``to_json``) and is reused on
later turns until the payload fills again; the next compaction summarises the previous summary plus the
newly dropped turns only (incremental), never the whole history again.

Guarantees (property-tested): the system prompt is kept and never summarised; the newest user message is
kept; after the system prompt and the summary the payload starts with a user message; tool calls and results
are summarised or kept whole (the cut is always at a turn start); the payload, summary included, fits the
budget; the stored history is never changed. A failed summary request never fails the user's turn: the
turns are dropped instead, with a note saying so.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from lib.context.payload import TrimResult
from lib.context.trimming import DEFAULT_LOW_WATER, HistoryIndex, plan_turns
from lib.core import Price, estimate_cost
from lib.tokens import content_text, count_tokens, message_tokens

log = logging.getLogger(__name__)
Message = Mapping[str, Any]
SUMMARY_ROLE = "user"  # accepted by every API; Anthropic's adapter merges it with the user turn after it
SUMMARY_FRAMING_TOKENS = 24  # label and message framing around the summary text
SUMMARY_INSTRUCTION = (
    "You compact a chat history. Write a short factual summary of the turns below for the assistant's own "
    "later use: keep names, numbers, decisions, code identifiers and open questions; drop pleasantries. "
    "If a previous summary is given, merge it with the new turns. Reply with the summary only."
)


@dataclass(frozen=True)
class Summary:
    """A stored summary of turns ``first_turn``..``last_turn`` (1-based turn numbers of the session)."""

    text: str
    first_turn: int
    last_turn: int
    model: str  # the model (or "extractive") that wrote it
    tokens: int  # tokens of the summary message as sent
    cost: float | None = 0.0  # US$ of the request that wrote this version (None: no price known)
    total_cost: float | None = 0.0  # US$ of every summarisation request behind it (incremental)
    requests: int = 1  # summarisation requests behind it
    input_tokens: int = 0  # usage of the latest summarisation request
    output_tokens: int = 0
    request: dict[str, Any] | None = None  # the latest summarisation request body, when a provider wrote it
    created_at: float = 0.0

    @property
    def id(self) -> str:
        return f"summary-{self.first_turn}-{self.last_turn}"

    @property
    def label(self) -> str:
        return f"Summary of turns {self.first_turn}–{self.last_turn} (compacted)"

    def message(self) -> dict[str, Any]:
        """The message sent after the system prompt; ``meta`` never reaches the model."""
        return {"id": self.id, "role": SUMMARY_ROLE, "content": f"{self.label}: {self.text}",
                "meta": {"summary": {"first_turn": self.first_turn, "last_turn": self.last_turn}}}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Any) -> Summary | None:
        """A stored summary back, or None when it is missing or malformed (never raises)."""
        if not isinstance(obj, Mapping):
            return None
        text, first, last = obj.get("text"), obj.get("first_turn"), obj.get("last_turn")
        if not isinstance(text, str) or not isinstance(first, int) or not isinstance(last, int) \
                or isinstance(first, bool) or isinstance(last, bool) or not 1 <= first <= last:
            return None

        def num(key: str, default: Any) -> Any:
            value = obj.get(key)
            return value if isinstance(value, int | float) and not isinstance(value, bool) else default

        request = obj.get("request")
        return cls(text, first, last, str(obj.get("model") or "unknown"), int(num("tokens", 0)),
                   num("cost", None), num("total_cost", None), int(num("requests", 1)),
                   int(num("input_tokens", 0)), int(num("output_tokens", 0)),
                   request if isinstance(request, dict) else None, float(num("created_at", 0.0)))


@dataclass(frozen=True)
class SummaryDraft:
    """What a summariser returns: the text and what writing it cost."""

    text: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = 0.0
    request: dict[str, Any] | None = None


class Summarizer(Protocol):
    """Writes a summary of ``previous`` plus ``turns`` (a list of (turn number, message)), in at most
    ``max_tokens`` tokens. Raising is allowed: the caller falls back to dropping the turns."""

    def summarize(
        self, previous: Summary | None, turns: Sequence[tuple[int, Message]], *, max_tokens: int, model: str
    ) -> SummaryDraft: ...


def render_turns(turns: Sequence[tuple[int, Message]]) -> list[str]:
    """One line per message: "T3 user: ...", tool calls and results included (so pairs stay together)."""
    lines = []
    for turn, message in turns:
        role = str(message.get("role"))
        text = content_text(message.get("content") or "").strip()
        calls = message.get("tool_calls") or []
        if calls:
            names = ", ".join(str((c.get("function") or {}).get("name", "?")) for c in calls if isinstance(c, Mapping))
            text = f"{text} [called {names}]".strip()
        lines.append(f"T{turn} {role}: {' '.join(text.split())}")
    return lines


class ExtractiveSummarizer:
    """Offline and deterministic (no key, no network): the first sentence of every message. When that is
    over ``max_tokens`` it sheds, in order: the assistant and tool lines (what the user said carries the
    facts), then length from every line evenly, then whole lines from the middle ("middle-out": the
    opening turns usually set the task, the latest are the freshest). Honest about being extractive."""

    name = "extractive"

    def __repr__(self) -> str:
        return "ExtractiveSummarizer()"

    def summarize(
        self, previous: Summary | None, turns: Sequence[tuple[int, Message]], *, max_tokens: int, model: str
    ) -> SummaryDraft:
        lines = (previous.text.split("\n") if previous else []) + [_first_sentence(x) for x in render_turns(turns)]
        width = max((len(x) for x in lines), default=0)
        while lines and count_tokens("\n".join(lines), model) > max_tokens:
            replies = [i for i, x in enumerate(lines) if not re.match(r"T\d+ user:", x)]
            if replies:
                del lines[replies[0]]
            elif width > 48:
                width = width * 3 // 4
                lines = [x if len(x) <= width else x[: width - 1] + "…" for x in lines]
            else:  # keep the head (the opening turns set the task) and the tail; lose the middle
                del lines[len(lines) // 2]
        return SummaryDraft("\n".join(lines), "extractive (offline)")


def _first_sentence(line: str) -> str:
    match = re.match(r"(T\d+ \w+: .+?[.!?。！？])(\s|$)", line)
    return match.group(1) if match else line


class ProviderSummarizer:
    """Asks a Provider for the summary: a separate, visible request whose usage is billed."""

    def __init__(self, provider: Any, *, model: str, prices: Mapping[str, Price] | None = None) -> None:
        self.provider = provider
        self.model = model
        self.prices = prices

    def __repr__(self) -> str:
        return f"ProviderSummarizer(provider={self.provider!r}, model={self.model!r})"

    def summarize(
        self, previous: Summary | None, turns: Sequence[tuple[int, Message]], *, max_tokens: int, model: str
    ) -> SummaryDraft:
        parts = [f"Previous summary:\n{previous.text}"] if previous else []
        first, last = turns[0][0], turns[-1][0]
        parts.append(f"Turns {first}–{last}:\n" + "\n".join(render_turns(turns)))
        messages = [{"role": "system", "content": SUMMARY_INSTRUCTION},
                    {"role": "user", "content": "\n\n".join(parts)}]
        reply = self.provider.stream(messages, model=self.model, max_tokens=max_tokens)
        text = "".join(reply).strip()
        if not text:
            raise ValueError("The summary request returned no text.")
        usage = reply.usage
        input_tokens = (usage.prompt_total or 0) if usage else 0
        output_tokens = (usage.output_tokens or 0) if usage else 0
        cost = estimate_cost(self.model, input_tokens=usage.uncached_input if usage else None,
                             output_tokens=output_tokens, cache_read_tokens=usage.cache_read_tokens if usage else 0,
                             table=self.prices) if usage else None
        return SummaryDraft(text, self.model, input_tokens, output_tokens, cost, reply.request)


@dataclass(frozen=True)
class CompactionResult:
    """The payload (``trim.kept``: system, summary message, newest turns) and what happened to build it."""

    trim: TrimResult
    summary: Summary | None  # the summary in the payload: new, reused, or None
    compacted: bool = False  # a new summary was written this turn
    summary_requests: int = 0  # summarisation requests made this turn (failed ones included)
    notes: list[str] = field(default_factory=list)

    @property
    def payload(self) -> list[dict[str, Any]]:
        return self.trim.kept


def compact_history(
    messages: Sequence[Message],
    max_tokens: int,
    *,
    model: str,
    summarizer: Summarizer,
    summary: Summary | None = None,
    reserve_tokens: int = 0,
    low_water: float = DEFAULT_LOW_WATER,
    summary_tokens: int | None = None,
) -> CompactionResult:
    """Build the payload for ``messages`` (system prompt + the whole stored history + the new user message).

    ``summary`` is the session's stored summary (None at first). ``summary_tokens`` caps a new summary's
    text (default: an eighth of the budget, between 64 and 600 tokens). Never mutates ``messages``.
    """
    if max_tokens <= 0 or reserve_tokens < 0 or not 0 < low_water <= 1:
        raise ValueError("max_tokens must be positive, reserve_tokens not negative, low_water in (0, 1]")
    budget = max_tokens - reserve_tokens
    index = HistoryIndex.build(messages, model)
    end, newest = len(messages), index.check_floor(budget, max_tokens=max_tokens, reserve_tokens=reserve_tokens)
    floor = index.payload_tokens(newest, end)
    plan = _Plan(messages, index, budget, model)
    notes: list[str] = []
    if summary is not None and not 1 <= summary.last_turn < len(index.starts):
        notes.append(f"The stored summary ({summary.label}) does not match this history; it was not used.")
        summary = None
    start = index.starts[summary.last_turn] if summary else index.starts[0]
    if index.payload_tokens(start, end) + (summary.tokens if summary else 0) <= budget:
        return plan.result(start, summary, notes=notes)
    allowance = summary_tokens or max(64, min(600, budget // 8))
    target = math.floor(low_water * budget) - allowance - SUMMARY_FRAMING_TOKENS
    first = index.slot_of(start) or 0
    new_start = index.first_fitting(first, index.newest_slot(newest) + 1, end, target)
    if new_start is None:
        new_start = newest
    if new_start == start or floor + allowance + SUMMARY_FRAMING_TOKENS > budget:
        notes.append("No room for a summary at this budget: old turns were dropped instead.")
        return plan.result(plan_turns(index, end, newest, budget), None, notes=notes)
    turns = plan.turns_between(start, new_start)
    try:
        draft = summarizer.summarize(summary, turns, max_tokens=allowance, model=model)
    except Exception as exc:  # noqa: BLE001 - a failed summary must never fail the user's turn
        log.warning("Summary request failed; dropping turns instead", exc_info=True)
        notes.append(f"The summary request failed ({type(exc).__name__}: {exc}); turns {turns[0][0]}–"
                     f"{turns[-1][0]} were dropped instead of summarised.")
        kept = summary if summary and index.payload_tokens(new_start, end) + summary.tokens <= budget else None
        return plan.result(new_start if kept else plan_turns(index, end, newest, budget), kept, notes=notes,
                           requests=1)
    new = _new_summary(summary, draft, first_turn=summary.first_turn if summary else 1,
                       last_turn=turns[-1][0], model=model)
    if index.payload_tokens(new_start, end) + new.tokens > budget:
        notes.append(f"The new summary ({new.tokens:,} tokens) did not fit the budget; turns were dropped instead.")
        return plan.result(plan_turns(index, end, newest, budget), None, notes=notes, requests=1)
    notes.append(f"Turns {new.first_turn}–{new.last_turn} compacted into a summary ({new.tokens:,} tokens).")
    return plan.result(new_start, new, notes=notes, requests=1, compacted=True)


def _new_summary(previous: Summary | None, draft: SummaryDraft, *, first_turn: int, last_turn: int,
                 model: str) -> Summary:
    draft_summary = Summary(draft.text, first_turn, last_turn, draft.model, 0)
    tokens = message_tokens(draft_summary.message(), model)
    earlier = previous.total_cost if previous else 0.0
    total = None if earlier is None or draft.cost is None else earlier + draft.cost
    return Summary(draft.text, first_turn, last_turn, draft.model, tokens, draft.cost, total,
                   (previous.requests if previous else 0) + 1, draft.input_tokens, draft.output_tokens,
                   draft.request, time.time())


@dataclass(frozen=True)
class _Plan:
    messages: Sequence[Message]
    index: HistoryIndex
    budget: int
    model: str

    def turns_between(self, start: int, stop: int) -> list[tuple[int, Message]]:
        """(turn number, message) for the non-system messages in [start, stop): never the system prompt."""
        system = set(self.index.system)
        turn = (self.index.slot_of(start) or 0) + 1
        out = []
        for i in range(start, stop):
            if i in system:
                continue
            if i != start and self.messages[i].get("role") == "user":
                turn += 1
            out.append((turn, self.messages[i]))
        return out

    def result(self, start: int, summary: Summary | None, *, notes: list[str], requests: int = 0,
               compacted: bool = False) -> CompactionResult:
        system = set(self.index.system)
        leading = [dict(self.messages[i]) for i in self.index.system if i < start]
        sent = [dict(m) for i, m in enumerate(self.messages) if i >= start]
        dropped = [dict(m) for i, m in enumerate(self.messages) if i < start and i not in system]
        kept = [*leading, *([summary.message()] if summary else []), *sent]
        end = len(self.messages)
        tokens = self.index.payload_tokens(start, end) + (summary.tokens if summary else 0)
        trim = TrimResult(kept, dropped, self.index.payload_tokens(0, end), tokens, self.budget, "summary",
                          counter=self.index.counter, notes=list(notes),
                          cut=summary.id if summary else (str(sent[0]["id"]) if sent and "id" in sent[0] else None))
        return CompactionResult(trim, summary, compacted, requests, notes)
