"""Estimated cost of a request from an editable price table (US$ per million tokens).

Prices change, so the pages let the user edit the table, and every figure is labelled an estimate.

Table dated 2026-11-25. Sources, read on that date:
- Model names and shutdown dates: the installed SDKs (openai 3.57 ``openai/types/shared/chat_model.py``
  with its "Deprecated values" list; anthropic 2.13 ``anthropic/types/model_param.py`` and
  ``anthropic/_data/deprecated_models.py``). o4-mini was shut down on 2026-10-23 and is not listed;
  gpt-5 / gpt-5-mini shut down on 2026-12-11 and gpt-4o / gpt-4.1 on 2027-01-14, so they stay priced for
  existing sessions but are no longer offered as defaults.
- OpenAI prices: https://developers.openai.com/api/docs/pricing (as quoted in June 2026 by morphllm.com and
  in March 2026 by the adk-model crate's pricing table; the two agree). Cached input is 0.1x input on the
  GPT-5 family, 0.25x on GPT-4.1 and 0.5x on GPT-4o. OpenAI does not charge extra for cache writes.
- Anthropic prices: https://platform.claude.com/docs/en/about-claude/pricing. Cache writes cost 1.25x input
  with the 5-minute TTL and 2x with the 1-hour TTL; cache reads 0.1x. Claude Sonnet 5's introductory price
  ended on 2026-08-31; since 2026-09-01 it is $3 / $15, like Sonnet 4.6.
- Models the SDKs list whose price we could not confirm (e.g. claude-sonnet-5-5, gpt-6-*) have no row:
  their cost reads "no price", and the user can add a row.

Gemini rows dated 2026-12-06. Model ids: the Gemini API's model list as quoted by LiteLLM's cost map
(discussion BerriAI/litellm#39357, Gemini 3.8 Flash, released 2026-09-02) and the context-caching page
(https://ai.google.dev/gemini-api/docs/caching, last updated 2026-10-13). Prices:
https://ai.google.dev/gemini-api/docs/pricing as quoted on those dates by LiteLLM (3.8 Flash), APIYI's model
pages (3.8 Flash: $0.75 / $0.075 cached / $3.75), techjacksolutions.com (3.1 Pro, "as of June 9, 2026":
$2.00, cached $0.20) and morphllm.com (2.5 family). Gemini 3.8 Flash is at half price until 2026-12-31
($1.50 / $7.50 from 2027-01-01); edit its row then. Rates are those of prompts up to 200k tokens (Pro models
cost more above that; the table does not model the long-context tier).
Gemini bills explicit context caches in three parts: creating one processes its tokens at the input price,
requests read them at the cached price (``cache_read``), and keeping them costs ``cache_storage`` US$ per
million tokens per hour of TTL: $4.50 for Pro models and $1.00 for Flash and Flash-Lite models, as the
pricing page lists them for 2.5 Pro (quoted on discuss.ai.google.dev) and the Flash models. 3.8 Flash's
storage price is the Flash family's; we found no separate figure. Implicit caching has no storage fee.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lib.core.usage import Usage

PER_MILLION = 1_000_000
NO_PRICE = "no price"
# Models that are not billed by anyone: the offline teaching model is priced "as" a reference model.
OFFLINE_PREFIX = "offline"


@dataclass(frozen=True)
class Price:
    model: str
    input: float  # per million uncached input tokens
    output: float  # per million output tokens
    cache_read: float | None = None  # per million cached input tokens; None = billed as input
    cache_write: float | None = None  # per million tokens written to a cache (5-minute TTL); None = as input
    cache_write_1h: float | None = None  # per million tokens written with a 1-hour TTL; None = as cache_write
    cache_storage: float | None = None  # per million tokens per hour held in an explicit cache (Gemini)


def _anthropic(model: str, input_price: float, output_price: float) -> Price:
    """Anthropic's published multipliers: 5-minute writes 1.25x, 1-hour writes 2x, reads 0.1x."""
    return Price(model, input_price, output_price, round(input_price * 0.1, 4), round(input_price * 1.25, 4),
                 round(input_price * 2, 4))


