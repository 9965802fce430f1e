"""Usage in words: one caption and one cache verdict, the same on every page (no streamlit).

Every provider's usage is read as four numbers (lib.core.usage.Usage): uncached input, cache reads, cache
writes (by TTL) and output, and "in N" is always their input sum. So OpenAI's "in 55" (its prompt_tokens,
cached included) and Anthropic's "in 80" (its input_tokens plus reads plus writes) mean the same thing.

Each figure keeps its source: a provider's figures are "provider-reported", the offline model's cache figures
are "simulated", and a verdict drawn from lib.costs.cache_model's replay says "simulated" in its own text. When a
provider reported usage, the verdict comes from its figures, never from the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lib.core.usage import Usage

VerdictLevel = Literal["ok", "info", "neutral", "warning"]
REPORTED = "provider-reported"
SIMULATED = "simulated"
# What turns a local server's cache figure on, for a server that sent none (issue-tracker and docs names).
NOT_REPORTED_HINT = ("vLLM reports cached tokens only when started with --enable-prompt-tokens-details; Ollama "
                     "maps its prompt_eval_cached_count to prompt_tokens_details.cached_tokens (update it if "
                     "absent); the llama.cpp server reports them")
NOT_REPORTED = "cached tokens not reported by this server"
_STATUS_LEVELS: dict[str, VerdictLevel] = {"kept": "ok", "broken": "warning", "expired": "warning",
                                           "first": "info", "short": "neutral"}


@dataclass(frozen=True)
class CacheVerdict:
    """What happened to the prompt cache on one turn, in words, with a level for its colour and its source."""

    text: str
    level: VerdictLevel
    source: str
    hint: str = ""  # what to do about it (a local server's flag), shown as help


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def writes_text(usage: Usage) -> str:
    """"7 cache write (5m 5, 1h 2)": the writes with their TTL split when the provider gave one."""
    split = ", ".join(f"{ttl} {n:,}" for ttl, n in usage.write_split)
    return f"{usage.cache_write_tokens:,} cache write" + (f" ({split})" if split else "")


def input_breakdown(usage: Usage) -> str:
    """The input as its parts: "70 uncached + 3 cache read + 7 cache write (5m 5, 1h 2)"."""
    if not usage.cache_reported:
        return NOT_REPORTED
    if not usage.cache_read_tokens and not usage.cache_write_tokens:
        return "nothing read from or written to a cache"
    parts = [f"{_n(usage.uncached_input)} uncached"]
    if usage.cache_read_tokens:
        parts.append(f"{usage.cache_read_tokens:,} cache read")
    if usage.cache_write_tokens:
        parts.append(writes_text(usage))
    return " + ".join(parts)


def usage_source(usage: Usage) -> str:
    """Where the figures come from, in words for a caption's end."""
    if usage.simulated:
        return "cache figures simulated"
    return REPORTED


def usage_caption(usage: Usage | None) -> str:
    """'in 80 = 70 uncached + 3 cache read + 7 cache write (5m 5, 1h 2) · out 5 tokens (provider-reported)'.

    "in" is always the whole input (uncached + cache reads + cache writes), whichever provider answered.
    """
    if usage is None:
        return "in ? · out ? tokens (no usage reported)"
    parts = input_breakdown(usage)
    joiner = " = " if usage.cache_reported and (usage.cache_read_tokens or usage.cache_write_tokens) else " ("
    inside = f"{joiner}{parts}" + (")" if joiner == " (" else "")
    return f"in {_n(usage.total_input)}{inside} · out {_n(usage.output_tokens)} tokens ({usage_source(usage)})"


def _miss(usage: Usage) -> str:
    return f" · why the cache missed: {usage.cache_miss} (provider diagnostics)" if usage.cache_miss else ""


def reported_verdict(usage: Usage) -> CacheVerdict:
    """The verdict a provider's own figures give (no simulation in it)."""
    if not usage.cache_reported:
        return CacheVerdict(f"cache: {NOT_REPORTED}", "neutral", REPORTED, NOT_REPORTED_HINT)
    reads, writes, total = usage.cache_read_tokens, usage.cache_write_tokens, usage.total_input
    written = f" · {writes_text(usage)}" if writes else ""
    if reads:
        return CacheVerdict(f"cache hit: {reads:,} of {_n(total)} input tokens read from the cache{written}"
                            f"{_miss(usage)}", "warning" if usage.cache_miss else "ok", REPORTED)
    if writes:
        return CacheVerdict(f"cache written, nothing read: {writes_text(usage)}{_miss(usage)}",
                            "warning" if usage.cache_miss else "info", REPORTED)
    return CacheVerdict(f"no cache read or write{_miss(usage)}", "warning" if usage.cache_miss else "neutral",
                        REPORTED)


def cache_verdict(usage: Usage | None, *, simulated_status: str | None, simulated_label: str = "",
                  simulated_tokens: int = 0, simulated_source: str = "") -> CacheVerdict | None:
    """The one cache badge of a turn.

    - A provider reported usage: its figures decide (``reported_verdict``), whatever the simulation says.
    - The offline model's (simulated) usage: the replay's words when they agree with its figures, else the
      figures; either way the text says "simulated".
    - No usage: the replay's verdict, labelled simulated; None when the turn reached no cache.
    """
    if usage is not None and usage.input_tokens is not None and not usage.simulated:
        return reported_verdict(usage)
    if usage is not None and usage.input_tokens is not None and usage.simulated:
        if simulated_status and simulated_tokens == usage.cache_read_tokens:
            return _simulated(simulated_status, simulated_label, usage.cache_read_tokens, simulated_source)
        figures = reported_verdict(usage)
        return CacheVerdict(f"{figures.text} (simulated)", figures.level, "simulated by the offline model")
    if simulated_status is None:
        return None
    return _simulated(simulated_status, simulated_label, simulated_tokens, simulated_source)


def _simulated(status: str, label: str, tokens: int, source: str) -> CacheVerdict:
    cached = f" · {tokens:,} cached tokens" if tokens else ""
    return CacheVerdict(f"{label}{cached} (simulated)", _STATUS_LEVELS.get(status, "neutral"), source or SIMULATED)
