"""The compare page under AppTest: offline columns, a wire provider beside a failing one, readable tables,
named continue buttons, configurations kept across a page switch, and the history strategies tab."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.support.apptest_helpers import open_app, shown, use_memory_store
from tests.support.redis_fixtures import free_port

PAGE = "pages/compare.py"


@pytest.fixture(autouse=True)
def memory_app(monkeypatch):
    use_memory_store(monkeypatch, PROVIDER_MAX_RETRIES="0")


def send(at, text: str):
    at.text_area(key="cmp_message").input(text)
    next(b for b in at.get("form_submit_button") if "Send to all" in b.proto.label).click().run()
    assert not at.exception, at.exception
    return at


# st.table renders Markdown, so the page escapes every cell; read them back as shown.
unescape = shown


def tables(at) -> list[pd.DataFrame]:
    out = []
    for table in at.table:
        frame = table.value.map(unescape)
        frame.columns = [unescape(c) for c in frame.columns]
        frame.index = pd.Index([unescape(i) for i in frame.index], name=frame.index.name)
        # No blank header: an index that is shown has a name (its header cell); row numbers are hidden.
        assert all(str(c).strip() for c in frame.columns), frame.columns
        assert table.proto.hide_index if frame.index.name is None else frame.index.name.strip()
        out.append(frame)
    return out


def table_cells(frame) -> list[str]:
    return [str(v) for v in [*frame.columns, *frame.index, *frame.to_numpy().ravel()]]


def summary_of(at):
    return next(t for t in tables(at) if "status" in t.index)


def test_two_offline_columns_are_compared_and_saved_apart_from_the_history():
    at = open_app(PAGE)
    assert [at.selectbox(key=f"cmp_provider_{n}").value for n in (0, 1)] == ["offline", "offline"]
    send(at, "Which one is faster?")
    summary = summary_of(at)
    assert list(summary.columns) == ["1. offline / offline-teacher", "2. offline / offline-teacher"]
    assert list(summary.loc["status"]) == ["ok", "ok"]
    for table in tables(at):
        assert not {"None", "nan", "True", "False"} & set(table_cells(table)), table
    assert summary.loc["count"].iloc[0].startswith("approximate (o200k_base stands in for offline-teacher")
    assert summary.loc["cost basis"].iloc[0] == "priced as gpt-5.4-mini"
    assert float(summary.loc["cost (µ$, millionths of a US$)"].iloc[0]) > 0
    assert summary.loc["sent"].iloc[0] == "2 messages"  # system prompt + the new message, as the note says
    assert any("Chat Completions" in m.value and "2 messages" in m.value for m in at.markdown)
    from pages.ui import services

    store, sid = services.store_handle().store, at.session_state["hl_session_id"]
    assert store.get_history(sid) == [] and len(store.get_comparisons(sid)) == 1
    labels = [shown(at.button(key=f"cmp_continue_{n}").label) for n in (0, 1)]
    assert labels == ["Continue with column 1 (offline / offline-teacher)",
                      "Continue with column 2 (offline / offline-teacher)"]
    at.button(key="cmp_continue_1").click().run()
    assert [m["role"] for m in store.get_history(sid)] == ["user", "assistant"]


def test_one_body_at_a_time_with_a_diff_against_a_baseline(fake_llm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-KEY12345")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_url)
    at = open_app(PAGE)
    at.selectbox(key="cmp_provider_0").set_value("openai").run()
    at.selectbox(key="cmp_provider_1").set_value("openai-responses").run()
    send(at, "Compare the bodies")
    assert at.selectbox(key="cmp_body_shown").value == 1 and at.selectbox(key="cmp_body_baseline").value == 0
    notes = " ".join(m.value for m in at.markdown)
    assert "System prompt: top-level instructions field instead of messages[0] (role system)." in notes
    assert "Re-sent: 1 input items instead of 2 messages." in notes
    summary = summary_of(at)
    assert summary.loc["sent"].iloc[1] == "1 input items + top-level instructions field"
    codes = [c.value for c in at.code]
    assert any(c.startswith("--- 1. openai") and '+  "instructions"' in c for c in codes)
    at.selectbox(key="cmp_body_shown").set_value(0).run()
    assert any("Pick another baseline" in c.value for c in at.caption)


def test_wire_provider_column_beside_a_failing_one(fake_llm, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", fake_llm.openai_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-KEY12345")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    at = open_app(PAGE)
    at.selectbox(key="cmp_provider_0").set_value("openai-compatible").run()
    at.selectbox(key="cmp_provider_1").set_value("anthropic").run()
    send(at, "Hello both")
    assert fake_llm.bodies("/chat/completions")[0]["messages"][-1] == {"role": "user", "content": "Hello both"}
    assert any("Cannot connect to Anthropic" in e.value for e in at.error), [e.value for e in at.error]
    status = list(summary_of(at).loc["status"])
    assert status[0] == "ok" and status[1].startswith("failed (") and "—" in summary_of(at).iloc[:, 1].tolist()
    assert any("Fake reply to 2 messages." in c.value for c in at.code), [c.value for c in at.code]
    assert "sk-ant-test-KEY12345" not in str(at.session_state["cmp_last"]["record"])


def test_unconfigured_provider_says_what_to_set():
    at = open_app(PAGE)
    at.selectbox(key="cmp_provider_1").set_value("openai").run()
    assert any("OPENAI_API_KEY" in shown(w.value) for w in at.warning)


def test_configurations_are_kept_across_a_page_switch():
    at = open_app(PAGE)
    at.slider(key="cmp_count").set_value(3).run()
    at.selectbox(key="cmp_provider_2").set_value("anthropic").run()
    at.selectbox(key="cmp_model_2_anthropic").set_value("claude-haiku-4-5").run()
    at.switch_page("pages/chat.py").run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.slider(key="cmp_count").value == 3
    assert at.selectbox(key="cmp_provider_2").value == "anthropic"
    assert at.selectbox(key="cmp_model_2_anthropic").value == "claude-haiku-4-5"


def test_history_strategies_tab_works_with_no_key():
    at = open_app(PAGE)
    assert at.radio(key="cmp_st_source").value == "demo"  # an empty session compares the bundled demo
    table = next(t for t in tables(at) if "tokens billed (input)" in t.columns)
    assert list(table.index) == ["re-send: turns", "re-send: cache-aware", "re-send: summary",
                                 "server: previous_response_id", "server: compaction"]
    seen = next(t for t in tables(at) if "what the model could see" in t.columns)
    for frame in (table, seen):
        assert not {"None", "nan"} & set(table_cells(frame))
    assert "in a summary" in seen.loc["re-send: summary", "what the model could see"]
    assert "encrypted compaction item" in seen.loc["server: compaction", "what the model could see"]
    assert int(table.loc["server: previous_response_id", "tokens sent"]) < 100
    assert any("compact_threshold" in c.value for c in at.code)
    assert any("simulated: what the Responses API would bill" in shown(c.value) for c in at.caption)


def test_table_cells_are_plain_text():
    from lib.core import markdown_literal as plain  # what pages.ui.compare_results.plain_table applies

    assert plain("cost (µ$, US$)") == r"cost \(µ\$, US\$\)"  # "$…$" would be LaTeX in st.table
    assert plain("1. ![x](http://e.example/a.png) <img src=x>") == \
        r"1\. \!\[x\]\(http\:" + "\u2060" + r"//e\.example/a\.png\) \<img src\=x\>"


def test_strategies_chain_counted_with_the_count_endpoint(fake_llm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-KEY12345")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_url)
    at = open_app(PAGE)
    simulated = next(t for t in tables(at) if "tokens billed (input)" in t.columns)
    at.button(key="cmp_st_count").click().run()
    assert not at.exception, at.exception
    body = fake_llm.bodies("/responses/input_tokens")[-1]
    assert "previous_response_id" not in body and len(body["input"]) > 40  # the whole demo conversation
    assert body["input"][-1] == {"role": "user", "content": "What did I say in my first message?"}
    counted = next(t for t in tables(at) if "tokens billed (input)" in t.columns)
    row = "server: previous_response_id"
    assert counted.loc[row, "tokens billed (input)"] != simulated.loc[row, "tokens billed (input)"]
    assert counted.loc["re-send: turns"].equals(simulated.loc["re-send: turns"])
    assert any("billed: exact (provider count endpoint)" in shown(c.value) for c in at.caption)


def test_strategies_tab_compares_a_gemini_explicit_cache_with_the_implicit_one():
    at = open_app(PAGE)
    gemini = next(t for t in tables(at) if "explicit: storage (µ$)" in t.columns)
    assert list(gemini.columns) == ["input tokens", "explicit: cached", "explicit: created", "explicit: storage (µ$)",
                                    "explicit (µ$)", "implicit: cached", "implicit (µ$)", "no cache (µ$)"]
    assert len(gemini.index) >= 2 and not {"None", "nan"} & set(table_cells(gemini))
    assert at.selectbox(key="cmp_st_gemini_model").value == "gemini-2.5-flash"
    # The demo's stable prefix passes 2.5 Flash's 2,048-token minimum in its later turns: both caches read it.
    assert any(int(v.replace(",", "")) > 0 for v in gemini["explicit: cached"] if v != "—")
    assert any(int(v.replace(",", "")) > 0 for v in gemini["implicit: cached"] if v != "—")
    assert any("Input-side totals" in shown(c.value) and "explicit cache" in shown(c.value) for c in at.caption)
    at.radio(key="cmp_st_gemini_ttl").set_value("1 hour").run()
    assert not at.exception, at.exception
