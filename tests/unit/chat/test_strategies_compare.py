"""lib.chat.strategies: the next request of one conversation under five history strategies."""

from __future__ import annotations

import pytest

from lib.chat import (
    PLACEHOLDER_RESPONSE_ID,
    SIMULATED_SERVER,
    compare_strategies,
    demo_data,
    with_reported_usage,
)
from lib.context import ContextOverflowError
from lib.core import Usage, turns_text
from lib.tokens import count_chat_tokens

MODEL = "gpt-4o-mini"
KEYS = ["turns", "cache-aware", "summary", "server-chain", "server-compaction"]


def conversation(turns: int, words: int = 60) -> list[dict]:
    out = []
    for n in range(1, turns + 1):
        out.append({"id": f"u{n}", "role": "user", "content": f"Turn {n} question. " + "fact " * words})
        out.append({"id": f"a{n}", "role": "assistant", "content": f"Turn {n} answer. " + "reply " * words})
    return out


@pytest.fixture(scope="module")
def demo():
    data = demo_data()
    return compare_strategies(data["messages"], "What did I say first?", model=MODEL, budget=3_000,
                              system_prompt=data["system_prompt"])


def test_five_rows_in_order_with_no_key(demo):
    assert [r.key for r in demo.rows] == KEYS
    assert [r.side for r in demo.rows] == ["client"] * 3 + ["server"] * 2
    assert demo.count_label == "exact (tiktoken, o200k_base)"


def test_manual_rows_bill_what_they_send_and_fit_the_budget(demo):
    for key in ("turns", "cache-aware", "summary"):
        row = demo.row(key)
        assert row.tokens_sent == row.tokens_billed <= demo.budget
        assert row.request["messages"][0]["role"] == "system"
        assert row.request["messages"][-1] == {"role": "user", "content": "What did I say first?"}
        assert row.bytes_sent == len(__import__("json").dumps(row.request, ensure_ascii=False).encode())


def test_server_chain_sends_one_item_but_bills_the_whole_conversation(demo):
    data = demo_data()
    chain = demo.row("server-chain")
    assert chain.request["input"] == [{"role": "user", "content": "What did I say first?"}]
    assert chain.request["previous_response_id"] == PLACEHOLDER_RESPONSE_ID
    assert chain.request["instructions"] == data["system_prompt"]
    whole = count_chat_tokens([{"role": "system", "content": data["system_prompt"]}, *data["messages"],
                               {"role": "user", "content": "What did I say first?"}], MODEL)
    assert chain.tokens_billed == whole > demo.budget
    assert chain.tokens_sent < 100 and chain.bytes_sent < min(r.bytes_sent for r in demo.rows[:3])
    assert chain.source == SIMULATED_SERVER
    assert chain.visibility.visible == tuple(range(1, demo.turns + 1)) and not chain.visibility.dropped
    assert any("billed as input" in n for n in chain.notes) and any("truncation='auto'" in n for n in chain.notes)


def test_compaction_row_asks_for_compaction_and_bills_the_compacted_context(demo):
    row = demo.row("server-compaction")
    assert row.request["context_management"] == [{"type": "compaction", "compact_threshold": demo.budget}]
    assert row.tokens_billed == demo.row("summary").tokens_billed < demo.row("server-chain").tokens_billed
    assert row.visibility.opaque and "encrypted compaction item" in row.visibility.text()


def test_visibility_partitions_every_turn_and_keeps_the_new_one(demo):
    every = set(range(1, demo.turns + 1))
    for row in demo.rows:
        v = row.visibility
        assert set(v.visible) | set(v.summarised) | set(v.dropped) == every, row.key
        assert not set(v.visible) & (set(v.summarised) | set(v.dropped)), row.key
        assert demo.turns in v.visible
    assert demo.row("turns").visibility.dropped and not demo.row("turns").visibility.summarised
    summary = demo.row("summary")
    assert summary.visibility.summarised[0] == 1 and summary.summary_requests >= 1
    assert summary.summary_cost == 0.0 and "in a summary" in summary.visibility.text()


def test_cache_aware_keeps_more_cache_than_turns_once_the_window_is_full():
    history = conversation(40)
    result = compare_strategies(history, "Next?", model=MODEL, budget=4_000)
    turns, aware = result.row("turns"), result.row("cache-aware")
    # "turns" drops a turn on every request: its prefix moves and the cache misses.
    assert turns.cached_tokens == 0 < aware.cached_tokens
    assert result.row("server-chain").cached_tokens > 0
    assert all(r.cost is not None and r.cost > 0 for r in result.rows)


def test_short_conversation_sends_everything_and_caches_nothing():
    result = compare_strategies(conversation(2, words=5), "Hello again", model=MODEL, budget=4_000)
    for row in result.rows:
        assert row.visibility.visible == (1, 2, 3) and row.cached_tokens == 0  # below the 1,024-token minimum
    assert result.row("turns").tokens_billed == result.row("server-chain").tokens_billed


def test_no_history_and_an_approximate_model():
    result = compare_strategies([], "First message", model="claude-sonnet-5", budget=1_000, system_prompt="Be brief.")
    assert result.turns == 1 and result.count_label.startswith("approximate (o200k_base stands in for claude")
    assert result.row("server-chain").request["input"] == [{"role": "user", "content": "First message"}]


def test_errors_say_what_to_do():
    with pytest.raises(ContextOverflowError, match="raise the token budget"):
        compare_strategies([], "word " * 500, model=MODEL, budget=100)
    with pytest.raises(ValueError, match="Type the next message"):
        compare_strategies([], "  ", model=MODEL, budget=100)


def test_history_is_not_changed():
    history = conversation(10)
    before = [dict(m) for m in history]
    compare_strategies(history, "Next?", model=MODEL, budget=1_000)
    assert history == before


def test_reported_usage_replaces_the_simulation(demo):
    chain = demo.row("server-chain")
    usage = Usage(input_tokens=5_000, output_tokens=20, cache_read_tokens=4_096)
    real = with_reported_usage(chain, usage, model=MODEL)
    assert (real.tokens_billed, real.cached_tokens) == (5_000, 4_096)
    assert real.source == real.cached_source == "provider-reported (after the call)"
    assert real.input_cost == pytest.approx((904 * 0.15 + 4_096 * 0.075) / 1e6)
    assert with_reported_usage(chain, Usage(None, None), model=MODEL) is chain


def test_turns_text():
    assert turns_text([1, 2, 3, 5]) == "turns 1–3, 5"
    assert turns_text([4]) == "turn 4"
    assert turns_text([]) == "no turns"


def test_counted_billing_replaces_the_simulated_figure(demo):
    from lib.chat import chain_messages, with_counted_billing

    data = demo_data()
    chain = chain_messages(data["messages"], "What did I say first?", system_prompt=data["system_prompt"])
    assert chain[0]["role"] == "system" and chain[-1] == {"role": "user", "content": "What did I say first?"}
    assert all(set(m) <= {"role", "content", "name", "tool_calls", "tool_call_id"} for m in chain)
    row = demo.row("server-chain")
    counted = with_counted_billing(row, 4_000, model=MODEL)
    assert counted.tokens_billed == 4_000 and counted.source == "exact (provider count endpoint)"
    assert counted.cached_tokens == row.cached_tokens and counted.cached_source == row.cached_source
    assert counted.input_cost == pytest.approx(((4_000 - row.cached_tokens) * 0.15 + row.cached_tokens * 0.075) / 1e6)
    assert with_counted_billing(row, 10, model=MODEL).cached_tokens == 10
