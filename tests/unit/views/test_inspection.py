"""The inspector's frames, the what-if, and the bundled demo conversation."""

from __future__ import annotations

import math
import re

import pytest

import lib.views.inspection as inspection
from lib.chat import TurnRequest, demo_data, load_demo, run_turn
from lib.context import seed_breaking_budgets
from lib.core import DEFAULT_PRICES, TurnRecord
from lib.providers import get_provider
from lib.sessions import MemoryStore
from lib.tokens import EncodingUnavailable, count_chat_tokens, estimate_tokens
from lib.views import inspect, what_if

MODEL = "gpt-4o-mini"
PRICES = {p.model: p for p in DEFAULT_PRICES}


@pytest.fixture
def chatted() -> tuple[MemoryStore, str]:
    """A real session from lib.chat.conversation with the offline model and a budget small enough to trim."""
    store, offline = MemoryStore(), get_provider("offline", delay=0)
    sid = None
    for n in range(6):
        result = run_turn(store, offline, TurnRequest(user_text=f"Question number {n} about history trimming",
                                                      session_id=sid, system_prompt="Be brief.", budget=260,
                                                      model=MODEL))
        sid = result.session_id
    return store, sid


def test_per_turn_frame_matches_the_turn_records(chatted):
    store, sid = chatted
    history, turns = store.get_history(sid), store.get_turns(sid)
    data = inspect(history, turns, model=MODEL, system_prompt="Be brief.")
    frame = data.turns
    assert list(frame["turn"]) == [1, 2, 3, 4, 5, 6]
    assert list(frame["estimate"]) == [t["estimate"] for t in turns]
    assert list(frame["exact"]) == [t["exact"] for t in turns]
    assert list(frame["provider"]) == [t["usage"]["input_tokens"] for t in turns]
    expected_error = [round((t["estimate"] - t["exact"]) / t["exact"] * 100, 1) for t in turns]
    assert list(frame["error_pct"]) == expected_error
    # Without trimming, turn N would have sent the system prompt and everything up to its user message.
    by_id = {m["id"]: n for n, m in enumerate(history)}
    for row, record in zip(frame.itertuples(), turns, strict=True):
        upto = history[: by_id[record["user_id"]] + 1]
        payload = [{"role": "system", "content": "Be brief."}, *({"role": m["role"], "content": m["content"]}
                                                                 for m in upto)]
        assert row.untrimmed_exact == count_chat_tokens(payload, MODEL)
    assert frame["dropped"].iloc[-1] > 0 and frame["exact"].iloc[-1] <= 260


def test_cumulative_frame_grows_and_counts_the_savings(chatted):
    store, sid = chatted
    data = inspect(store.get_history(sid), store.get_turns(sid), model=MODEL, system_prompt="Be brief.",
                   prices=PRICES)
    cum = data.cumulative
    assert list(cum["cumulative_sent"]) == list(data.turns["exact"].astype(float).cumsum())
    assert (cum["cumulative_untrimmed"].diff().dropna() > 0).all()
    assert (cum["saved"] >= 0).all() and cum["saved"].iloc[-1] > 0
    price = PRICES[MODEL]
    assert cum["cost"].iloc[-1] == pytest.approx(cum["cumulative_sent"].iloc[-1] * price.input / 1e6)
    assert cum["counted_with"].iloc[0] == "exact"
    assert inspect(store.get_history(sid), store.get_turns(sid), model=MODEL).cumulative["cost"].isna().all()


