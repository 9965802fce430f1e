"""The chat in a real browser: the first minute ("Play the example"), the seed strategy rejected by the
offline model, and the prompt cache broken by "turns" and kept by "cache-aware".

Fixtures (browser, app, page) and helpers live in tests/support/browser.py. Screenshots: chat, chat-timeline,
chat-badges, chat-trimmed.
"""

from __future__ import annotations

import pytest

from lib.chat import SEED_TURNS, SMALL_BUDGET
from lib.core import read_turns
from lib.providers import FORGOT_PHRASE, FORGOTTEN_ANSWER, REPORT_LABEL
from tests.support.browser import (
    app_store,
    choose,
    message_bodies,
    messages,
    open_app,
    send,
    session_in_url,
    set_budget,
    shoot,
    wait_idle,
)

pytestmark = pytest.mark.e2e
FINISHED = "Example finished"
SENTENCE = "tell me about the analytical engine and its punched cards, in detail please. "


def badge_texts(page) -> str:
    return " ".join(page.locator("[data-testid='stChatMessage']").all_inner_texts())


def test_play_the_example_fills_the_timeline_and_the_model_forgets(page, app):
    page.set_viewport_size({"width": 1440, "height": 900})
    open_app(page, app)
    # The budget is visible without scrolling at 1440x900.
    slider = page.get_by_test_id("stSidebar").get_by_role("slider").first
    box = slider.bounding_box()
    assert box is not None and box["y"] + box["height"] < 900
    page.get_by_role("button", name="Play the example").click()
    page.get_by_text(FINISHED).wait_for(timeout=120_000)
    wait_idle(page)
    shown = messages(page)
    users = shown[::2]
    for user, step in zip(users, SEED_TURNS, strict=False):
        assert step.text in user
    # The answer, then the model's report under it (labelled, and never part of the reply that is re-sent).
    assert FORGOTTEN_ANSWER in shown[-1] and FORGOT_PHRASE in shown[-1] and REPORT_LABEL in shown[-1]
    assert message_bodies(page)[1] == "Hi!" and message_bodies(page)[3] == "4" and message_bodies(page)[5] == "8"
    # The timeline's turn picker lists every turn of the example; the newest is chosen.
    turns = len(users)
    assert page.get_by_text(f"Turn {turns}", exact=True).count() >= 1
    page.locator("[data-testid='stVegaLiteChart']").first.scroll_into_view_if_needed()
    page.wait_for_selector("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg",
                           timeout=60_000)
    text = badge_texts(page)
    assert "sent 2 (system prompt included)" in text  # turn 1
    assert "trimmed" in text and "dropped" in text
    assert "µ$" in text and "running total" in text
    assert page.get_by_text("Running total:").count() >= 1
    assert page.get_by_text("Context window starts here").count() == 1
    sid = session_in_url(page)
    records = read_turns(app_store(app).get_turns(sid))
    assert len(records) == turns and records[-1].budget == SMALL_BUDGET and records[-1].dropped_count > 0
    shoot(page, "chat")
    page.get_by_text("Payload timeline").scroll_into_view_if_needed()
    shoot(page, "chat-timeline")
    page.get_by_text("Context window starts here").scroll_into_view_if_needed()
    shoot(page, "chat-trimmed")


def test_seed_strategy_at_budget_200_is_rejected_with_a_badge_and_a_failed_turn(page, app):
    open_app(page, app)
    choose(page, "Strategy", "Tutorial's trimHistory (naive) (seed)")
    set_budget(page, 200)
    rejected = None
    for n in range(8):  # messages of varied length: the seed's chars/4 guess then misses the exact count
        send(page, f"Message {n}: " + SENTENCE * (1 + n % 3))
        if page.get_by_text("rejected:").count():
            rejected = n
            break
    assert rejected is not None, "the offline model never rejected a seed payload at budget 200"
    text = badge_texts(page)
    # The seed's arithmetic beside the truth, in the chat: what chars/4 said, the exact count, the refusal.
    assert "rejected:" in text and "so the seed sent it; exact count" in text and "the API refuses it" in text
    sid = session_in_url(page)
    records = read_turns(app_store(app).get_turns(sid))
    failed = [r for r in records if r.failed]
    assert failed and failed[-1].strategy == "seed" and failed[-1].error and failed[-1].problems
    assert failed[-1].assistant_id is None
    assert app_store(app).get_history(sid)[-1]["role"] == "user"  # the message stayed stored
    page.get_by_text("rejected:").first.scroll_into_view_if_needed()
    shoot(page, "chat-badges")


def test_turns_breaks_the_cache_and_cache_aware_keeps_it(page, app):
    open_app(page, app)
    set_budget(page, 2_000)  # 2,000 tokens: payloads above OpenAI's 1,024-token cache minimum
    filler = " ".join("river stone" for _ in range(250))  # ~500 tokens per message, ~600 per turn
    for n in range(1, 6):
        send(page, f"Part {n}: {filler}")
    # From turn 4 the window is full: "turns" drops the oldest turn on every request.
    last = page.locator("[data-testid='stChatMessage']").last.inner_text()
    assert "cache broken (prefix changed at message 1)" in last and "dropped 0" not in last
    choose(page, "Strategy", "Whole turns, cache-friendly (cache-aware)")
    for n in range(6, 8):
        send(page, f"Part {n}: {filler}")
    sid = session_in_url(page)
    records = read_turns(app_store(app).get_turns(sid))
    assert [r.strategy for r in records] == ["turns"] * 5 + ["cache-aware"] * 2
    last = page.locator("[data-testid='stChatMessage']").last.inner_text()
    assert "cache kept" in last and "cached (simulated)" in last