def _gemini(model: str, input_price: float, output_price: float, cache_read: float, storage: float) -> Price:
    """Gemini: no cache-write surcharge (a cache is created at the input price), storage per hour."""
    return Price(model, input_price, output_price, cache_read, None, None, storage)


DEFAULT_PRICES: tuple[Price, ...] = (
    Price("gpt-5.5", 5.00, 30.00, 0.50),
    Price("gpt-5.4", 2.50, 15.00, 0.25),
    Price("gpt-5.4-mini", 0.75, 4.50, 0.075),
    Price("gpt-5", 1.25, 10.00, 0.125),  # shut down 2026-12-11
    Price("gpt-5-mini", 0.25, 2.00, 0.025),  # shut down 2026-12-11
    Price("gpt-4.1", 2.00, 8.00, 0.50),  # shut down 2027-01-14
    Price("gpt-4.1-mini", 0.40, 1.60, 0.10),  # shut down 2027-01-14
    Price("gpt-4o", 2.50, 10.00, 1.25),  # shut down 2027-01-14
    Price("gpt-4o-mini", 0.15, 0.60, 0.075),  # shut down 2027-01-14
    _anthropic("claude-sonnet-5", 3.00, 15.00),
    _anthropic("claude-opus-4-8", 5.00, 25.00),
    _anthropic("claude-sonnet-4-6", 3.00, 15.00),
    _anthropic("claude-opus-4-6", 5.00, 25.00),
    _anthropic("claude-haiku-4-5", 1.00, 5.00),
    _anthropic("claude-sonnet-4-5", 3.00, 15.00),  # retires 2026-11-30
    _gemini("gemini-3.8-flash", 0.75, 3.75, 0.075, 1.00),  # half price until 2026-12-31
    _gemini("gemini-3.1-pro-preview", 2.00, 12.00, 0.20, 4.50),
    _gemini("gemini-2.5-pro", 1.25, 10.00, 0.125, 4.50),
    _gemini("gemini-2.5-flash", 0.30, 2.50, 0.03, 1.00),
    _gemini("gemini-2.5-flash-lite", 0.10, 0.40, 0.01, 1.00),
)


def price_rows(prices: Iterable[Price] = DEFAULT_PRICES) -> list[dict[str, Any]]:
    """The table as plain rows, for st.data_editor."""
    return [asdict(p) for p in prices]


def default_table() -> dict[str, Price]:
    return {p.model: p for p in DEFAULT_PRICES}


def prices_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Price]:
    """Rows edited by the user back into prices; rows without a model or with bad numbers are ignored."""
    table: dict[str, Price] = {}
    for row in rows:
        model = str(row.get("model") or "").strip()
        if not model:
            continue
        try:
            table[model] = Price(model, _num(row.get("input")) or 0.0, _num(row.get("output")) or 0.0,
                                 _num(row.get("cache_read")), _num(row.get("cache_write")),
                                 _num(row.get("cache_write_1h")), _num(row.get("cache_storage")))
        except (TypeError, ValueError):
            continue
    return table


def _num(value: Any) -> float | None:
    if value is None or value == "" or (isinstance(value, float) and value != value):  # NaN from pandas
        return None
    number = float(value)
    if number < 0:
        raise ValueError("negative price")
    return number


def priced_as(model: str, reference_model: str | None) -> str:
    """The model whose price applies: the offline model costs what ``reference_model`` would."""
    if model.startswith(OFFLINE_PREFIX) and reference_model:
        return reference_model
    return model


def find_price(model: str, table: Mapping[str, Price], *, reference_model: str | None = None) -> Price | None:
    """Exact match first, then the longest model name that prefixes this one (dated snapshots)."""
    model = priced_as(model, reference_model)
    if model in table:
        return table[model]
    matches = [name for name in table if model.startswith(name)]
    return table[max(matches, key=len)] if matches else None