def test_message_table_marks_the_first_turn_that_dropped_each_message(chatted):
    store, sid = chatted
    history, turns = store.get_history(sid), store.get_turns(sid)
    frame = inspect(history, turns, model=MODEL).messages
    assert len(frame) == len(history)
    assert list(frame["chars"]) == [len(m["content"]) for m in history]
    assert list(frame["estimate"]) == [math.ceil(len(m["content"]) / 4) for m in history]
    first_drop = next(t for t in map(TurnRecord.from_json, turns) if t.dropped_count)
    row = frame[frame["id"] == first_drop.dropped_ids(history)[0]].iloc[0]
    assert row["dropped_at_turn"] == first_drop.turn
    never = frame[frame["id"] == history[-1]["id"]].iloc[0]
    assert never["times_dropped"] == 0 and str(never["dropped_at_turn"]) == "<NA>"


def test_missing_encoding_falls_back_to_the_estimate(chatted, monkeypatch):
    store, sid = chatted
    turns = [{**t, "exact": None} for t in store.get_turns(sid)]

    def unavailable(message, model):
        raise EncodingUnavailable("o200k_base", "no network")

    monkeypatch.setattr(inspection, "message_tokens", unavailable)
    data = inspect(store.get_history(sid), turns, model=MODEL)
    assert not data.exact_available
    assert data.turns["exact"].isna().all() and data.turns["error_pct"].isna().all()
    assert data.cumulative["counted_with"].iloc[0] == "chars/4"
    assert list(data.cumulative["sent"]) == [float(t["estimate"]) for t in turns]


def test_empty_session_builds_empty_frames():
    data = inspect([], [], model=MODEL)
    assert data.turns.empty and data.messages.empty and data.cumulative.empty


def test_demo_conversation_covers_the_cases_where_chars_4_misleads():
    messages = demo_data()["messages"]
    users = [m for m in messages if m["role"] == "user"]
    assert len(users) >= 30
    text = "\n".join(str(m.get("content") or "") for m in messages)
    assert re.search(r"[\u4e00-\u9fff]", text) and re.search(r"[\u3040-\u30ff]", text)  # Chinese and Japanese
    assert "```" in text and re.search(r"[\U0001F300-\U0001FAFF]", text)
    assert max(len(m.get("content") or "") for m in messages) > 3000
    calls = [c["id"] for m in messages for c in m.get("tool_calls") or []]
    results = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
    assert calls and calls == results
    # chars/4 goes wrong in both directions over the demo's messages.
    from lib.tokens import count_tokens
    ratios = [estimate_tokens(m["content"]) / count_tokens(m["content"], MODEL) for m in messages
              if isinstance(m.get("content"), str) and len(m["content"]) > 40]
    assert min(ratios) < 0.7 and max(ratios) > 1.05


def test_loaded_demo_has_turn_records_with_drops_and_valid_payloads():
    store = MemoryStore()
    sid = load_demo(store)
    turns, history = store.get_turns(sid), store.get_history(sid)
    assert len(turns) == len([m for m in history if m["role"] == "user"]) >= 30
    assert any(t["dropped_count"] for t in turns) and all(t["exact"] <= t["budget"] for t in turns)
    assert all(len(t["sent"]) == 1 and len(t.get("dropped", [])) <= 1 for t in turns)  # compact ranges
    assert store.get_meta(sid)["title"] == demo_data()["title"]
    data = inspect(history, turns, model=MODEL, system_prompt=demo_data()["system_prompt"])
    assert data.messages["dropped_at_turn"].notna().sum() > 0


def test_what_if_seed_breaks_where_turns_stays_valid():
    store = MemoryStore()
    sid = load_demo(store)
    history, system = store.get_history(sid), demo_data()["system_prompt"]
    breaks = seed_breaking_budgets(history, model=MODEL, system_prompt=system)
    assert breaks
    budget, problems = breaks[0]
    assert "starts with an assistant message" in problems[0] or "Tool" in problems[0]
    turns = what_if(history, budget=budget, strategy="turns", model=MODEL, system_prompt=system)
    assert turns.problems == [] and turns.dropped_ids and turns.tokens_after <= budget
    seed = what_if(history, budget=budget, strategy="seed", model=MODEL, system_prompt=system)
    assert seed.problems == problems and set(seed.kept_ids) | set(seed.dropped_ids) == {m["id"] for m in history}
    tiny = what_if(history, budget=10, strategy="turns", model=MODEL, system_prompt=system)
    assert tiny.error and "budget" in tiny.error


