"""'You choose' and tool definitions in a real browser: a turn left out under its message is never sent again
(the model says it can no longer see it), and the tool toggle puts a tools block and badge into the timeline.

Screenshot: chat-choice.
"""

from __future__ import annotations

import pytest

from lib.core import read_turns
from lib.providers import FORGOTTEN_ANSWER
from tests.support.browser import app_store, messages, open_app, send, session_in_url, shoot, wait_idle

pytestmark = pytest.mark.e2e


def test_leave_out_a_turn_and_send_tools_in_the_browser(page, app):
    open_app(page, app)
    page.get_by_test_id("stSidebar").get_by_text("Send tool definitions").click()
    wait_idle(page)
    for text in ("The code word is pelican.", "Second question", "Third question"):
        send(page, text)
    page.get_by_text("Leave out: never send").first.click()
    wait_idle(page)
    send(page, "What was the code word?")
    shown = messages(page)
    assert FORGOTTEN_ANSWER in shown[-1] and "3 tool definitions" in shown[-1]
    assert page.get_by_text("left out by you: not sent in the newest payload").count() >= 1
    text = " ".join(page.locator("[data-testid='stChatMessage']").all_inner_texts())
    assert "left out by you: 2 messages never sent" in text and "3 tool definitions sent" in text
    record = read_turns(app_store(app).get_turns(session_in_url(page)))[-1]
    assert record.left_out and record.tool_names == ("get_weather", "search_web", "calculator")
    shoot(page, "chat-choice")
