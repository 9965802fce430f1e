"""The token inspector page under AppTest: the demo, a real trimmed chat session, an empty session."""

from __future__ import annotations

import pytest

from lib.chat import TurnRequest, run_turn
from lib.providers import get_provider
from tests.apptest_helpers import open_app, use_memory_store

PAGE = "pages/inspector.py"


@pytest.fixture(autouse=True)
def memory_app(monkeypatch):
    use_memory_store(monkeypatch)


def charts(at) -> list:
    return list(at.get("vega_lite_chart"))


def test_empty_session_shows_guidance():
    at = open_app(PAGE)
    assert not at.exception
    assert any("This session is empty" in i.value for i in at.info)
    assert charts(at) == []


def test_demo_conversation_renders_charts_table_and_what_if():
    at = open_app(PAGE)
    at.button(key="ins_demo").click().run()
    assert not at.exception and not at.error
    assert len(charts(at)) == 3  # per turn, error %, cumulative
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Turns"] == "31" and int(metrics["Messages stored"]) >= 62
    assert any("31 turns" in c.value and "o200k_base" in c.value for c in at.caption)
    assert any("Where the seed strategy breaks" in w.value for w in at.warning)
    assert at.session_state["hl_session_id"] == at.selectbox(key="ins_session").value

    at.selectbox(key="ins_strategy").set_value("seed").run()
    at.slider(key="ins_budget").set_value(1_500).run()
    assert not at.exception
    verdict = " ".join(e.value for e in at.error) + " ".join(s.value for s in at.success)
    assert "payload" in verdict.lower()


def test_trimmed_chat_session_shows_dropped_messages(monkeypatch):
    from pages import services

    handle = services.store_handle()  # the same cached MemoryStore the app uses in this process
    offline = get_provider("offline", delay=0)
    sid = None
    for n in range(5):
        sid = run_turn(handle.store, offline, TurnRequest(user_text=f"Message {n} about trimming history",
                                                          session_id=sid, budget=200)).session_id
    at = open_app(PAGE, session=sid)
    assert not at.exception
    assert len(charts(at)) == 3
    assert {m.label: m.value for m in at.metric}["Turns"] == "5"
    tables = [d.value for d in at.dataframe if "dropped_at_turn" in getattr(d.value, "columns", [])]
    assert tables and tables[0]["dropped_at_turn"].notna().any()
