"""End to end in a real browser: chat, reload, restart, trimming, inspector, delete, compare and sessions.

The fixtures (browser, app, page) and helpers live in tests/support/browser.py.
"""

from __future__ import annotations

import re

import pytest

from lib.providers import FORGOT_PHRASE
from tests.support.browser import (
    message_bodies,
    messages,
    open_app,
    send,
    session_in_url,
    set_budget,
    shoot,
    wait_for_charts,
    wait_idle,
)

pytestmark = pytest.mark.e2e


def test_chat_survives_reload_and_server_restart(page, app):
    open_app(page, app)
    questions = ["What is a context window?", "Why is the history re-sent?", "What does trimming do?"]
    for question in questions:
        send(page, question)
    shown = messages(page)
    assert len(shown) == 6
    for n, question in enumerate(questions):
        assert question in shown[2 * n]
        assert f"I received {2 * n + 2} messages" in shown[2 * n + 1]  # the report under the reply
    sid = session_in_url(page)
    bodies = message_bodies(page)
    assert bodies[0] == questions[0]

    page.reload()
    wait_idle(page)
    assert session_in_url(page) == sid
    assert message_bodies(page) == bodies

    app.stop()
    app.start()
    open_app(page, app, f"?session={sid}")
    assert message_bodies(page) == bodies


def test_small_budget_trims_and_the_model_forgets(page, app):
    open_app(page, app)
    set_budget(page, 200)  # the smallest budget preset
    send(page, "My name is Ada and my first program computed Bernoulli numbers.")
    for n in range(12):
        send(page, f"Tell me one more thing about the analytical engine, part {n}.")
        if FORGOT_PHRASE in messages(page)[-1]:
            break
    assert FORGOT_PHRASE in messages(page)[-1]
    assert page.get_by_text("not sent in the newest payload").count() >= 1
    assert page.get_by_text("Context window starts here").count() == 1


def test_inspector_charts_render_for_the_session(page, app):
    open_app(page, app)
    for question in ("One", "Two", "Three"):
        send(page, question)
    sid = session_in_url(page)
    page.get_by_test_id("stSidebarNav").get_by_text("Token inspector").click()
    wait_idle(page)
    wait_for_charts(page, 2)
    assert session_in_url(page) == sid
    assert page.get_by_text(re.compile(r"^3 turns · ")).first.is_visible()
    page.get_by_role("button", name="Load demo conversation").click()
    wait_idle(page)
    page.wait_for_selector("text=31 turns · ")
    demo = session_in_url(page)
    assert demo != sid
    page.reload()
    wait_idle(page)
    page.wait_for_selector("text=31 turns · ")  # the demo is now this browser's session
    page.get_by_test_id("stSidebar").get_by_text(demo).first.wait_for(timeout=30_000)
    wait_for_charts(page, 3)
    page.get_by_text("Per turn: estimate, exact").scroll_into_view_if_needed()
    shoot(page, "inspector")


def test_delete_session(page, app):
    open_app(page, app)
    send(page, "Please forget me.")
    sid = session_in_url(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("button", name="Delete session").click()
    wait_idle(page)
    sidebar.get_by_role("button", name="Yes, delete").click()
    wait_idle(page)
    assert session_in_url(page) != sid
    assert messages(page) == []
    open_app(page, app, f"?session={sid}")
    assert messages(page) == []


def test_compare_and_sessions_pages(page, app):
    open_app(page, app)
    send(page, "Compare this conversation, please.")
    page.get_by_test_id("stSidebarNav").get_by_text("Compare providers").click()
    wait_idle(page)
    page.get_by_label("New message").fill("Which reply is shorter?")
    page.get_by_role("button", name="Send to all").click()
    page.wait_for_selector("text=How the requests differ", timeout=60_000)
    wait_idle(page)
    # Both columns got the re-sent history (the summary table reads "messages sent" from each request body).
    assert page.get_by_test_id("stTable").first.inner_text().count("4 messages") == 2
    shoot(page, "compare")

    page.get_by_test_id("stSidebarNav").get_by_text("Sessions").click()
    wait_idle(page)
    page.wait_for_selector("[data-testid='stDataFrame']")
    assert page.get_by_role("button", name="Export JSON").count() == 1
    shoot(page, "sessions")
