"""The chat page under streamlit.testing.v1.AppTest, on a real Redis store and the offline model."""

from __future__ import annotations

import socket
import uuid

import pytest
from streamlit.testing.v1 import AppTest

from lib.providers import FORGOT_PHRASE
from lib.sessions import RedisStore
from tests.apptest_helpers import open_app

SCRUBBED = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_COMPATIBLE_API_KEY", "DEFAULT_PROVIDER",
            "HISTORY_LAB_STORE", "REDIS_CLUSTER", "TOKEN_BUDGET")


@pytest.fixture
def store_env(monkeypatch, valkey_server) -> RedisStore:
    """Point the app at the test Valkey with a private prefix; return a store reading the same keys."""
    prefix = f"apptest-{uuid.uuid4().hex[:8]}"
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", valkey_server.url)
    monkeypatch.setenv("REDIS_PREFIX", prefix)
    monkeypatch.setenv("OFFLINE_DELAY", "0")
    store = RedisStore(valkey_server.url, prefix=prefix)
    yield store
    for key in store.client.scan_iter(match=f"{prefix}:*"):
        store.client.delete(key)


def new_app(session: str | None = None) -> AppTest:
    return open_app(session=session)


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input(key="chat_input").set_value(text).run()
    assert not at.exception, at.exception
    return at


def shown_messages(at: AppTest) -> list[tuple[str, str]]:
    return [(m.name, " ".join(md.value for md in m.markdown)) for m in at.chat_message]


def errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


def test_multi_turn_conversation_is_stored_and_reopened_from_the_url(store_env):
    at = new_app()
    assert not at.exception and not at.error
    for text in ("First question", "Second question", "Third question"):
        send(at, text)
    sid = at.query_params["session"]
    sid = sid[0] if isinstance(sid, list) else sid
    messages = shown_messages(at)
    assert [name for name, _ in messages] == ["user", "assistant"] * 3
    assert "I received 6 messages" in messages[-1][1]  # system prompt + 5
    assert [m["content"] for m in store_env.get_history(sid)][::2] == ["First question", "Second question",
                                                                      "Third question"]
    assert any("What was sent this turn" in e.label for e in at.expander)

    # A fresh browser session with the same ?session= shows the stored conversation.
    again = new_app(sid)
    assert shown_messages(again) == messages
    assert again.session_state["hl_session_id"] == sid


def test_small_budget_marks_dropped_messages_and_the_model_forgets(store_env):
    at = new_app()
    at.sidebar.select_slider(key="sb_budget").set_value(200).run()
    send(at, "My name is Ada Lovelace and I wrote the first program.")
    for n in range(4):
        send(at, f"Tell me something about engine number {n}, please.")
    replies = [text for name, text in shown_messages(at) if name == "assistant"]
    assert FORGOT_PHRASE in replies[-1]
    assert FORGOT_PHRASE not in replies[0]
    captions = " ".join(c.value for m in at.chat_message for c in m.caption)
    assert "not sent in the last payload" in captions


def test_delete_session_asks_for_confirmation_then_starts_a_new_chat(store_env):
    at = new_app()
    send(at, "Something to delete")
    sid = at.session_state["hl_session_id"]
    assert store_env.exists(sid)
    at.sidebar.button(key="sb_delete").click().run()
    assert store_env.exists(sid)  # nothing happens before the confirmation
    at.sidebar.button(key="sb_delete_yes").click().run()
    assert not store_env.exists(sid)
    assert at.session_state["hl_session_id"] != sid
    assert not at.chat_message


def test_provider_failure_shows_st_error_and_keeps_the_message(store_env, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", f"http://127.0.0.1:{closed}/v1")
    monkeypatch.setenv("PROVIDER_MAX_RETRIES", "0")
    at = new_app()
    at.sidebar.selectbox(key="sb_provider").set_value("openai-compatible").run()
    send(at, "Is anyone there?")
    assert f"127.0.0.1:{closed}" in errors(at)
    assert "Your message is saved" in errors(at)
    sid = at.session_state["hl_session_id"]
    assert [m["content"] for m in store_env.get_history(sid)] == ["Is anyone there?"]
    assert not at.exception


def test_missing_key_says_what_to_set(store_env):
    at = new_app()
    at.sidebar.selectbox(key="sb_provider").set_value("openai").run()
    assert "OPENAI_API_KEY" in errors(at)
    assert at.chat_input(key="chat_input").disabled


def test_message_larger_than_the_budget_is_kept_with_a_clear_error(store_env):
    at = new_app()
    at.sidebar.select_slider(key="sb_budget").set_value(200).run()
    send(at, "long " * 400)
    assert "Your message is saved, but it was not sent" in errors(at)
    sid = at.session_state["hl_session_id"]
    assert store_env.get_history(sid)[0]["content"] == "long " * 400


def test_invalid_session_in_the_url_starts_a_new_chat_with_an_error(store_env):
    at = new_app("not a valid id!")
    assert "not valid" in errors(at)
    assert at.session_state["hl_session_id"] != "not a valid id!"


def test_empty_input_is_ignored(store_env):
    at = new_app()
    send(at, "   ")
    assert not at.chat_message and not at.error
    assert not store_env.exists(at.session_state["hl_session_id"])


def test_sidebar_choices_survive_switching_pages(store_env):
    at = new_app()
    at.sidebar.select_slider(key="sb_budget").set_value(500).run()
    at.sidebar.text_area(key="sb_system_prompt").input("Answer in French.").run()
    for page in ("pages/inspector.py", "pages/compare.py", "pages/chat.py"):
        at.switch_page(page).run()
        assert at.sidebar.select_slider(key="sb_budget").value == 500
        assert at.sidebar.text_area(key="sb_system_prompt").value == "Answer in French."


def test_redis_down_shows_an_actionable_error_not_a_traceback(monkeypatch):
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("REDIS_URL", f"redis://user:hunter2@127.0.0.1:{closed}/0")
    at = new_app()
    assert not at.exception
    message = errors(at)
    assert "not reachable" in message and "Start the server or fix REDIS_URL" in message
    assert "hunter2" not in message and "user:***@127.0.0.1" in message
