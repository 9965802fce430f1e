"""The Lesson page under AppTest: every chapter runs live with the offline model and no key, from lib.chat.lesson.

Chapters 1, 2, 5 and 6 run on a MemoryStore; chapters 3 and 4 on a real Valkey (the ``valkey_server`` fixture).
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib.chat import CHAPTERS, SEED_TURNS
from lib.providers import FORGOTTEN_ANSWER, REPORT_LABEL
from lib.sessions import RedisStore
from tests.support.apptest_helpers import open_app, shown, use_memory_store, use_redis_store

PAGE = "pages/lesson.py"


def lesson(monkeypatch) -> AppTest:
    use_memory_store(monkeypatch)
    return open_lesson()


def open_lesson() -> AppTest:
    at = open_app(PAGE)
    assert not at.exception, at.exception
    return at


def text(at: AppTest) -> str:
    parts = [*(m.value for m in at.markdown), *(c.value for c in at.caption), *(e.value for e in at.error),
             *(s.value for s in at.success), *(w.value for w in at.warning), *(i.value for i in at.info),
             *(c.value for c in at.code), *(h.value for h in at.header), *(h.value for h in at.subheader)]
    tables = " ".join(table(at, n).to_string() for n in range(len(at.table)))
    return shown(" ".join(parts) + " " + tables).replace("**", "").replace("`", "")


def table(at: AppTest, n: int) -> pd.DataFrame:
    """The n-th st.table as a reader sees it (lib.core.content.markdown_literal's escapes removed)."""
    frame = at.table[n].value.map(shown)
    frame.index = [shown(i) for i in frame.index]
    frame.columns = [shown(c) for c in frame.columns]
    return frame


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    # The only errors a chapter shows on purpose: the seed's refused payload and the rule it breaks.
    assert all(shown(e.value).startswith(("Invalid payload", "chars/4 said")) for e in at.error), \
        [e.value for e in at.error]
    return at


def next_chapter(at: AppTest, expected: int) -> AppTest:
    click(at, "lesson_next")
    assert CHAPTERS[expected].title in text(at)
    return at


def test_the_lesson_is_first_in_the_navigation_and_opens_on_chapter_one(monkeypatch):
    import app

    assert app.PAGES[0][0] == PAGE and app.DEFAULT_PAGE == "pages/chat.py"
    at = lesson(monkeypatch)
    page = text(at)
    assert CHAPTERS[0].title in page and "Chapter 1 of 6" in page
    assert all(len(c.text.split()) <= 120 for c in CHAPTERS)  # short enough to read aloud in a class


def test_chapter_one_runs_the_seeds_three_turns_and_shows_the_payloads_growing(monkeypatch):
    at = click(lesson(monkeypatch), "lesson_run_turns")
    tables = [table(at, n) for n in range(len(at.table))]
    assert len(tables) == 3
    assert [list(t.index) for t in tables][-1] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [list(t["content"]) for t in tables] == [
        ["You are a helpful assistant.", "Hello"],
        ["You are a helpful assistant.", "Hello", "Hi!", "What's 2+2?"],
        ["You are a helpful assistant.", "Hello", "Hi!", "What's 2+2?", "4", "And 4+4?"]]
    page = text(at)
    assert "Turn 3 sends the system prompt and Hello, Hi!, What's 2+2?, 4, And 4+4?" in page
    assert "by the estimate (chars/4)" in page and "o200k_base" in page
    assert [step.text for step in SEED_TURNS] == ["Hello", "What's 2+2?", "And 4+4?"]


def test_chapter_two_restarts_the_memory_store_and_the_conversation_is_gone(monkeypatch):
    at = click(lesson(monkeypatch), "lesson_run_turns")
    next_chapter(at, 1)
    assert "6 messages" in text(at)
    click(at, "lesson_restart_memory")
    page = text(at)
    assert "Before the restart the MemoryStore held 6 messages" in page
    assert "with 0 messages and says the session does not exist" in page
    assert "The conversation is gone" in page


def test_chapter_three_without_redis_says_why_it_cannot_show_keys(monkeypatch):
    at = lesson(monkeypatch)
    at.session_state["lesson_chapter"] = 2
    at.run()
    assert "no Redis keys to show" in text(at)


@pytest.fixture
def redis_env(monkeypatch, valkey_server):
    prefix = f"lesson-{uuid.uuid4().hex[:8]}"
    use_redis_store(monkeypatch, valkey_server.url, prefix)
    store = RedisStore(valkey_server.url, prefix=prefix)
    yield store
    for key in store.client.scan_iter(match=f"{prefix}:*"):
        store.client.delete(key)


def test_chapter_three_shows_the_real_keys_their_ttl_and_the_seeds_layout(redis_env):
    at = open_lesson()
    at.session_state["lesson_chapter"] = 2
    at.run()
    click(at, "lesson_run_store")
    sid = at.session_state["lesson_session"]
    assert [m["content"] for m in redis_env.get_history(sid)] == ["Hello", "Hi!", "What's 2+2?", "4", "And 4+4?", "8"]
    keys = table(at, 0)
    assert f"{redis_env.prefix}:{{{sid}}}:messages" in list(keys.index)
    ttls = [int(t.replace(",", "")) for t in keys["TTL (s)"]]
    assert all(0 < t <= 86_400 for t in ttls)
    page = text(at)
    assert f"GET session:{sid}" in page and f"SETEX session:{sid} 86400" in page
    writes = table(at, 1)
    seed = [int(v) for v in writes["seed: SETEX of the whole history (bytes)"]]
    ours = [int(v) for v in writes["this store: appended JSON (bytes)"]]
    assert seed == sorted(seed) and seed[-1] > seed[0]  # the seed rewrites the growing history every turn
    assert '"role": "user"' in page or '"role":"user"' in page  # the stored JSON, as stored
    assert len(ours) == 3
    click(at, "lesson_restart_redis")
    assert "read 6 messages" in text(at) and "survived" in text(at)


def test_chapter_four_shows_working_curl_lines_and_calls_the_routes(redis_env):
    at = open_lesson()
    at.session_state["lesson_chapter"] = 3
    at.run()
    click(at, "lesson_run_routes")
    sid = at.session_state["lesson_session"]
    lines = at.code[0].value
    assert "curl -s -H 'Content-Type: application/json' http://localhost:8501/api/chat -d '{\"message\": \"Hello\"}'" \
        in lines
    assert f'"sessionId": "{sid}", "message": "And 4+4?"' in lines
    assert f"-X DELETE http://localhost:8501/api/chat/{sid}" in lines
    click(at, "lesson_post")
    assert "POST /api/chat → HTTP 200" in text(at) and '"reply": "16"' in at.code[-1].value
    assert redis_env.get_history(sid)[-1]["content"] == "16"
    click(at, "lesson_delete")
    assert "→ HTTP 200" in text(at) and "Session cleared" in at.code[-1].value
    assert redis_env.get_history(sid) == []


def test_chapter_five_shows_the_seeds_arithmetic_the_better_strategies_and_the_forgetting(monkeypatch):
    at = lesson(monkeypatch)
    at.session_state["lesson_chapter"] = 4
    at.run()
    page = text(at)
    assert "chars/4 said 14 ≤ 15, so the seed sent it; exact count 44; the API refuses it" in page
    trimmed = table(at, 0)
    assert list(trimmed["trimHistory"]) == ["kept", "removed", "kept", "kept", "kept", "kept"]
    assert "Invalid payload: The payload starts with an assistant message" in page
    assert "Rule: the first message after the system prompt must be a user message" in page
    better = table(at, 1)
    assert set(better.index) == {"Whole turns (safe)", "Whole turns, cache-friendly", "Summarise old turns"}
    assert all(v.startswith("yes") for v in better["valid"])
    click(at, "lesson_forget")
    steps = table(at, len(at.table) - 1)
    assert steps["a message holding the fact was sent"].iloc[0] == "yes"
    assert steps["a message holding the fact was sent"].iloc[-1] == "no"
    answer = at.chat_message[-1]
    assert shown(answer.markdown[0].value).startswith(FORGOTTEN_ANSWER)
    assert REPORT_LABEL in shown(" ".join(c.value for c in answer.caption))


def test_chapter_six_compares_manual_and_server_side_history_offline(monkeypatch):
    at = lesson(monkeypatch)
    at.session_state["lesson_chapter"] = 5
    at.run()
    page = text(at)
    assert "SIMULATED offline" in page
    frame = table(at, 0)
    assert {"re-send: turns", "server: previous_response_id"} <= set(frame.index)
    assert "every earlier input token is still billed" in page
    click(at, "lesson_to_chat")  # the last chapter's Next opens the Chat
    assert at.chat_input(key="chat_input") is not None
