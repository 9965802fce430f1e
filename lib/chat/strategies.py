"""History strategies side by side: what the NEXT request of one conversation sends, bills and shows the model.

The seed's "Manual (Redis)" vs server-side table, made live. For one conversation plus its next message:
- manual re-send with "turns", "cache-aware" and "summary" (client-side compaction): the client re-sends
  (part of) the history, so what is sent is what is billed;
- server-side with ``previous_response_id`` (or a Conversations API ``conversation``): the request holds only
  the new message, but the server puts every earlier input and output item back in the context, and every one
  of those tokens is billed as input again;
- server-side with compaction (``context_management`` with a ``compact_threshold``): the server replaces the
  old items with an opaque (encrypted) compaction item once the context passes the threshold.

Cached tokens depend on the requests before this one, so every strategy's earlier turns are replayed through
``lib.costs.cache_model.PromptCache`` (SIMULATED, turns taken to follow each other without a pause). The server-side
rows are SIMULATED unless provider-reported usage is applied with ``with_reported_usage``. The compaction row
models the compaction item with the size of this lab's extractive summary at the same threshold: the real
item is encrypted, and its size shows only in the reported ``input_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from lib.context import (
    STRATEGY_LABELS,
    CompactionResult,
    ContextOverflowError,
    ExtractiveSummarizer,
    Summary,
    compact_history,
    trim_history,
)
from lib.core import Price, Usage, estimate_cost, turns_text, wire_payload
from lib.costs import PROFILES, PromptCache, TurnCache, replay_payloads, session_costs
from lib.providers import ProviderOptions, get_provider
from lib.tokens import count_chat_tokens, count_label

Message = Mapping[str, Any]
Side = Literal["client", "server"]
CACHE_PROFILE = "openai"  # every row is priced and cached as one OpenAI model, so the rows compare fairly
PLACEHOLDER_RESPONSE_ID = "resp_previous"  # stands in for the id the previous turn's response returned
SIMULATED_SERVER = "simulated: what the Responses API would bill"
MAX_OUTPUT_TOKENS = 1024
SHORT_LABELS = {"turns": "re-send: turns", "cache-aware": "re-send: cache-aware", "summary": "re-send: summary",
                "server-chain": "server: previous_response_id", "server-compaction": "server: compaction"}
SIMULATED_CACHE = f"{count_label('simulated')} ({PROFILES[CACHE_PROFILE].label})"


@dataclass(frozen=True)
class Visibility:
    """Which turns (1-based; the next message is the last) the model could see, read only as a summary,
    or not at all. ``opaque``: the summary is the server's encrypted compaction item."""

    visible: tuple[int, ...]
    summarised: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    opaque: bool = False

    def text(self) -> str:
        parts = [f"{turns_text(self.visible)} visible"] if self.visible else ["nothing visible"]
        if self.summarised:
            how = "in an encrypted compaction item" if self.opaque else "in a summary"
            parts.append(f"{turns_text(self.summarised)} {how}")
        if self.dropped:
            parts.append(f"{turns_text(self.dropped)} dropped")
        return "; ".join(parts)


@dataclass(frozen=True)
class StrategyRow:
    """One strategy's next request. Token figures count the whole input side; ``cost`` is input-side US$
    (the reply's output does not depend on the strategy) plus any summarisation requests."""

    key: str
    label: str
    side: Side
    request: dict[str, Any]  # the body as it would be sent
    bytes_sent: int
    tokens_sent: int
    tokens_billed: int
    cached_tokens: int
    cached_source: str
    input_cost: float | None
    visibility: Visibility
    summary_requests: int = 0  # summarisation requests behind this payload, over the whole session
    summary_cost: float | None = 0.0
    source: str = "simulated"  # where tokens_billed comes from
    notes: tuple[str, ...] = ()

    @property
    def short_label(self) -> str:
        return SHORT_LABELS.get(self.key, self.label)

    @property
    def cost(self) -> float | None:
        if self.input_cost is None or self.summary_cost is None:
            return None
        return self.input_cost + self.summary_cost


