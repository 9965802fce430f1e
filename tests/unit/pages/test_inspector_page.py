"""The token inspector page under AppTest: the demo, a real trimmed chat session, an empty session, the token
view, labelled counts, the messages table and the provider count buttons."""

from __future__ import annotations

import json

import pytest

from lib.chat import TurnRequest, run_turn
from lib.providers import ProviderError, get_provider
from lib.tokens import PRESETS, count_text
from tests.support.apptest_helpers import open_app, shown, use_memory_store
from tests.support.vega import assert_valid_vega_lite

PAGE = "pages/inspector.py"


@pytest.fixture(autouse=True)
def memory_app(monkeypatch):
    use_memory_store(monkeypatch)


def charts(at) -> list:
    return list(at.get("vega_lite_chart"))


def html_blocks(at) -> list[str]:
    return [element.proto.body for element in at.get("html")]


def captions(at) -> str:
    return "\n".join(shown(c.value) for c in at.caption)


def chart_rows(chart) -> int:
    """Rows of data a chart sends to the browser (Streamlit ships each dataset as Arrow)."""
    import pyarrow as pa

    return sum(pa.ipc.open_stream(d.data.data).read_all().num_rows for d in chart.proto.datasets)


def column_labels(frame_element) -> dict[str, str]:
    config = json.loads(frame_element.proto.columns or "{}")
    return {name: spec.get("label") for name, spec in config.items()}


def test_empty_session_shows_guidance():
    at = open_app(PAGE)
    assert not at.exception
    assert any("This session is empty" in i.value for i in at.info)
    assert charts(at) == []


def test_demo_conversation_renders_charts_table_and_what_if():
    at = open_app(PAGE)
    at.button(key="ins_demo").click().run()
    assert not at.exception and not at.error
    # per turn, error per turn, cumulative, error by kind, cache per turn, cost per strategy
    assert len(charts(at)) == 6
    for chart in charts(at):  # plain dicts, not altair: each must still be valid Vega-Lite
        assert_valid_vega_lite(chart.proto.spec)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Turns"] == "31" and int(metrics["Messages stored"]) >= 62
    text = captions(at)
    assert "31 turns" in text and "exact (tiktoken, o200k_base)" in text and "estimate (chars/4)" in text
    # The demo was never sent to a provider: no provider-reported series, and the page says so.
    assert "the demo was never sent to a provider" in text
    assert any("Where the seed strategy breaks" in w.value for w in at.warning)
    # The picker follows the demo it loaded (and the chat's session is the demo too).
    assert at.session_state["hl_session_id"] == at.selectbox(key="ins_session").value
    assert at.query_params["session"] == at.selectbox(key="ins_session").value

    at.selectbox(key="ins_strategy").set_value("seed").run()
    at.slider(key="ins_budget").set_value(1_500).run()
    assert not at.exception
    verdict = " ".join(e.value for e in at.error) + " ".join(s.value for s in at.success)
    assert "payload" in verdict.lower()


def test_demo_caching_compares_every_strategy_on_and_off():
    at = open_app(PAGE)
    at.button(key="ins_demo").click().run()
    assert at.slider(key="ins_budget").value == 3_000  # the budget the demo was trimmed at
    table = next(d.value for d in at.dataframe if "hit_rate" in d.value.columns)
    assert len(table) == 8 and set(table["caching"]) == {"on", "off"}
    on = table[table["caching"] == "on"].set_index("strategy")
    # The lesson the section teaches, on the demo: the cache-friendly strategy keeps more of the cache.
    assert on.loc["Whole turns, cache-friendly", "hit_rate"] > on.loc["Whole turns (safe)", "hit_rate"]
    assert on.loc["Whole turns, cache-friendly", "cost"] < on.loc["Whole turns (safe)", "cost"]
    assert any("defeats" in m.value or "prefix" in m.value for m in at.markdown)
    assert "simulated" in captions(at)


def test_trimmed_chat_session_shows_dropped_messages_with_plain_columns():
    from pages.ui import services

    handle = services.store_handle()  # the same cached MemoryStore the app uses in this process
    offline = get_provider("offline", delay=0)
    sid = None
    for n in range(5):
        sid = run_turn(handle.store, offline, TurnRequest(user_text=f"Message {n} about trimming history",
                                                          session_id=sid, budget=60)).session_id
    at = open_app(PAGE, session=sid)
    assert not at.exception
    assert len(charts(at)) >= 5  # the cost chart needs a price for the session's model
    assert {m.label: m.value for m in at.metric}["Turns"] == "5"
    table = next(d for d in at.dataframe if "dropped_at_turn" in d.value.columns)
    assert table.value["dropped_at_turn"].notna().any()
    labels = column_labels(table)
    for column, label in {"role": "Role", "chars": "Characters", "estimate": "Estimate", "text_tokens": "Exact",
                          "error_pct": "Error %", "chars_per_token": "Chars per token",
                          "dropped_at_turn": "First dropped at turn"}.items():
        assert labels.get(column) == label
    assert labels.get("left_out") == "Left out"
    assert table.value["left_out"].tolist() == table.value["dropped_at_turn"].notna().tolist()
    assert table.value["left_out"].any() and not table.value["left_out"].all()
    # Missing values (never dropped) are displayed as a dash, not "None" (the table height is checked in
    # tests/test_e2e_inspector.py, in a browser).
    assert table.proto.placeholder == "—"