def estimate_cost(
    model: str,
    *,
    input_tokens: int | None,
    output_tokens: int | None = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
    explicit_cache_tokens: int = 0,
    explicit_cache_hours: float = 0.0,
    table: Mapping[str, Price] | None = None,
    reference_model: str | None = None,
) -> float | None:
    """US$ for one request; None when the model has no price (show ``cost_text`` for words).

    ``input_tokens`` excludes cached tokens. ``cache_write_tokens`` are 5-minute writes and
    ``cache_write_1h_tokens`` 1-hour writes (Anthropic bills them at different rates).
    ``explicit_cache_tokens``: tokens this request put into an explicit context cache (Gemini's
    ``caches.create``), billed once at the write rate (the input price when the row has none) plus
    ``cache_storage`` per hour of ``explicit_cache_hours``, the cache's TTL (billed for the TTL set, even when
    the cache is deleted sooner). Without a ``cache_storage`` price that gives None: a partial cost would read
    as the whole.
    """
    price = find_price(model, table if table is not None else default_table(), reference_model=reference_model)
    if price is None or input_tokens is None or (explicit_cache_tokens and price.cache_storage is None):
        return None
    read_rate = price.input if price.cache_read is None else price.cache_read
    write_rate = price.input if price.cache_write is None else price.cache_write
    write_1h_rate = write_rate if price.cache_write_1h is None else price.cache_write_1h
    total = (input_tokens * price.input + (output_tokens or 0) * price.output + cache_read_tokens * read_rate
             + cache_write_tokens * write_rate + cache_write_1h_tokens * write_1h_rate
             + explicit_cache_tokens * write_rate
             + explicit_cache_tokens * explicit_cache_hours * (price.cache_storage or 0.0))
    return total / PER_MILLION


def usage_cost(usage: Usage, model: str, *, table: Mapping[str, Price] | None = None,
               reference_model: str | None = None) -> float | None:
    """US$ for one reply's usage: uncached input, cache reads, 5-minute and 1-hour writes, output, and an
    explicit cache the request created (its tokens once, and their storage for its TTL)."""
    writes_1h = usage.cache_write_1h or 0
    return estimate_cost(model, input_tokens=usage.uncached_input, output_tokens=usage.output_tokens,
                         cache_read_tokens=usage.cache_read_tokens,
                         cache_write_tokens=max(0, usage.cache_write_tokens - writes_1h),
                         cache_write_1h_tokens=writes_1h, explicit_cache_tokens=usage.explicit_cache_tokens,
                         explicit_cache_hours=usage.explicit_cache_hours,
                         table=table, reference_model=reference_model)


def ttl_text(hours: float) -> str:
    """A cache lifetime in words: "1 h", "5 min"."""
    return f"{hours:g} h" if hours >= 1 else f"{round(hours * 60):g} min"


def storage_cost(model: str, tokens: int, hours: float, *, table: Mapping[str, Price] | None = None) -> float | None:
    """US$ to keep ``tokens`` in an explicit context cache for ``hours``; None without a storage price."""
    price = find_price(model, table if table is not None else default_table())
    if price is None or price.cache_storage is None:
        return None
    return tokens * hours * price.cache_storage / PER_MILLION


def cost_text(cost: float | None, model: str, *, reference_model: str | None = None) -> str:
    """A cost in words: "$0.0123 (estimate)", "$0.0123 (priced as gpt-5.4-mini)", or "no price for X"."""
    if cost is None:
        return f"{NO_PRICE} for {model}; add it to the price table"
    shown = f"${cost:.4f}" if cost >= 0.0001 or cost == 0 else f"${cost:.2e}"
    basis = priced_as(model, reference_model)
    return f"{shown} (priced as {basis})" if basis != model else f"{shown} (estimate)"
