"""Gemini's explicit context caches: the reuse-or-create policy, and explicit against implicit, priced from the
price table (storage per hour of TTL included)."""

from __future__ import annotations

import pytest

from lib.chat import conversation_payloads
from lib.core import default_table
from lib.costs import CacheComparison, compare_explicit_implicit, plan_explicit

MODEL = "gemini-2.5-flash"  # 2,048-token minimum
LONG = "The whole history is re-sent to the model on every turn. " * 300  # ~3,300 tokens


def test_a_prefix_below_the_minimum_is_never_cached():
    plan = plan_explicit([100, 200, 300], [], min_tokens=2048, has_system=True)
    assert (plan.reuse, plan.create, plan.depth) == (None, None, None)
    assert "below the model's minimum of 2,048" in plan.reason


def test_no_live_cache_creates_one_over_the_whole_stable_prefix():
    plan = plan_explicit([3000, 3010, 3020], [], min_tokens=2048, has_system=True)
    assert (plan.reuse, plan.create) == (None, 2)


def test_a_live_cache_is_reused_until_enough_history_is_added_to_cache_again():
    small = plan_explicit([3000, 3010, 3020, 3030], [1], min_tokens=2048, has_system=True)
    assert (small.reuse, small.create) == (1, None) and "20 tokens added since stay uncached" in small.reason
    grown = plan_explicit([3000, 3010, 3020, 6000], [1], min_tokens=2048, has_system=True)
    assert (grown.reuse, grown.create) == (None, 3)


def test_without_a_system_instruction_a_cache_holds_at_least_one_content():
    assert plan_explicit([0], [], min_tokens=1, has_system=False).depth is None
    assert plan_explicit([0, 4000], [0], min_tokens=2048, has_system=False).create == 1


def conversation(turns: int) -> list[list[dict[str, str]]]:
    history: list[dict[str, str]] = []
    for n in range(turns - 1):
        history += [{"role": "user", "content": f"question {n}", "id": f"u{n}"},
                    {"role": "assistant", "content": f"answer {n}", "id": f"a{n}"}]
    return conversation_payloads(history, "the last question", model=MODEL, budget=100_000, system_prompt=LONG)


def test_explicit_against_implicit_over_a_conversation_with_storage_from_the_price_table():
    payloads = conversation(4)
    assert len(payloads) == 4 and payloads[0][0]["role"] == "system"
    result = compare_explicit_implicit(payloads, model=MODEL, ttl_hours=1.0)
    price = default_table()[MODEL]
    first = result.explicit[0]
    # Turn 1 caches the system prompt (the only stable prefix) and reads it back in the same request.
    assert first.created_tokens == first.cached_tokens > 2048
    assert first.storage_cost == pytest.approx(first.created_tokens * 1.0 * price.cache_storage / 1_000_000)
    uncached = first.input_tokens - first.cached_tokens
    assert first.cost == pytest.approx((uncached * price.input + first.cached_tokens * price.cache_read
                                        + first.created_tokens * price.input) / 1_000_000 + first.storage_cost)
    # Later turns reuse it: nothing created, nothing more stored; the short new turns stay uncached.
    assert [t.created_tokens for t in result.explicit[1:]] == [0, 0, 0]
    assert all(t.cached_tokens == first.cached_tokens for t in result.explicit[1:])
    # Implicit: nothing cached on the first request, the repeated prefix afterwards; never a storage fee.
    assert result.implicit[0].cached_tokens == 0 and result.implicit[1].cached_tokens > 2048
    assert all(t.storage_cost == 0 for t in result.implicit)
    # Over four turns the implicit cache is cheaper: the explicit cache paid creation and storage up front.
    assert CacheComparison.total(result.implicit) < CacheComparison.total(result.explicit)
    assert CacheComparison.total(result.explicit) < CacheComparison.total(result.uncached) + first.storage_cost + (
        first.created_tokens * price.input / 1_000_000)


def test_a_longer_ttl_costs_more_storage():
    payloads = conversation(2)
    short = compare_explicit_implicit(payloads, model=MODEL, ttl_hours=5 / 60).explicit[0]
    long = compare_explicit_implicit(payloads, model=MODEL, ttl_hours=1.0).explicit[0]
    assert long.storage_cost == pytest.approx(12 * short.storage_cost)


def test_a_model_without_a_storage_price_has_no_explicit_cost():
    table = dict(default_table())
    row = table[MODEL]
    table[MODEL] = row.__class__(MODEL, row.input, row.output, row.cache_read)
    result = compare_explicit_implicit(conversation(2), model=MODEL, prices=table)
    assert result.explicit[0].cost is None and CacheComparison.total(result.explicit) is None
    assert result.implicit[0].cost is not None
