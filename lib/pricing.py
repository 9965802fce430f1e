"""Estimated cost of a request from an editable price table (US$ per million tokens).

The defaults are published list prices at the time of writing, for illustration only: prices change,
so the pages let the user edit the table, and every figure is labelled an estimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Price:
    model: str
    input: float  # per million uncached input tokens
    output: float  # per million output tokens
    cache_read: float | None = None  # per million cached input tokens; None = billed as input
    cache_write: float | None = None  # per million tokens written to a cache; None = billed as input


DEFAULT_PRICES: tuple[Price, ...] = (
    Price("gpt-4o", 2.50, 10.00, 1.25),
    Price("gpt-4o-mini", 0.15, 0.60, 0.075),
    Price("gpt-4.1", 2.00, 8.00, 0.50),
    Price("gpt-4.1-mini", 0.40, 1.60, 0.10),
    Price("gpt-5", 1.25, 10.00, 0.125),
    Price("gpt-5-mini", 0.25, 2.00, 0.025),
    Price("claude-sonnet-4-5", 3.00, 15.00, 0.30, 3.75),
    Price("claude-haiku-4-5", 1.00, 5.00, 0.10, 1.25),
    Price("claude-opus-4-1", 15.00, 75.00, 1.50, 18.75),
    Price("offline-echo", 0.0, 0.0),
)


def price_rows(prices: Iterable[Price] = DEFAULT_PRICES) -> list[dict[str, Any]]:
    """The table as plain rows, for st.data_editor."""
    return [asdict(p) for p in prices]


def prices_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Price]:
    """Rows edited by the user back into prices; rows without a model or with bad numbers are ignored."""
    table: dict[str, Price] = {}
    for row in rows:
        model = str(row.get("model") or "").strip()
        if not model:
            continue
        try:
            table[model] = Price(model, _num(row.get("input")) or 0.0, _num(row.get("output")) or 0.0,
                                 _num(row.get("cache_read")), _num(row.get("cache_write")))
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


def find_price(model: str, table: Mapping[str, Price]) -> Price | None:
    """Exact match first, then the longest model name that prefixes this one (dated snapshots)."""
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
    table: Mapping[str, Price] | None = None,
) -> float | None:
    """US$ for one request; None when the model has no price. ``input_tokens`` excludes cached tokens."""
    price = find_price(model, table if table is not None else {p.model: p for p in DEFAULT_PRICES})
    if price is None or input_tokens is None:
        return None
    read_rate = price.input if price.cache_read is None else price.cache_read
    write_rate = price.input if price.cache_write is None else price.cache_write
    total = (input_tokens * price.input + (output_tokens or 0) * price.output
             + cache_read_tokens * read_rate + cache_write_tokens * write_rate)
    return total / 1_000_000
