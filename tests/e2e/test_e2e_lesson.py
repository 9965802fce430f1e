"""The Lesson in a real browser at 1280 px, chapter by chapter, with a screenshot of each (lesson-1 ... lesson-6).

Fixtures (browser, app, page) and helpers live in tests/support/browser.py; the app runs its embedded Valkey, so
chapter 3 shows real keys. Screenshots go to a temporary folder unless HISTORY_LAB_REFRESH_SCREENSHOTS=1.
"""

from __future__ import annotations

import pytest

from lib.chat import CHAPTERS
from lib.providers import FORGOTTEN_ANSWER
from tests.support.browser import app_store, open_app, shoot, wait_idle

pytestmark = pytest.mark.e2e


def body(page) -> str:
    return page.locator("[data-testid='stMain']").inner_text()


def press(page, name: str) -> None:
    page.get_by_role("button", name=name).first.click()
    wait_idle(page)


def chapter_on_top(page, n: int) -> None:
    page.get_by_role("heading", name=CHAPTERS[n].title).evaluate("el => el.scrollIntoView({block: 'start'})")


def next_chapter(page, n: int) -> None:
    press(page, f"Next: {CHAPTERS[n].title}")
    heading = page.get_by_role("heading", name=CHAPTERS[n].title)
    heading.wait_for()
    heading.evaluate("el => el.scrollIntoView({block: 'start'})")  # the chapter, not the page title, on top


def test_the_lesson_chapter_by_chapter(page, app):
    page.set_viewport_size({"width": 1280, "height": 900})
    open_app(page, app)
    # The Lesson is the first entry of the navigation.
    nav = page.get_by_test_id("stSidebarNav").inner_text()
    assert -1 < nav.find("Lesson") < nav.find("Chat"), nav
    page.get_by_test_id("stSidebarNav").get_by_text("Lesson").click()
    wait_idle(page)
    heading = page.get_by_role("heading", name=CHAPTERS[0].title)
    heading.wait_for()

    press(page, "Run the three turns")
    text = body(page)
    assert "Turn 3 sends the system prompt and Hello, Hi!, What's 2+2?, 4, And 4+4?" in text
    chapter_on_top(page, 0)
    shoot(page, "lesson-1-resending")

    next_chapter(page, 1)
    press(page, "Restart the server")
    assert "The conversation is gone" in body(page)
    chapter_on_top(page, 1)
    shoot(page, "lesson-2-memory")

    next_chapter(page, 2)
    press(page, "Store the three turns in Valkey")
    page.get_by_text("TTL (s)").first.wait_for()
    sid = page.evaluate("() => document.body.innerText.match(/session:([0-9a-f]{32})/)[1]")
    store = app_store(app)
    assert [m["content"] for m in store.get_history(sid)][:2] == ["Hello", "Hi!"]
    assert f"chat:{{{sid}}}:messages" in body(page)
    chapter_on_top(page, 2)
    shoot(page, "lesson-3-redis")
    press(page, "Restart the server (a new store object, the same Valkey)")
    assert "the conversation survived" in body(page)

    next_chapter(page, 3)
    assert f"/api/chat/{sid}" in body(page)
    press(page, "POST the next turn")
    assert "POST /api/chat → HTTP 200" in body(page)
    assert store.get_history(sid)[-1]["content"] == "16"
    chapter_on_top(page, 3)
    shoot(page, "lesson-4-routes")

    next_chapter(page, 4)
    assert "the API refuses it" in body(page) and "Rule: the first message after the system prompt" in body(page)
    press(page, "Play on: state a fact, fill the window, ask for it")
    chapter_on_top(page, 4)
    shoot(page, "lesson-5-trimming")
    answer = page.get_by_text(FORGOTTEN_ANSWER).first
    answer.wait_for()
    answer.evaluate("el => el.scrollIntoView({block: 'center'})")
    shoot(page, "lesson-5-forgetting")

    next_chapter(page, 5)
    assert "every earlier input token is still billed" in body(page)
    chapter_on_top(page, 5)
    shoot(page, "lesson-6-server-side")
    press(page, "Next: try it yourself in the Chat")
    page.get_by_test_id("stChatInput").wait_for()
