from lib.core import (
    DEFAULT_PRICES,
    NO_PRICE,
    Price,
    Settings,
    Usage,
    cost_text,
    default_table,
    estimate_cost,
    find_price,
    price_rows,
    prices_from_rows,
    usage_cost,
)
from lib.providers import list_providers


def test_cost_uses_input_output_and_cache_rates():
    table = {"m": Price("m", input=2.0, output=10.0, cache_read=0.5, cache_write=4.0, cache_write_1h=8.0)}
    cost = estimate_cost("m", input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=2_000_000,
                         cache_write_tokens=500_000, cache_write_1h_tokens=250_000, table=table)
    assert cost == 2.0 + 1.0 + 1.0 + 2.0 + 2.0


def test_cache_rates_default_to_input_rate_and_unknown_models_have_no_cost():
    table = {"m": Price("m", input=1.0, output=1.0)}
    assert estimate_cost("m", input_tokens=0, cache_read_tokens=1_000_000, table=table) == 1.0
    assert estimate_cost("m", input_tokens=0, cache_write_1h_tokens=1_000_000, table=table) == 1.0
    assert estimate_cost("unknown", input_tokens=10, table=table) is None
    assert estimate_cost("m", input_tokens=None, table=table) is None


def test_unknown_models_say_no_price_in_words():
    assert cost_text(None, "mystery-model") == f"{NO_PRICE} for mystery-model; add it to the price table"
    assert cost_text(0.0123, "gpt-5.4-mini") == "$0.0123 (estimate)"
    assert "None" not in cost_text(None, "x")


def test_offline_model_is_priced_as_a_named_reference_model():
    table = default_table()
    assert find_price("offline-teacher", table) is None
    assert find_price("offline-teacher", table, reference_model="gpt-5.4-mini").model == "gpt-5.4-mini"
    cost = estimate_cost("offline-teacher", input_tokens=1_000_000, reference_model="claude-sonnet-5")
    assert cost == 3.0
    text = cost_text(cost, "offline-teacher", reference_model="claude-sonnet-5")
    assert text == "$3.0000 (priced as claude-sonnet-5)"


def test_every_default_model_has_a_price_and_no_retired_model_is_offered():
    table = default_table()
    for info in list_providers(Settings()):
        if info.name in ("offline", "openai-compatible"):
            continue  # offline is priced as a reference model; local servers are free to run
        assert find_price(info.default_model, table) is not None, info.default_model
        assert "o4-mini" not in info.models
    assert find_price(Settings().reference_model, table) is not None
    assert "o4-mini" not in table


def test_anthropic_writes_are_split_by_ttl():
    price = default_table()["claude-sonnet-5"]
    assert (price.input, price.cache_write, price.cache_write_1h, price.cache_read) == (3.0, 3.75, 6.0, 0.3)
    usage = Usage(input_tokens=1_000_000, output_tokens=0, cache_read_tokens=1_000_000,
                  cache_write_tokens=3_000_000, cache_in_input=False, cache_write_5m=1_000_000,
                  cache_write_1h=2_000_000)
    assert usage_cost(usage, "claude-sonnet-5") == 3.0 + 0.3 + 3.75 + 12.0


def test_openai_usage_cost_takes_cached_tokens_out_of_the_input():
    usage = Usage(input_tokens=2_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000)
    assert usage_cost(usage, "gpt-5.4-mini") == 0.75 + 0.075 + 4.50


def test_dated_snapshots_match_the_longest_prefix():
    table = default_table()
    assert find_price("gpt-4o-mini-2024-07-18", table).model == "gpt-4o-mini"
    assert find_price("gpt-4o-2024-08-06", table).model == "gpt-4o"
    assert find_price("gpt-5.4-mini-2026-03-17", table).model == "gpt-5.4-mini"


def test_edited_rows_round_trip_and_bad_rows_are_ignored():
    rows = price_rows()
    rows.append({"model": "", "input": 1, "output": 1})
    rows.append({"model": "bad", "input": "abc", "output": 1})
    rows.append({"model": "neg", "input": -1, "output": 1})
    rows.append({"model": "nan", "input": 1.0, "output": 2.0, "cache_read": float("nan"), "cache_write": None})
    table = prices_from_rows(rows)
    assert set(table) == {p.model for p in DEFAULT_PRICES} | {"nan"}
    assert table["nan"].cache_read is None
    assert table["claude-sonnet-5"] == default_table()["claude-sonnet-5"]
