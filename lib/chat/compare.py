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

from lib.chat.conversation import payload_counts
from lib.context import ContextOverflowError, body_shape, trim_history
from lib.core import (
    NOT_REPORTED,
    OFFLINE_PREFIX,
    ColumnResult,
    Price,
    ReplyMeta,
    ToolDef,
    Usage,
    as_float,
    as_mapping,
    as_str,
    cache_verdict,
    markdown_literal,
    priced,
    report_lines_of,
    ttl_text,
    usage_from_json,
    usage_to_json,
    wire_payload,
)
from lib.providers import Provider, ProviderOptions
from lib.sessions import SessionStore, stamp
from lib.tokens import EncodingUnavailable, count_label, count_tool_tokens

MIN_COLUMNS, MAX_COLUMNS = 2, 4
UPDATE_EVERY_S = 0.1  # how often a column's partial text is reported while it streams


@dataclass(frozen=True)
class CompareConfig:
    """One column: a provider, a model and its options (e.g. prompt_caching for Anthropic)."""

    provider: str
    model: str
    options: Mapping[str, Any] = field(default_factory=dict)
    # Per-call ProviderOptions fields (truncation, compaction_threshold): what the request itself asks for.
    call: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        extras = ", ".join(f"{k}={v}" for k, v in sorted({**self.options, **self.call}.items()))
        return f"{self.provider} / {self.model}" + (f" ({extras})" if extras else "")


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
    reference_model: str | None = None,
    tools: Sequence[ToolDef] = (),
) -> Iterator[ColumnResult]:
    """Yield ColumnResult snapshots as columns stream and finish; every column ends with ``done=True``.

    ``reference_model`` prices (and caches) the offline model as that model. ``tools``: definitions every
    column sends in its provider's shape (held first by each column's budget)."""
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
                                  args=(column, config, candidates, provider_factory, strategy, budget,
                                        _Pricing(prices, reference_model), events, tuple(tools)))
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


@dataclass(frozen=True)
class _Pricing:
    prices: Mapping[str, Price] | None
    reference_model: str | None


def _run_column(column: ColumnResult, config: CompareConfig, candidates: list[dict[str, Any]],
                provider_factory: Callable[[CompareConfig], Provider], strategy: str, budget: int,
                pricing: _Pricing, events: queue.Queue[ColumnResult], tools: tuple[ToolDef, ...] = ()) -> None:
    try:
        try:
            tool_tokens = count_tool_tokens(tools, config.model)
        except EncodingUnavailable:
            tool_tokens = 0
        trim = trim_history(candidates, budget, model=config.model, strategy=strategy, tool_tokens=tool_tokens)
        payload, _ = wire_payload(trim.kept)
        counts = payload_counts(payload, config.model, tools)
        column.estimate, column.exact = counts["estimate"], counts["exact"]
        column.count_label = count_label("tiktoken", model=config.model) if counts["exact"] is not None \
            else count_label("estimate")
        column.sent_messages, column.dropped_messages = len(payload), len(trim.dropped)
        provider = provider_factory(config)
        # The offline model validates against the budget, as a real API does against its window.
        reply = provider.stream(payload, model=config.model,
                                options=ProviderOptions(context_window=budget, tools=tools, **dict(config.call)))
        column.request = reply.request
        column.sent_items, column.sent_note = _sent(reply.request)
        last_report = 0.0
        for _ in reply:
            if time.monotonic() - last_report > UPDATE_EVERY_S:
                last_report = time.monotonic()
                column.text = reply.text
                events.put(_snapshot(column))
        column.text = reply.text
        # Sending may complete the body (Gemini moves a cached prefix out of it): describe what went out.
        column.request = reply.request
        column.sent_items, column.sent_note = _sent(reply.request)
        column.ttft, column.total = reply.timings.first_token_s, reply.timings.total_s
        column.response_id = reply.response_id
        column.server_context = [{"kind": c.kind, **c.detail} for c in reply.server_context]
        column.report = list(reply.report)
        if reply.usage is not None:
            column.usage = usage_to_json(reply.usage)
        reference = pricing.reference_model if config.model.startswith(OFFLINE_PREFIX) else None
        column.cost, column.cost_source = priced(config.model, reply.usage, reference_model=reference,
                                                 prices=pricing.prices)
    except ContextOverflowError as exc:
        column.error, column.error_type = f"Not sent: {exc}", type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - a failing column reports its error; the others go on
        column.error, column.error_type = str(exc), type(exc).__name__
    column.done = True
    events.put(_snapshot(column))