@dataclass(frozen=True)
class StrategyComparison:
    rows: list[StrategyRow]
    model: str
    budget: int
    count_label: str  # how the token figures were counted
    turns: int  # turns in the conversation, the next message included
    notes: list[str] = field(default_factory=list)

    def row(self, key: str) -> StrategyRow:
        return next(r for r in self.rows if r.key == key)


def compare_strategies(
    history: Sequence[Message],
    new_message: str,
    *,
    model: str,
    budget: int,
    system_prompt: str = "",
    reserve: int = 0,
    prices: Mapping[str, Price] | None = None,
    previous_response_id: str | None = None,
) -> StrategyComparison:
    """The five strategies' next request for ``history`` plus ``new_message``. Raises ContextOverflowError
    when the system prompt and the new message alone do not fit ``budget - reserve``."""
    if not new_message.strip():
        raise ValueError("Type the next message to compare the strategies on.")
    messages = _with_ids([*history, {"role": "user", "content": new_message}])
    turn_of = _turn_numbers(messages)
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    # Raises ContextOverflowError with both numbers when not even the new message fits.
    trim_history([*system, messages[-1]], budget, model=model, reserve_tokens=reserve)
    totals = {t.strategy: t.turns[-1] for t in session_costs(
        messages, model=model, budget=budget, system_prompt=system_prompt, reserve_tokens=reserve,
        strategies=("turns", "cache-aware", "none"), profiles=(CACHE_PROFILE,), prices=prices,
        use_timestamps=False)}
    summary = _replay_summary([*system, *messages], model=model, budget=budget, reserve=reserve, prices=prices)
    rows = [_manual_row(key, totals[key], replay_payloads(messages, model=model, budget=budget - reserve,
                                                          strategy=key, system_prompt=system_prompt)[-1],
                        turn_of, model=model) for key in ("turns", "cache-aware")]
    rows.append(_summary_row(summary, turn_of, model=model))
    chain = totals["none"]
    rows.append(_chain_row(chain, system, messages, turn_of, model=model, budget=budget,
                           previous_response_id=previous_response_id))
    rows.append(_compaction_row(summary, system, messages, turn_of, model=model, budget=budget,
                                previous_response_id=previous_response_id))
    return StrategyComparison(rows, model, budget, count_label("tiktoken", model=model), max(turn_of.values()),
                              notes=[f"Cached tokens are simulated with {PROFILES[CACHE_PROFILE].label}, every "
                                     "strategy's earlier turns replayed in order without a pause."])


def with_reported_usage(row: StrategyRow, usage: Usage, *, model: str,
                        prices: Mapping[str, Price] | None = None) -> StrategyRow:
    """The row with what the provider reported for a real request (billed and cached tokens, cost)."""
    billed = usage.prompt_total
    if billed is None:
        return row
    cost = estimate_cost(model, input_tokens=usage.uncached_input, output_tokens=0,
                         cache_read_tokens=usage.cache_read_tokens, table=prices)
    return replace(row, tokens_billed=billed, cached_tokens=usage.cache_read_tokens,
                   cached_source=count_label("provider"), input_cost=cost, source=count_label("provider"))


def chain_messages(history: Sequence[Message], new_message: str, *, system_prompt: str = "") -> list[dict[str, Any]]:
    """What a server-side chain holds at the next turn: the whole conversation plus the new message. Counting
    it as one request with the provider's count endpoint gives the input the chained request is billed."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    wire, _ = wire_payload([*system, *history, {"role": "user", "content": new_message}])
    return wire


def with_counted_billing(row: StrategyRow, tokens: int, *, model: str,
                         prices: Mapping[str, Price] | None = None) -> StrategyRow:
    """The row with its billed input counted by the provider's count endpoint (cached tokens stay simulated)."""
    cached = min(row.cached_tokens, tokens)
    cost = estimate_cost(model, input_tokens=tokens - cached, output_tokens=0, cache_read_tokens=cached, table=prices)
    return replace(row, tokens_billed=tokens, cached_tokens=cached, input_cost=cost, source=count_label("endpoint"))


