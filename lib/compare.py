"""Send one history plus one new message to 2-4 provider configurations at once.

Each configuration runs in its own thread; ``run_comparison`` yields events (partial text, then the
finished column) in the order they happen, so a page can update every column live. One provider failing
or hanging never holds up the others. Results are saved as a comparison record, apart from the history.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lib.chat import payload_counts
from lib.pricing import Price
from lib.providers.base import Provider, ProviderOptions
from lib.records import (
    ReplyMeta,
    as_float,
    as_mapping,
    as_str,
    usage_cost,
    usage_from_json,
    usage_to_json,
    wire_payload,
)
from lib.sessions.base import SessionStore, stamp
from lib.trimming import ContextOverflowError, trim_history

MIN_COLUMNS, MAX_COLUMNS = 2, 4
UPDATE_EVERY_S = 0.1  # how often a column's partial text is reported while it streams


@dataclass(frozen=True)
class CompareConfig:
    """One column: a provider, a model and its options (e.g. prompt_caching for Anthropic)."""

    provider: str
    model: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        extras = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.provider} / {self.model}" + (f" ({extras})" if extras else "")


@dataclass
class ColumnResult:
    index: int
    label: str
    provider: str
    model: str
    text: str = ""
    done: bool = False
    ttft: float | None = None
    total: float | None = None
    usage: dict[str, Any] | None = None
    estimate: int | None = None
    exact: int | None = None
    sent_messages: int = 0
    dropped_messages: int = 0
    cost: float | None = None
    request: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None


def run_comparison(
    history: Sequence[Mapping[str, Any]],
    new_message: str,
    configs: Sequence[CompareConfig],
    *,
    provider_factory: Callable[[CompareConfig], Provider],
    system_prompt: str = "",
    strategy: str = "turns",
    budget: int = 80_000,
    timeout: float = 60.0,
    prices: Mapping[str, Price] | None = None,
) -> Iterator[ColumnResult]:
    """Yield ColumnResult snapshots as columns stream and finish; every column ends with ``done=True``."""
    if not new_message.strip():
        raise ValueError("Type a message to send to every provider.")
    if not MIN_COLUMNS <= len(configs) <= MAX_COLUMNS:
        raise ValueError(f"Compare {MIN_COLUMNS} to {MAX_COLUMNS} configurations, not {len(configs)}.")
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    candidates = [*system, *history, {"role": "user", "content": new_message}]
    events: queue.Queue[ColumnResult] = queue.Queue()
    for index, config in enumerate(configs):
        column = ColumnResult(index, config.label, config.provider, config.model)
        worker = threading.Thread(target=_run_column, name=f"compare-{index}", daemon=True,
                                  args=(column, config, candidates, provider_factory, strategy, budget, prices, events))
        worker.start()
    deadline = time.monotonic() + timeout
    pending = set(range(len(configs)))
    latest: dict[int, ColumnResult] = {}
    while pending:
        try:
            event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            # The threads can't be killed; a late answer is simply ignored.
            for index in sorted(pending):
                late = latest.get(index) or ColumnResult(index, configs[index].label, configs[index].provider,
                                                         configs[index].model)
                late.done, late.error, late.error_type = True, f"No answer within {timeout:g} s.", "Timeout"
                yield late
            return
        if event.index not in pending:
            continue
        latest[event.index] = event
        if event.done:
            pending.discard(event.index)
        yield event


def _run_column(column: ColumnResult, config: CompareConfig, candidates: list[dict[str, Any]],
                provider_factory: Callable[[CompareConfig], Provider], strategy: str, budget: int,
                prices: Mapping[str, Price] | None, events: queue.Queue[ColumnResult]) -> None:
    try:
        trim = trim_history(candidates, budget, model=config.model, strategy=strategy)
        payload, _ = wire_payload(trim.kept)
        counts = payload_counts(payload, config.model)
        column.estimate, column.exact = counts["estimate"], counts["exact"]
        column.sent_messages, column.dropped_messages = len(payload), len(trim.dropped)
        provider = provider_factory(config)
        # The offline model validates against the budget, as a real API does against its window.
        reply = provider.stream(payload, model=config.model, options=ProviderOptions(context_window=budget))
        column.request = reply.request
        last_report = 0.0
        for _ in reply:
            if time.monotonic() - last_report > UPDATE_EVERY_S:
                last_report = time.monotonic()
                column.text = reply.text
                events.put(_snapshot(column))
        column.text = reply.text
        column.ttft, column.total = reply.timings.first_token_s, reply.timings.total_s
        if reply.usage is not None:
            column.usage = usage_to_json(reply.usage)
            column.cost = usage_cost(config.model, reply.usage, prices)
    except ContextOverflowError as exc:
        column.error, column.error_type = f"Not sent: {exc}", type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - a failing column reports its error; the others go on
        column.error, column.error_type = str(exc), type(exc).__name__
    column.done = True
    events.put(_snapshot(column))


def _snapshot(column: ColumnResult) -> ColumnResult:
    return ColumnResult(**{k: v for k, v in vars(column).items()})


def request_differences(results: Sequence[ColumnResult]) -> list[str]:
    """Plain-language notes on how the request bodies differ."""
    notes = []
    for result in results:
        body = result.request
        if not body:
            continue
        if "input" in body:
            where = "`instructions`" if "instructions" in body else "nowhere (no system prompt)"
            chained = (f"only the new message, chained with `previous_response_id={body['previous_response_id']}`"
                       if "previous_response_id" in body else
                       f"{len(body['input'])} input items (no `previous_response_id` yet, so the whole history)")
            notes.append(f"**{result.label}**: Responses API; the system prompt goes in {where}; it sends "
                         f"{chained}.")
        elif result.provider == "anthropic":
            cached = "with `cache_control` breakpoints, so the re-sent history can be read from the cache" \
                if "cache_control" in str(body) else "without prompt caching"
            notes.append(f"**{result.label}**: Messages API; the system prompt is the top-level `system` field, "
                         f"and {len(body['messages'])} alternating user/assistant messages are re-sent, {cached}.")
        else:
            system = any(m.get("role") == "system" for m in body.get("messages", []))
            notes.append(f"**{result.label}**: Chat Completions; the system prompt is "
                         f"{'messages[0]' if system else 'absent'}, and all {len(body.get('messages', []))} "
                         "messages are re-sent on every call.")
    return notes


def comparison_record(
    new_message: str,
    configs: Sequence[CompareConfig],
    results: Sequence[ColumnResult],
    *,
    system_prompt: str,
    strategy: str,
    budget: int,
) -> dict[str, Any]:
    """What is saved with the session (never a key: options hold only flags like prompt_caching)."""
    return {
        "id": uuid.uuid4().hex, "ts": time.time(), "new_message": new_message, "system_prompt": system_prompt,
        "strategy": strategy, "budget": budget,
        "configs": [{"provider": c.provider, "model": c.model,
                     "options": {k: v for k, v in c.options.items() if "key" not in k.lower()}} for c in configs],
        "columns": [asdict(r) for r in sorted(results, key=lambda r: r.index)],
    }


def continue_with(store: SessionStore, session_id: str, record: Mapping[str, Any], column: int) -> list[dict]:
    """Append the compared message and the chosen column's reply to the main history."""
    columns = record.get("columns")
    chosen = as_mapping(columns[column] if isinstance(columns, list) and 0 <= column < len(columns) else None)
    text, question = as_str(chosen.get("text")), as_str(record.get("new_message"))
    if chosen.get("error") or not text or not question:
        raise ValueError("That column has no reply to continue with.")
    meta = ReplyMeta(provider=as_str(chosen.get("provider")), model=as_str(chosen.get("model")),
                     usage=usage_from_json(chosen.get("usage")), ttft=as_float(chosen.get("ttft")),
                     total=as_float(chosen.get("total")), cost=as_float(chosen.get("cost")),
                     comparison_id=as_str(record.get("id")))
    return store.append_messages(session_id, stamp({"role": "user", "content": question}),
                                 stamp({"role": "assistant", "content": text, "meta": meta.to_json()}))
