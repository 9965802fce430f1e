import datetime as dt

import pytest

from lib.core import (
    DEFAULT_PRICES,
    NO_PRICE,
    Price,
    Settings,
    Usage,
    cost_text,
    current_first,
    default_table,
    estimate_cost,
    find_price,
    lifecycle,
    model_label,
    price_rows,
    prices_from_rows,
    shutdown_date,
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
    cost = estimate_cost("offline-teacher", input_tokens=1_000_000, reference_model="claude-sonnet-4-6")
    assert cost == 3.0
    text = cost_text(cost, "offline-teacher", reference_model="claude-sonnet-4-6")
    assert text == "$3.0000 (priced as claude-sonnet-4-6)"


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
    price = default_table()["claude-sonnet-4-6"]
    assert (price.input, price.cache_write, price.cache_write_1h, price.cache_read) == (3.0, 3.75, 6.0, 0.3)
    usage = Usage(input_tokens=1_000_000, output_tokens=0, cache_read_tokens=1_000_000,
                  cache_write_tokens=3_000_000, cache_in_input=False, cache_write_5m=1_000_000,
                  cache_write_1h=2_000_000)
    assert usage_cost(usage, "claude-sonnet-4-6") == 3.0 + 0.3 + 3.75 + 12.0


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


# -- the 2026-12-06 table ---------------------------------------------------------------------------------


def test_the_checked_table_prices_the_new_models_and_sonnet_5_at_its_kept_rate():
    table = default_table()
    sol = table["gpt-5.6-sol"]
    assert (sol.input, sol.cache_read, sol.output) == (5.0, 0.5, 30.0)
    assert (table["gpt-5.6-terra"].input, table["gpt-5.6-terra"].output) == (2.0, 12.0)
    assert (table["gpt-5.6-luna"].input, table["gpt-5.6-luna"].cache_read, table["gpt-5.6-luna"].output) == (
        0.2, 0.02, 1.2)
    assert (table["gpt-5.4-nano"].input, table["gpt-5.4-nano"].output) == (0.2, 1.25)
    fable = table["claude-fable-5"]
    assert (fable.input, fable.cache_write, fable.cache_write_1h, fable.cache_read, fable.output) == (
        10.0, 12.5, 20.0, 1.0, 50.0)
    assert table["claude-opus-4-7"].input == 5.0
    # The scheduled rise to $3 / $15 was cancelled: Sonnet 5 stays $2 / $10.
    assert (table["claude-sonnet-5"].input, table["claude-sonnet-5"].output) == (2.0, 10.0)


def test_gpt_56_writes_cost_a_quarter_more_than_input_and_older_openai_writes_are_free():
    luna = default_table()["gpt-5.6-luna"]
    assert luna.cache_write == 0.25
    usage = Usage(input_tokens=3_000_000, output_tokens=0, cache_read_tokens=1_000_000,
                  cache_write_tokens=1_000_000, cache_write_30m=1_000_000)
    assert usage_cost(usage, "gpt-5.6-luna") == pytest.approx(0.2 + 0.02 + 0.25)
    # Before gpt-5.6 a write is ordinary input: the same usage on gpt-5.4-mini pays input for it.
    assert usage_cost(usage, "gpt-5.4-mini") == pytest.approx(0.75 * 2 + 0.075)


def test_twelve_hour_writes_are_priced_by_their_own_column_when_one_is_set():
    table = {"m": Price("m", input=1.0, output=0.0, cache_read=0.1, cache_write=1.25, cache_write_12h=2.0)}
    usage = Usage(input_tokens=3_000_000, output_tokens=0, cache_write_tokens=2_000_000,
                  cache_write_30m=1_000_000, cache_write_12h=1_000_000)
    assert usage_cost(usage, "m", table=table) == pytest.approx(1.0 + 1.25 + 2.0)
    rows = price_rows(table.values())
    assert prices_from_rows(rows)["m"].cache_write_12h == 2.0


def test_a_model_is_never_priced_as_a_shorter_name_it_merely_starts_with():
    table = default_table()
    assert find_price("claude-haiku-5-5", table) is None  # two price bands: no row, so "no price"
    assert find_price("claude-haiku-4-5-20251001", table).model == "claude-haiku-4-5"
    assert find_price("gpt-5.4-mini-preview", table) is None


def test_retired_and_shutting_down_models_say_so_and_come_last():
    today = dt.date(2026, 12, 6)
    assert lifecycle("claude-sonnet-4-5", today=today) == "retired on 2026-11-30"
    assert lifecycle("gpt-4o-mini", today=today) == "shuts down on 2027-01-14"
    assert lifecycle("gpt-5.6-luna", today=today) is None
    assert model_label("gpt-4o-mini-2024-07-18", today=today) == "gpt-4o-mini-2024-07-18 (shuts down on 2027-01-14)"
    ordered = current_first(["gpt-4o-mini", "claude-sonnet-4-5", "gpt-5.4-mini", "gpt-4.1"], today=today)
    assert ordered == ["gpt-5.4-mini", "gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5"]


def test_the_offline_reference_default_is_not_being_shut_down():
    assert shutdown_date(Settings().reference_model) is None
    assert find_price(Settings().reference_model, default_table()) is not None