def _with_ids(messages: Sequence[Message]) -> list[dict[str, Any]]:
    # Visibility is worked out by id, so every message needs one (the next message has none yet).
    return [{**m, "id": m.get("id") or f"cmp-{i}"} for i, m in enumerate(messages)]


def _turn_numbers(messages: Sequence[Message]) -> dict[str, int]:
    turn_of: dict[str, int] = {}
    turn = 0
    for message in messages:
        if message.get("role") == "user":
            turn += 1
        turn_of[str(message["id"])] = max(1, turn)
    return turn_of


def _visibility(payload: Sequence[Message], turn_of: Mapping[str, int], *, summary: Summary | None = None,
                opaque: bool = False) -> Visibility:
    every = set(turn_of.values())
    visible = {turn_of[str(m["id"])] for m in payload if str(m.get("id")) in turn_of}
    summarised = set(range(summary.first_turn, summary.last_turn + 1)) - visible if summary else set()
    return Visibility(tuple(sorted(visible)), tuple(sorted(summarised)),
                      tuple(sorted(every - visible - summarised)), opaque)


def _body_bytes(body: Mapping[str, Any]) -> int:
    return len(json.dumps(body, ensure_ascii=False).encode("utf-8"))


def _chat_body(payload: Sequence[Message], model: str) -> dict[str, Any]:
    wire, _ = wire_payload(payload)
    return get_provider("openai").build_request(wire, model=model, max_tokens=MAX_OUTPUT_TOKENS,
                                              options=ProviderOptions())


def _responses_body(system: Sequence[Message], new: Message, model: str, *, previous_response_id: str | None,
                    compaction_threshold: int | None = None) -> dict[str, Any]:
    options = ProviderOptions(previous_response_id=previous_response_id or PLACEHOLDER_RESPONSE_ID,
                              compaction_threshold=compaction_threshold)
    wire, _ = wire_payload([*system, new])
    return get_provider("openai-responses").build_request(wire, model=model, max_tokens=MAX_OUTPUT_TOKENS,
                                                        options=options)


def _manual_row(key: str, cache: TurnCache | None, payload: Sequence[Message] | None,
                turn_of: Mapping[str, int], *, model: str) -> StrategyRow:
    # ``payload`` is the replay's last payload: the same decisions the chat's trimmer makes, with the
    # cut "cache-aware" carried over from the earlier turns.
    kept = list(payload or [])
    body = _chat_body(kept, model)
    billed = cache.input_tokens if cache else 0
    return StrategyRow(key, f"Manual re-send: {STRATEGY_LABELS[key]}", "client", body, _body_bytes(body),
                       billed, billed, cache.cached_tokens if cache else 0, SIMULATED_CACHE,
                       cache.cost if cache else None, _visibility(kept, turn_of),
                       source=count_label("tiktoken", model=model),
                       notes=("What is sent is what is billed: the re-sent history is input again.",))


@dataclass(frozen=True)
class _SummaryReplay:
    payloads: list[list[dict[str, Any]] | None]
    caches: list[TurnCache | None]
    last: CompactionResult | None
    requests: int


def _replay_summary(items: Sequence[Message], *, model: str, budget: int, reserve: int,
                    prices: Mapping[str, Price] | None) -> _SummaryReplay:
    """Every turn's "summary" payload in order (the stored summary carried forward, as the chat does)."""
    summarizer = ExtractiveSummarizer()
    cache = PromptCache(CACHE_PROFILE, model=model, prices=prices)
    summary: Summary | None = None
    payloads: list[list[dict[str, Any]] | None] = []
    caches: list[TurnCache | None] = []
    last: CompactionResult | None = None
    requests = 0
    for end in [i + 1 for i, m in enumerate(items) if m.get("role") == "user"]:
        try:
            last = compact_history(items[:end], budget, model=model, summarizer=summarizer, summary=summary,
                                   reserve_tokens=reserve)
        except ContextOverflowError:
            payloads.append(None)
            caches.append(None)
            last = None
            continue
        summary, requests = last.summary, requests + last.summary_requests
        wire, _ = wire_payload(last.payload)
        payloads.append(last.payload)
        caches.append(cache.request(wire))
    return _SummaryReplay(payloads, caches, last, requests)


