"""The chat page's "You choose": a turn left out under its message is stored in the session meta, never sent
again, drawn as left out, and the sidebar counts it and clears it."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from lib.chat import manual_choice, user_turns
from lib.core import Settings
from lib.services import store_handle
from tests.support.apptest_helpers import open_app, shown, use_memory_store


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input(key="chat_input").set_value(text).run()
    assert not at.exception, at.exception
    return at


def session_of(at: AppTest) -> str:
    sid = at.query_params["session"]
    return sid[0] if isinstance(sid, list) else sid


def test_leaving_out_a_turn_in_the_chat_is_stored_applied_and_shown(monkeypatch):
    use_memory_store(monkeypatch)
    at = open_app()
    for text in ("The code word is pelican.", "Second question", "Third question"):
        send(at, text)
    sid = session_of(at)
    store = store_handle(Settings.from_env()).store
    first = user_turns(store.get_history(sid), store.turn_count(sid))[1]
    at.button_group(key=f"chat_choice_{first}").set_value("left_out").run()
    assert not at.exception, at.exception
    assert manual_choice(store, sid).left_out == {first}
    send(at, "What was the code word?")
    newest = store.get_history(sid)[-1]["content"]
    assert "pelican" not in newest and "nothing in my payload says what the code word is" in newest
    captions = " ".join(c.value for c in at.caption)
    assert "left out by you" in captions
    badges = " ".join(shown(md.value) for m in at.chat_message for md in m.markdown if "-badge[" in md.value)
    assert "left out by you: 2 messages never sent" in badges
    assert "📌 0 pinned · ⊘ 1 left out" in " ".join(c.value for c in at.sidebar.caption)
    at.sidebar.button(key="sb_manual_clear").click().run()
    assert not manual_choice(store, sid) and at.button_group(key=f"chat_choice_{first}").value is None


def test_the_tools_toggle_sends_the_definitions_and_the_timeline_shows_them(monkeypatch):
    use_memory_store(monkeypatch)
    at = open_app()
    at.sidebar.toggle(key="sb_tools").set_value(True).run()
    assert any("tool definitions (JSON)" in e.label for e in at.sidebar.expander)
    send(at, "Weather in Lisbon?")
    sid = session_of(at)
    store = store_handle(Settings.from_env()).store
    report = " ".join(store.get_history(sid)[-1]["meta"]["report"])  # the offline model's report under the reply
    assert "3 tool definitions (get_weather, search_web, calculator" in report
    badges = " ".join(shown(md.value) for m in at.chat_message for md in m.markdown if "-badge[" in md.value)
    assert "3 tool definitions sent" in badges and "never trimmed" in badges
    body = next(c.value for c in at.code if '"tools"' in c.value)
    assert '"tool_choice": "none"' in body and '"get_weather"' in body
