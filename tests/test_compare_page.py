"""The compare page under AppTest: two offline columns; a wire provider beside a failing one."""

from __future__ import annotations

import pytest

from tests.apptest_helpers import open_app, use_memory_store
from tests.redis_fixtures import free_port

PAGE = "pages/compare.py"


@pytest.fixture(autouse=True)
def memory_app(monkeypatch):
    use_memory_store(monkeypatch, PROVIDER_MAX_RETRIES="0")


def send(at, text: str):
    at.text_area(key="cmp_message").input(text)
    next(b for b in at.get("form_submit_button") if "Send to all" in b.proto.label).click().run()
    assert not at.exception, at.exception
    return at


def test_two_offline_columns_are_compared_and_saved_apart_from_the_history():
    at = open_app(PAGE)
    assert [at.selectbox(key=f"cmp_provider_{n}").value for n in (0, 1)] == ["offline", "offline"]
    send(at, "Which one is faster?")
    tables = [d.value for d in at.dataframe if "configuration" in getattr(d.value, "columns", [])]
    assert tables and len(tables[0]) == 2 and tables[0]["ok"].all()
    assert any("Chat Completions" in m.value for m in at.markdown)
    from pages import services

    store, sid = services.store_handle().store, at.session_state["hl_session_id"]
    assert store.get_history(sid) == [] and len(store.get_comparisons(sid)) == 1
    at.button(key="cmp_continue_1").click().run()
    assert [m["role"] for m in store.get_history(sid)] == ["user", "assistant"]


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
    assert any("Fake reply to 2 messages." in m.value for m in at.markdown), [m.value for m in at.markdown]
    assert "sk-ant-test-KEY12345" not in str(at.session_state["cmp_last"]["record"])


def test_unconfigured_provider_says_what_to_set():
    at = open_app(PAGE)
    at.selectbox(key="cmp_provider_1").set_value("openai").run()
    assert any("OPENAI_API_KEY" in w.value for w in at.warning)
