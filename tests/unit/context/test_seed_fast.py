"""The fast seed (lib.context.seed) equals the literal, quadratic port (trim_seed_literal) on random histories."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.context import (
    BudgetRange,
    SeedPlan,
    payload_problems,
    seed_breaking_budgets,
    seed_cut,
    seed_trim,
    trim_history,
    trim_seed_literal,
)
from lib.views import literal_seed_breaking_budgets as literal_breaking_budgets

CALL_IDS = ["c1", "c2", "c3"]


@st.composite
def messages(draw: st.DrawFn) -> dict:
    role = draw(st.sampled_from(["system", "developer", "user", "user", "assistant", "assistant", "tool"]))
    message: dict = {"id": f"m{draw(st.integers(0, 10**6))}", "role": role,
                     "content": draw(st.text(alphabet="ab 漢😀", max_size=40))}
    if role in ("assistant", "system") and draw(st.booleans()):
        ids = draw(st.lists(st.sampled_from([*CALL_IDS, ""]), min_size=1, max_size=2))
        message["tool_calls"] = [{"id": i, "type": "function"} for i in ids]
    if role == "tool":
        message["tool_call_id"] = draw(st.sampled_from([*CALL_IDS, None]))
    return message


histories = st.lists(messages(), max_size=14)


def literal_kept(history: list[dict], budget: int) -> list[dict]:
    return trim_seed_literal(history, budget).kept


def brute_force_broken(history: list[dict], removed: int) -> bool:
    return bool(payload_problems([*history[:1], *history[removed + 1:]]))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories, budget=st.integers(1, 200))
def test_the_cut_and_the_result_equal_the_literal_seed(history, budget):
    literal = trim_seed_literal(history, budget)
    fast = seed_trim(history, budget)
    assert fast == literal
    assert trim_history(history, budget, strategy="seed") == literal
    estimates = [len(m["content"]) for m in history]  # any non-negative numbers work for the cut alone
    assert seed_cut(estimates, budget) == SeedPlan.from_estimates(estimates).cut(budget)


@settings(max_examples=250, deadline=None)
@given(history=histories)
def test_broken_equals_payload_problems_for_every_removal_count(history):
    plan = SeedPlan(history)
    for removed in range(plan.max_removed + 1):
        assert plan.broken(removed) == brute_force_broken(history, removed), removed


@settings(max_examples=200, deadline=None)
@given(history=histories, prompt=st.sampled_from(["", "  ", "Be brief."]), steps=st.integers(1, 30))
def test_sampled_breaking_budgets_equal_the_inspectors(history, prompt, steps):
    literal = literal_breaking_budgets(history, model="gpt-4o", system_prompt=prompt, steps=steps)
    assert seed_breaking_budgets(history, model="gpt-4o", system_prompt=prompt, steps=steps) == literal


@settings(max_examples=200, deadline=None)
@given(history=histories)
def test_breaking_ranges_hold_exactly_the_budgets_where_the_literal_seed_breaks(history):
    plan = SeedPlan(history)
    ranges = plan.breaking_ranges()
    top = plan.totals[0] + 2
    for budget in range(1, top + 1):  # trim_history refuses a budget below 1
        inside = any(r.low <= budget and (r.high is None or budget < r.high) for r in ranges)
        assert inside == bool(payload_problems(literal_kept(history, budget))), budget
    assert all(isinstance(r, BudgetRange) for r in ranges)


def test_a_known_history_breaks_where_expected():
    history = [
        {"id": "s", "role": "system", "content": "x" * 8},
        {"id": "u1", "role": "user", "content": "x" * 40},
        {"id": "a1", "role": "assistant", "content": "", "tool_calls": [{"id": "c1"}]},
        {"id": "t1", "role": "tool", "tool_call_id": "c1", "content": "x" * 40},
        {"id": "a2", "role": "assistant", "content": "x" * 40},
        {"id": "u2", "role": "user", "content": "x" * 4},
    ]
    plan = SeedPlan(history)
    assert plan.totals == [33, 23, 23]
    assert [plan.broken(k) for k in range(3)] == [False, True, True]
    # At 33 or more nothing is removed; below that the payload starts with the assistant's tool call.
    assert plan.breaking_ranges() == [BudgetRange(0, 33)]
    assert plan.cut(22).removed == 2 and [m["id"] for m in plan.cut(22).kept(history)] == ["s", "t1", "a2", "u2"]


def test_empty_and_short_histories():
    assert SeedPlan([]).cut(5).removed == 0 and SeedPlan([]).breaking_ranges() == []
    short = [{"role": "assistant", "content": "hi"}]
    assert SeedPlan(short).breaking_ranges() == [BudgetRange(0, None)]
