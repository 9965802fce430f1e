"""A compaction in a real browser with the offline model: strategy "summary" at a small budget.

Send turns until the payload fills; then the chat shows the marker "turns a–b compacted into a summary
(N tokens)", the summary can be opened, and the model's reply says it sees the summary (the offline model
recognises a message starting "Summary of turns a–b"). The stored record names the summary it sent.

Fixtures (browser, app, page) and helpers live in tests/support/browser.py.
"""

from __future__ import annotations

import re

import pytest

from lib.chat import TurnRequest, run_turn, session_summaries
from lib.core import read_turns
from lib.providers import get_provider
from tests.support.browser import app_store, messages, open_app, send, session_in_url, set_budget, shoot, wait_idle

pytestmark = pytest.mark.e2e
SUMMARY_OPTION = "Summarise old turns (summary)"  # STRATEGY_LABELS["summary"] as the sidebar shows it
MARKER = re.compile(r"turns 1–(\d+) compacted into a summary \(([\d,]+) tokens\)")
MAX_TURNS = 14  # bounded: at a 500-token budget the payload fills within about nine turns


def fact(n: int) -> str:
    return (f"Fact {n}: the code word for turn {n} is lantern{n}. Keep it in mind, together with the colour "
            f"of the boat, which is shade number {n * 7}.")


def choose_strategy(page, option: str) -> None:
    """Pick a strategy in the sidebar's selectbox (its combobox: the help button has the same label)."""
    page.get_by_test_id("stSidebar").get_by_role("combobox", name="Strategy").click()
    offered = page.get_by_role("option").all_inner_texts()
    assert option in offered, f"the sidebar offers {offered}, not {option!r}"
    page.get_by_role("option", name=option).click()
    wait_idle(page)


def chat_text(page) -> str:
    return " ".join(page.locator("[data-testid='stChatMessage']").all_inner_texts())


def test_a_compacted_session_shows_the_marker_and_the_model_says_it_sees_the_summary(page, app):
    """The session is written through lib.chat.conversation (as the page does), then opened in the browser."""
    open_app(page, app)  # the app starts its embedded Valkey on first use
    store, offline, sid = app_store(app), get_provider("offline", delay=0), None
    for n in range(1, MAX_TURNS + 1):
        result = run_turn(store, offline, TurnRequest(user_text=fact(n), session_id=sid, strategy="summary",
                                                      budget=500, system_prompt="Be brief."))
        sid = result.session_id
        if result.record.summary_new:
            break
    summary = result.summary
    assert summary is not None and result.record.summary_id == summary.id
    open_app(page, app, f"?session={sid}")
    span = f"turns 1–{summary.last_turn}"
    assert f"{span} compacted into a summary ({summary.tokens:,} tokens)" in chat_text(page)
    assert f"I can see a summary of {span}" in messages(page)[-1]


def test_summary_strategy_compacts_old_turns_and_the_model_says_it_sees_the_summary(page, app):
    open_app(page, app)
    choose_strategy(page, SUMMARY_OPTION)
    set_budget(page, 500)
    marker = None
    for n in range(1, MAX_TURNS + 1):
        send(page, fact(n))
        marker = MARKER.search(chat_text(page))
        if marker:
            break
    assert marker, f"no compaction marker after {MAX_TURNS} turns"
    last_turn = int(marker.group(1))
    reply = messages(page)[-1]
    assert f"I can see a summary of turns 1–{last_turn}" in reply

    sid = session_in_url(page)
    store = app_store(app)
    record = read_turns(store.get_turns(sid))[-1]
    assert record.strategy == "summary" and record.summary_new and record.summary_id == f"summary-1-{last_turn}"
    summary = session_summaries(store.get_meta(sid))[record.summary_id]
    assert marker.group(2) == f"{summary.tokens:,}"
    history_contents = [m["content"] for m in store.get_history(sid) if m["role"] == "user"]
    assert history_contents == [fact(k) for k in range(1, n + 1)]  # the stored history is unchanged

    # The summary opens: an expander labelled with its span shows the text that was sent.
    page.get_by_text(re.compile(rf"Summary of turns 1–{last_turn}")).first.click()
    wait_idle(page)
    first_line = summary.text.split("\n")[0]
    assert page.get_by_text(first_line[:40], exact=False).first.is_visible()
    shoot(page, "chat-compaction")