ODD_TURNS = [
    {"turn": 1, "usage": {"input_tokens": "many"}, "sent_ids": 5},
    {"turn": "two", "sent": "all", "dropped": [[1, 2]], "exact": "lots", "estimate": None, "error": 7},
    {"turn": 3, "dropped_ids": ["nope", 4], "budget": "big", "model": ["gpt"], "encoding": 5},
    {"usage": [], "problems": {"x": 1}, "strategy": 9, "ts": "yesterday"},
]


def test_odd_records_and_messages_in_the_store_never_break_the_inspector():
    store = MemoryStore()
    store.append("odd", {"role": "user", "content": "hi"}, {"role": ["assistant"], "content": 42, "id": 7},
                 {"role": "assistant", "content": None, "meta": {"usage": {"input_tokens": "many"}}})
    for record in ODD_TURNS:
        store.append_turn("odd", record)
    data = inspect(store.get_history("odd"), store.get_turns("odd"), model=MODEL, system_prompt="Be brief.",
                   prices=PRICES)
    assert len(data.turns) == len(ODD_TURNS) and len(data.messages) == 3
    assert data.turns["provider"].isna().all() and data.messages["dropped_at_turn"].isna().all()
    assert list(data.turns["turn"]) == [1, 2, 3, 4]


def test_drop_columns_equal_the_resolved_id_lists(chatted):
    # The frame counts drops from position spans; this recounts them the slow way, from id lists.
    store, sid = chatted
    history, turns = store.get_history(sid), store.get_turns(sid)
    frame = inspect(history, turns, model=MODEL).messages.set_index("id")
    first: dict[str, int] = {}
    times: dict[str, int] = {}
    for record in map(TurnRecord.from_json, turns):
        for message_id in record.dropped_ids(history):
            first.setdefault(message_id, record.turn)
            times[message_id] = times.get(message_id, 0) + 1
    assert times, "the fixture must trim something"
    for message in history:
        row = frame.loc[message["id"]]
        assert row["times_dropped"] == times.get(message["id"], 0)
        expected = first.get(message["id"])
        assert (str(row["dropped_at_turn"]) == "<NA>") if expected is None else row["dropped_at_turn"] == expected


def test_message_errors_by_kind_teach_the_lesson():
    from lib.views import kind_frame

    store = MemoryStore()
    data = inspect(store.get_history(load_demo(store)), [], model=MODEL)
    kinds = kind_frame(data.messages).set_index("kind")
    assert {"prose", "CJK", "code", "JSON / tool call"} <= set(kinds.index)
    # chars/4 is close for English prose and far below the exact count for CJK and tool calls.
    assert abs(kinds.loc["prose", "error_pct"]) < 25
    assert kinds.loc["CJK", "error_pct"] < -40 and kinds.loc["JSON / tool call", "error_pct"] < -40
    row = data.messages.dropna(subset=["error_pct"]).iloc[0]
    assert row["error_pct"] == round((row["estimate"] - row["text_tokens"]) / row["text_tokens"] * 100, 1)


def test_error_series_groups_long_sessions():
    import pandas as pd

    from lib.views import error_series

    turns = pd.DataFrame({"turn": range(1, 1001), "estimate": [90] * 1000, "exact": [100.0] * 1000,
                          "error_pct": [-10.0] * 1000})
    grouped = error_series(turns, max_points=150)
    assert len(grouped) <= 150 and grouped["first"].iloc[0] == 1 and grouped["last"].iloc[-1] == 1000
    assert (grouped["error_pct"] == -10.0).all() and grouped["label"].iloc[0] == "1–7"
    short = error_series(turns.head(5))
    assert list(short["turn"]) == [1, 2, 3, 4, 5] and (short["first"] == short["last"]).all()