def _snapshot(column: ColumnResult) -> ColumnResult:
    return ColumnResult(**{k: v for k, v in vars(column).items()})


def _sent(request: Mapping[str, Any] | None) -> tuple[int | None, str]:
    """What the body itself sends, so "messages sent" and the request notes tell the same story."""
    if not request:
        return None, ""
    shape = body_shape(request)
    where = "" if shape.system in ("none",) or shape.system.startswith("messages[0]") else f" + {shape.system}"
    cache = " after the explicit cache `cachedContent`" if shape.cached_content else ""
    return shape.items, f"{shape.sent_text}{where}{cache}"


def request_differences(results: Sequence[ColumnResult]) -> list[str]:
    """Plain-language notes on how the request bodies differ (counts read from the bodies themselves), as
    Markdown: the column's label (a typed model name) and the response id it chains to are literal text."""
    notes = []
    for result in results:
        body = result.request
        if not body:
            continue
        shape = body_shape(body)
        label = markdown_literal(result.label)
        tools = f" Tools: {shape.tools}." if shape.tools else ""
        if shape.api == "Responses":
            chained = (f"only the new message, chained with {markdown_literal(shape.chained)}" if shape.chained else
                       f"{shape.sent_text} (no `previous_response_id` yet, so the whole history)")
            where = shape.system if shape.system != "none" else "nowhere (no system prompt)"
            notes.append(f"**{label}**: Responses API; the system prompt goes in {where}; it sends "
                         f"{chained}.{tools}")
        elif shape.api == "Gemini generateContent":
            cached = (f"after the explicit context cache {markdown_literal(shape.cached_content)}, which holds the "
                      "system instruction (if any) and the stable history" if shape.cached_content else
                      "with no explicit cache (Gemini's implicit cache may still read a repeated prefix)")
            system = "there is no system prompt" if shape.system == "none" else \
                f"the system prompt is in {shape.system}"
            notes.append(f"**{label}**: Gemini generateContent (the model is in the URL); {system}, and "
                         f"{shape.sent_text} (roles user/model) are sent, {cached}.{tools}")
        elif shape.api == "Messages":
            cached = (f"with {shape.cache_breakpoints} `cache_control` breakpoint(s), so the re-sent history can "
                      "be read from the cache") if shape.cache_breakpoints else "without prompt caching"
            system = "there is no system prompt" if shape.system == "none" else \
                f"the system prompt is the {shape.system} field"
            notes.append(f"**{label}**: Messages API; {system}, and {shape.sent_text} (alternating "
                         f"user/assistant) are re-sent, {cached}.{tools}")
        else:
            notes.append(f"**{label}**: Chat Completions; the system prompt is {shape.system}, and all "
                         f"{shape.sent_text} are re-sent on every call.{tools}")
    return notes


def comparison_record(
    new_message: str,
    configs: Sequence[CompareConfig],
    results: Sequence[ColumnResult],
    *,
    system_prompt: str,
    strategy: str,
    budget: int,
    tools: Sequence[ToolDef] = (),
) -> dict[str, Any]:
    """What is saved with the session (never a key: options hold only flags like prompt_caching)."""
    return {
        "id": uuid.uuid4().hex, "ts": time.time(), "new_message": new_message, "system_prompt": system_prompt,
        "strategy": strategy, "budget": budget, "tools": [t.name for t in tools],
        "configs": [{"provider": c.provider, "model": c.model,
                     "options": {k: v for k, v in c.options.items() if "key" not in k.lower()},
                     "call": dict(c.call)} for c in configs],
        "columns": [asdict(r) for r in sorted(results, key=lambda r: r.index)],
    }


def continue_with(store: SessionStore, session_id: str, record: Mapping[str, Any], column: int) -> list[dict[str, Any]]:
    """Append the compared message and the chosen column's reply to the main history."""
    columns = record.get("columns")
    chosen = as_mapping(columns[column] if isinstance(columns, list) and 0 <= column < len(columns) else None)
    text, question = as_str(chosen.get("text")), as_str(record.get("new_message"))
    if chosen.get("error") or not text or not question:
        raise ValueError("That column has no reply to continue with.")
    meta = ReplyMeta(provider=as_str(chosen.get("provider")), model=as_str(chosen.get("model")),
                     usage=usage_from_json(chosen.get("usage")), ttft=as_float(chosen.get("ttft")),
                     total=as_float(chosen.get("total")), cost=as_float(chosen.get("cost")),
                     comparison_id=as_str(record.get("id")), report=report_lines_of(chosen.get("report")))
    return store.append_messages(session_id, stamp({"role": "user", "content": question}),
                                 stamp({"role": "assistant", "content": text, "meta": meta.to_json()}))