def open_tab(at, label: str):
    """Switch the page's tabs as a click would: they rerun on change, and only the open tab is drawn."""
    at.session_state["ins_tab"] = label
    return at.run()


def test_token_view_presets_and_typed_text_show_labelled_counts():
    at = open_app(PAGE)
    assert not at.exception
    # The tabs run lazily: the token view is neither run nor sent until its tab is opened.
    assert not [t for t in at.text_area if t.key == "ins_tv_text"]
    open_tab(at, "Token view")
    assert not at.exception
    at.button(key="ins_tv_preset_Chinese").click().run()
    assert at.text_area(key="ins_tv_text").value == PRESETS["Chinese"]
    text = captions(at)
    chinese = PRESETS["Chinese"]
    assert f"exact (tiktoken, cl100k_base): {count_text(chinese, 'cl100k_base'):,}" in text
    assert f"exact (tiktoken, o200k_base): {count_text(chinese, 'o200k_base'):,}" in text
    assert "estimate (chars/4)" in text and "characters per token" in text
    shaded = "".join(html_blocks(at))
    assert shaded.count("<span") >= count_text(chinese, "o200k_base")

    at.text_area(key="ins_tv_text").input("hello <b>world</b>").run()
    assert "exact (tiktoken, o200k_base): " + str(count_text("hello <b>world</b>", "o200k_base")) in captions(at)
    assert "<b>world" not in "".join(html_blocks(at))  # the text is escaped, never rendered as HTML

    long_text = "東京は日本の首都です。" * 2_000  # 22,000 characters
    at.text_area(key="ins_tv_text").input(long_text).run()
    assert not at.exception
    assert f"exact (tiktoken, o200k_base): {count_text(long_text, 'o200k_base'):,}" in captions(at)
    assert "Shading stops after" in captions(at)


class FakeCounter:
    def __init__(self, figure: int | Exception) -> None:
        self.figure, self.calls = figure, []

    def count_tokens(self, messages, model, *, options=None) -> int:
        self.calls.append((messages, model))
        if isinstance(self.figure, Exception):
            raise self.figure
        return self.figure


def test_count_with_anthropic_runs_only_when_clicked(monkeypatch):
    use_memory_store(monkeypatch, ANTHROPIC_API_KEY="sk-ant-test-key")
    from pages.ui import services

    fake = FakeCounter(1_234)
    monkeypatch.setattr(services, "provider_for", lambda name, **options: fake)
    at = open_app(PAGE)
    at.button(key="ins_demo").click().run()
    button = at.button(key="ins_count_anthropic")
    assert button.label == "Count with Anthropic" and fake.calls == []  # never called on a rerun
    button.click().run()
    assert len(fake.calls) == 1
    payload, model = fake.calls[0]
    assert payload[0]["role"] == "system" and model.startswith("claude")
    metrics = {shown(m.label): m.value for m in at.metric}
    assert metrics["Anthropic: exact (provider count endpoint)"] == "1,234"
    approx = next(m for m in at.metric if shown(m.label).startswith("approximate (o200k_base stands in for claude"))
    assert "% against Anthropic" in approx.proto.delta

    fake.figure = ProviderError("Anthropic said 429: slow down. Try again in a minute.", provider="anthropic")
    at.button(key="ins_count_anthropic").click().run()
    assert not at.exception and any("429" in e.value for e in at.error)


def test_count_with_this_server_for_a_local_server_chosen_in_the_sidebar(monkeypatch):
    use_memory_store(monkeypatch)
    from pages.ui import services

    fake = FakeCounter(321)
    monkeypatch.setattr(services, "provider_for", lambda name, **options: fake)
    at = open_app(PAGE)
    at.sidebar.selectbox(key="sb_provider").set_value("openai-compatible").run()
    at.button(key="ins_demo").click().run()
    button = at.button(key="ins_count_openai-compatible")
    assert button.label == "Count with this server" and fake.calls == []
    button.click().run()
    metrics = {shown(m.label): m.value for m in at.metric}
    assert metrics["OpenAI-compatible: exact (server tokenizer)"] == "321"


def test_no_count_buttons_without_a_key():
    at = open_app(PAGE)
    at.button(key="ins_demo").click().run()
    assert not [b for b in at.button if b.key and b.key.startswith("ins_count_")]