def _summary_row(replay: _SummaryReplay, turn_of: Mapping[str, int], *, model: str) -> StrategyRow:
    last, cache = replay.last, replay.caches[-1] if replay.caches else None
    assert last is not None and cache is not None  # compare_strategies checked that the new turn fits
    body = _chat_body(last.payload, model)
    notes = [*last.notes, f"{replay.requests} summarisation request(s) over the session, written by the offline "
             "extractive summariser (free); with a real provider each is a separate, billed request."]
    return StrategyRow("summary", f"Manual re-send: {STRATEGY_LABELS['summary']}", "client", body,
                       _body_bytes(body), cache.input_tokens, cache.input_tokens, cache.cached_tokens,
                       SIMULATED_CACHE, cache.cost,
                       _visibility(last.payload, turn_of, summary=last.summary),
                       summary_requests=replay.requests, summary_cost=0.0,
                       source=count_label("tiktoken", model=model), notes=tuple(notes))


def _chain_row(cache: TurnCache | None, system: list[dict[str, Any]], messages: Sequence[Message],
               turn_of: Mapping[str, int], *, model: str, budget: int,
               previous_response_id: str | None) -> StrategyRow:
    body = _responses_body(system, messages[-1], model, previous_response_id=previous_response_id)
    sent = count_chat_tokens([*system, messages[-1]], model)
    billed = cache.input_tokens if cache else count_chat_tokens([*system, *messages], model)
    notes = ["Only the new message is sent, but the server puts every earlier input and output item back in "
             f"the context: all {billed:,} tokens are billed as input, on every turn."]
    if billed > budget:
        notes.append(f"The chain holds {billed:,} tokens, over the budget of {budget:,}: the server would fail "
                     "the request at the model's window unless truncation='auto' lets it drop the oldest items.")
    return StrategyRow("server-chain", "Server-side: previous_response_id (or a conversation)", "server", body,
                       _body_bytes(body), sent, billed, cache.cached_tokens if cache else 0,
                       SIMULATED_CACHE,
                       cache.cost if cache else None, _visibility(messages, turn_of), source=SIMULATED_SERVER,
                       notes=tuple(notes))


def _compaction_row(replay: _SummaryReplay, system: list[dict[str, Any]], messages: Sequence[Message],
                    turn_of: Mapping[str, int], *, model: str, budget: int,
                    previous_response_id: str | None) -> StrategyRow:
    body = _responses_body(system, messages[-1], model, previous_response_id=previous_response_id,
                           compaction_threshold=budget)
    last, cache = replay.last, replay.caches[-1] if replay.caches else None
    assert last is not None and cache is not None  # compare_strategies checked that the new turn fits
    notes = ["Only the new message is sent. Once the context passes the threshold the server compacts the "
             "old items into one encrypted item; what is left is billed as input.",
             "Simulated with the size of the lab's extractive summary at the same threshold; the real item's "
             "size shows only in the reported input_tokens."]
    return StrategyRow("server-compaction", f"Server-side: compaction (compact_threshold={budget:,})", "server",
                       body, _body_bytes(body), count_chat_tokens([*system, messages[-1]], model),
                       cache.input_tokens, cache.cached_tokens,
                       SIMULATED_CACHE, cache.cost,
                       _visibility(last.payload, turn_of, summary=last.summary, opaque=True),
                       source=SIMULATED_SERVER, notes=tuple(notes))


def conversation_payloads(history: Sequence[Message], new_message: str, *, model: str, budget: int,
                          system_prompt: str = "") -> list[list[dict[str, Any]]]:
    """Every turn's payload of ``history`` plus ``new_message`` under the "cache-aware" trimmer (the one that
    keeps the prefix a cache needs), as wire messages; turns that overflow the budget are left out."""
    messages = [*history, {"role": "user", "content": new_message, "id": "next"}]
    payloads = replay_payloads(messages, model=model, budget=budget, strategy="cache-aware",
                               system_prompt=system_prompt)
    return [wire_payload(p)[0] for p in payloads if p is not None]