NONE = "—"  # what a table shows for a figure that does not exist (never a raw None)


def tokens_text(value: int | None) -> str:
    return NONE if value is None else f"{value:,}"


def seconds_text(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}"


def micro_dollars(cost: float | None) -> str:
    """US$ in millionths (µ$) with two decimals: small enough costs still tell the columns apart."""
    return NONE if cost is None else f"{cost * 1_000_000:,.2f}"


def column_name(result: ColumnResult) -> str:
    return f"{result.index + 1}. {result.label}"


def status_text(result: ColumnResult) -> str:
    if result.error:
        return f"failed ({result.error_type or 'error'})"
    return "ok" if result.done else "streaming"


def explicit_cache_text(usage: Usage | None) -> str:
    """An explicit context cache the request created (Gemini): "1,234 tokens × 1 h", or "—"."""
    if usage is None or not usage.explicit_cache_tokens:
        return NONE
    kept = ttl_text(usage.explicit_cache_hours)
    return f"{usage.explicit_cache_tokens:,} tokens × {kept} (billed once, then storage)"


def server_context_text(items: Sequence[Mapping[str, Any]]) -> str:
    """What the server did to the context: "compaction item (120 encrypted bytes)", applied edits, or "—"."""
    parts = []
    for item in items:
        if item.get("kind") == "compaction":
            size = item.get("encrypted_bytes")
            parts.append(f"compaction item ({size:,} encrypted bytes)" if isinstance(size, int) else "compaction item")
        else:
            parts.append(f"applied edit {item.get('kind')}")
    return "; ".join(parts) or NONE


def _cache_figure(usage: Usage | None, tokens: int | None) -> str:
    """A cache figure with its source: "not reported" for a server that sent none, never 0."""
    if usage is None:
        return NONE
    if not usage.cache_reported:
        return NOT_REPORTED
    text = tokens_text(tokens)
    if tokens and tokens == usage.cache_write_tokens and usage.write_split:
        text += " (" + ", ".join(f"{ttl} {n:,}" for ttl, n in usage.write_split) + ")"
    return text + (" (simulated)" if usage.simulated and tokens else "")


def _verdict_text(usage: Usage | None) -> str:
    verdict = cache_verdict(usage, simulated_status=None)
    return verdict.text if verdict is not None else NONE


def summary_table(results: Sequence[ColumnResult]) -> dict[str, dict[str, str]]:
    """One column per configuration, one row per figure with its unit, every cell a string ("—" if none)."""
    table: dict[str, dict[str, str]] = {}
    for result in sorted(results, key=lambda r: r.index):
        usage = usage_from_json(result.usage)
        table[column_name(result)] = {
            "status": status_text(result),
            # The four numbers every provider's usage is read as (lib.core.usage_view): "input" is their sum.
            "input tokens (uncached + cache reads + cache writes)": tokens_text(usage.total_input if usage else None),
            "uncached input tokens": tokens_text(usage.uncached_input if usage else None),
            "cache reads (tokens)": _cache_figure(usage, None if usage is None else usage.cache_read_tokens),
            "cache writes (tokens, by TTL)": _cache_figure(usage, None if usage is None else usage.cache_write_tokens),
            "explicit cache created (tokens × TTL)": explicit_cache_text(usage),
            "output tokens": tokens_text(usage.output_tokens if usage else None),
            "cache": _verdict_text(usage),
            "time to first token (s)": seconds_text(result.ttft),
            "total time (s)": seconds_text(result.total),
            "cost (µ$, millionths of a US$)": micro_dollars(result.cost),
            "cost basis": result.cost_source or NONE,
            "tokens counted before sending": tokens_text(result.exact if result.exact is not None
                                                         else result.estimate),
            "count": result.count_label or NONE,
            "sent": result.sent_note or NONE,
            "messages dropped by trimming": tokens_text(result.dropped_messages),
            "server-side context": server_context_text(result.server_context),
        }
    return table
