"""Running costs kept per process: always equal to summing the history afresh, across appends, the cap
dropping the oldest messages, and a history replaced under the same session id."""

from __future__ import annotations

import itertools
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from lib.core import ReplyMeta
from lib.costs import running as rc

_ids = itertools.count()


def message(cost: float | None, *, summary_cost: float | None = None) -> dict:
    if cost is None and summary_cost is None:
        return {"role": "user", "content": "q", "id": f"m{next(_ids)}"}
    meta = {"cost": cost, "summary_cost": summary_cost} if cost is not None else {"summary_cost": summary_cost}
    return {"role": "assistant", "content": "a", "id": f"m{next(_ids)}", "meta": meta}


def fresh(history: list[dict]) -> tuple[list[float], int]:
    """The sums computed directly, the way the chat did before they were kept."""
    out, total, unpriced = [], 0.0, 0
    for m in history:
        if m["role"] == "assistant":
            meta = ReplyMeta.from_json(m["meta"])
            unpriced += meta.cost is None
            total += (meta.cost or 0.0) + (meta.summary_cost or 0.0)
        out.append(total)
    return out, unpriced


def check(sid: str, history: list[dict]) -> None:
    got = rc.running_costs(sid, history)
    want, unpriced = fresh(history)
    assert got.count == len(history)
    assert abs(got.total - (want[-1] if want else 0.0)) < 1e-9
    assert got.unpriced == unpriced
    for position in range(len(history) + 1):
        expected = want[position - 1] if position else 0.0
        assert abs(got.before(position) - expected) < 1e-9, position


costs = st.one_of(st.none(), st.floats(min_value=0, max_value=1, allow_nan=False))
steps = st.lists(st.tuples(st.sampled_from(["append", "cap", "replace"]), st.lists(costs, max_size=6),
                           st.integers(0, 5)), max_size=25)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_kept_sums_equal_fresh_sums_through_appends_caps_and_replacements(ops) -> None:
    sid, history = uuid.uuid4().hex, []
    for op, new_costs, drop in ops:
        if op == "replace":
            history = [message(c) for c in new_costs]
        else:
            history = history + [message(c) for c in new_costs]
            if op == "cap":
                history = history[drop:]
        check(sid, history)
    rc.forget(sid)


def test_summary_costs_count_in_the_total() -> None:
    history = [message(None), message(0.5, summary_cost=0.25), message(None), message(None, summary_cost=0.1)]
    got = rc.running_costs(uuid.uuid4().hex, history)
    assert abs(got.total - 0.85) < 1e-12
    assert got.unpriced == 1  # the reply with no cost of its own


def test_a_capped_history_is_not_summed_again(monkeypatch) -> None:
    sid = uuid.uuid4().hex
    history = [message(0.01 if n % 2 else None) for n in range(2_000)]
    rc.running_costs(sid, history)
    parsed = []
    real = ReplyMeta.from_json
    monkeypatch.setattr(ReplyMeta, "from_json", classmethod(lambda cls, obj: parsed.append(1) or real(obj)))
    history = history[2:] + [message(None), message(0.02)]  # one turn at the cap: the oldest two dropped
    check(sid, history)
    assert len(parsed) == 1 + len(history) // 2  # check() sums afresh once; the kept sums parsed one reply


def test_many_sessions_are_bounded() -> None:
    for _ in range(rc.MAX_SESSIONS + 10):
        rc.running_costs(uuid.uuid4().hex, [message(0.1)])
    assert len(rc._sums) <= rc.MAX_SESSIONS