def long_session(store, *, messages: int = 2_400, window: int = 40) -> str:
    """A stored session of ``messages`` messages whose every turn sent only the newest ``window`` of them."""
    history, records = [], []
    for n in range(messages):
        role = "user" if n % 2 == 0 else "assistant"
        history.append({"role": role, "id": f"m{n}", "content": f"Message {n}: trimming keeps the newest turns."})
    for turn, user_at in enumerate(range(0, messages - 1, 2), start=1):
        first = max(0, user_at - window + 1)
        record = {"turn": turn, "user_id": f"m{user_at}", "assistant_id": f"m{user_at + 1}", "strategy": "turns",
                  "budget": 80_000, "model": "gpt-4o-mini", "sent": [[f"m{first}", f"m{user_at}"]],
                  "sent_count": user_at + 1 - first, "dropped_count": first}
        if first:
            record["dropped"] = [["m0", f"m{first - 1}"]]
        records.append(record)
    store.import_session("long", messages=history, turns=records, meta={"title": "long"})
    return "long"


def test_long_session_pages_its_tables_samples_its_lines_and_replays_on_demand():
    from pages.ui import services

    sid = long_session(services.store_handle().store)
    at = open_app(PAGE, session=sid)
    assert not at.exception
    table = next(d for d in at.dataframe if "dropped_at_turn" in d.value.columns)
    assert len(table.value) == 200 and table.value["#"].iloc[0] == 0
    pager = next(p for p in at.get("pagination") if p.key == "ins_messages_page")
    assert pager.num_pages == 12
    text = captions(at)
    assert "Page 1 of 12: messages 1–200 of 2,400." in text
    # 1,200 turns: lines through every 3rd turn and the last, and the captions say so.
    assert "Sampled for drawing: one turn in every 3 (401 of 1,200, the first and the last included)" in text
    assert "Dots sampled for drawing: one message in every 3 (801 of 2,400" in text
    assert "The bars use every message." in text
    # Unthinned, the per-turn lines and the dots would send 2,400 rows each.
    assert len(charts(at)) == 4 and max(chart_rows(c) for c in charts(at)) <= 1_000
    # The replay under each strategy waits until its expander is opened.
    assert not [d for d in at.dataframe if "hit_rate" in d.value.columns]
    assert "runs only when you open it below" in text

    pager.set_value(3).run()
    assert not at.exception
    table = next(d for d in at.dataframe if "dropped_at_turn" in d.value.columns)
    assert list(table.value["#"])[:2] == [400, 401] and len(table.value) == 200
    assert "Page 3 of 12: messages 401–600 of 2,400." in captions(at)

    at.session_state["ins_caching_open"] = True
    at.run()
    assert not at.exception
    comparison = next(d.value for d in at.dataframe if "hit_rate" in d.value.columns)
    assert len(comparison) == 8
    assert "Sampled for drawing: one turn in every 3" in captions(at)  # the cost per strategy, 1,200 turns


def test_token_view_loads_a_stored_message_by_its_number():
    at = open_app(PAGE)
    at.button(key="ins_demo").click().run()
    open_tab(at, "Token view")
    assert not at.exception
    picker = at.number_input(key="ins_tv_message")
    assert picker.value is None  # nothing loaded until asked: the presets' text stays
    history = at.session_state["ins_session"]
    from pages.ui import services

    stored = services.store_handle().store.get_history(history)
    number = next(n for n, m in enumerate(stored) if any("\u4e00" <= c <= "\u9fff" for c in str(m["content"])))
    picker.set_value(number).run()
    assert not at.exception
    assert at.text_area(key="ins_tv_text").value == stored[number]["content"]
    assert f"Loaded message #{number} ({stored[number]['role']})" in captions(at)
    count = count_text(stored[number]["content"], "o200k_base")
    assert f"exact (tiktoken, o200k_base): {count:,}" in captions(at)
    at.text_area(key="ins_tv_text").input("something else").run()
    assert "Loaded message" not in captions(at)  # the box no longer holds it
    # Another session opened since: the picker starts empty there (its range changed), and loads from it.
    from lib.sessions import stamp

    store = services.store_handle().store
    store.append("short", stamp({"role": "user", "content": "hi"}), stamp({"role": "assistant", "content": "hello"}))
    at.run()  # the picker lists the sessions there are
    at.selectbox(key="ins_session").set_value("short").run()
    assert not at.exception
    assert at.number_input(key="ins_tv_message").value is None
    at.number_input(key="ins_tv_message").set_value(1).run()
    assert at.text_area(key="ins_tv_text").value == "hello"


def test_count_with_google_calls_the_real_sdk_against_the_fake_server_only_when_clicked(monkeypatch, fake_llm):
    use_memory_store(monkeypatch, GEMINI_API_KEY="AIzaSyPAGE-0123456789abcdefghijklmnopqrs",
                     GEMINI_BASE_URL=fake_llm.gemini_url, PROVIDER_MAX_RETRIES="0")
    at = open_app(PAGE)
    at.button(key="ins_demo").click().run()
    button = at.button(key="ins_count_gemini")
    assert button.label == "Count with Google" and fake_llm.requests == []  # never called on a rerun
    button.click().run()
    assert not at.exception, at.exception
    [request] = fake_llm.requests
    assert request["path"].endswith(":countTokens") and "generateContentRequest" in request["body"]
    metrics = {shown(m.label): m.value for m in at.metric}
    assert "Google: exact (provider count endpoint)" in metrics
    assert any(shown(m.label).startswith("approximate (o200k_base stands in for") for m in at.metric)