def test_strategy_comparison_on_the_demo_favours_the_cache_aware_strategy():
    from lib.views import cache_stack_frame, comparison_frame, strategy_totals

    store = MemoryStore()
    history = store.get_history(load_demo(store))
    totals = strategy_totals(history, model=MODEL, budget=3_000, system_prompt=demo_data()["system_prompt"],
                             prices=PRICES)
    table = comparison_frame(totals)
    assert len(table) == 8
    on = table[table["caching"] == "on"].set_index("strategy")
    assert on.loc["Whole turns, cache-friendly", "cost"] < on.loc["Whole turns (safe)", "cost"]
    stack = cache_stack_frame(next(t for t in totals if t.strategy == "turns" and t.profile))
    per_turn = stack.groupby("turn")["tokens"].sum()
    sent = [t.input_tokens for t in totals[0].turns if t is not None]
    assert list(per_turn) == sent  # cached + written + uncached = the payload


def test_seed_what_if_uses_the_fast_seed_with_the_literal_result():
    store = MemoryStore()
    history = store.get_history(load_demo(store))
    for budget in (500, 1_500, 4_000):
        fast = what_if(history, budget=budget, strategy="seed", model=MODEL, system_prompt="Be brief.")
        from lib.context import trim_seed_literal

        literal = trim_seed_literal([{"role": "system", "content": "Be brief."}, *history], budget)
        assert fast.kept_ids == literal.kept_ids and fast.tokens_after == literal.tokens_after


def test_thin_keeps_every_step_th_value_and_the_last_and_says_so():
    import pandas as pd

    from lib.views import thin

    # Long, as a chart draws it: two series per turn; thinning must keep or drop a turn's rows together.
    frame = pd.DataFrame({"turn": [t for t in range(1, 1_203) for _ in (0, 1)], "series": ["a", "b"] * 1_202})
    drawn = thin(frame, "turn", max_points=500)
    turns = sorted(set(drawn.frame["turn"]))
    assert drawn.step == 3 and turns[:3] == [1, 4, 7] and turns[-1] == 1_202 and drawn.total == 1_202
    assert len(turns) == drawn.kept <= 502 and len(drawn.frame) == 2 * drawn.kept
    assert drawn.note("turn") == ("Sampled for drawing: one turn in every 3 (402 of 1,202, the first and the "
                                  "last included); each value drawn is exact.")
    whole = thin(frame.head(20), "turn", max_points=500)
    assert whole.step == 1 and whole.note("turn") == "" and len(whole.frame) == 20


def test_page_of_clamps_and_describes_the_rows_shown():
    import pandas as pd

    from lib.views import page_of

    frame = pd.DataFrame({"#": range(450)})
    first = page_of(frame, 1, size=200)
    assert first.rows["#"].iloc[0] == 0 and len(first.rows) == 200 and first.count == 3
    assert first.caption() == "Page 1 of 3: messages 1–200 of 450."
    last = page_of(frame, 9, size=200)  # past the end: the last page
    assert last.number == 3 and list(last.rows["#"]) == list(range(400, 450))
    assert last.caption() == "Page 3 of 3: messages 401–450 of 450."
    assert page_of(frame.head(5), 1, size=200).caption() == "All 5 messages."
    assert page_of(frame.head(0), 1, size=200).caption() == "All 0 messages."


def test_latest_settings_reads_the_newest_records_naming_them():
    from lib.views import latest_settings

    turns = [{"turn": 1, "model": "gpt-4o", "budget": 500}, {"turn": 2, "model": "gpt-4o-mini"},
             {"turn": 3, "budget": "odd"}]
    assert latest_settings(turns) == ("gpt-4o-mini", 500)
    assert latest_settings([]) == (None, 0)
    assert latest_settings([TurnRecord.from_json({"turn": 1, "budget": 900})]) == (None, 900)
