from lib.pricing import DEFAULT_PRICES, Price, estimate_cost, find_price, price_rows, prices_from_rows


def test_cost_uses_input_output_and_cache_rates():
    table = {"m": Price("m", input=2.0, output=10.0, cache_read=0.5, cache_write=4.0)}
    cost = estimate_cost("m", input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=2_000_000,
                         cache_write_tokens=500_000, table=table)
    assert cost == 2.0 + 1.0 + 1.0 + 2.0


def test_cache_rates_default_to_input_rate_and_unknown_models_have_no_cost():
    table = {"m": Price("m", input=1.0, output=1.0)}
    assert estimate_cost("m", input_tokens=0, cache_read_tokens=1_000_000, table=table) == 1.0
    assert estimate_cost("unknown", input_tokens=10, table=table) is None
    assert estimate_cost("m", input_tokens=None, table=table) is None


def test_dated_snapshots_match_the_longest_prefix():
    table = {p.model: p for p in DEFAULT_PRICES}
    assert find_price("gpt-4o-mini-2024-07-18", table).model == "gpt-4o-mini"
    assert find_price("gpt-4o-2024-08-06", table).model == "gpt-4o"


def test_edited_rows_round_trip_and_bad_rows_are_ignored():
    rows = price_rows()
    rows.append({"model": "", "input": 1, "output": 1})
    rows.append({"model": "bad", "input": "abc", "output": 1})
    rows.append({"model": "neg", "input": -1, "output": 1})
    rows.append({"model": "nan", "input": 1.0, "output": 2.0, "cache_read": float("nan"), "cache_write": None})
    table = prices_from_rows(rows)
    assert set(table) == {p.model for p in DEFAULT_PRICES} | {"nan"}
    assert table["nan"].cache_read is None
