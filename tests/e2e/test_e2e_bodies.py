"""In Chromium: an Anthropic turn and Responses turns in one session, against tests/support/fake_llm.py.

The body the timeline shows for each turn (and the inspector for the newest) is the JSON the fake server
received, and the turn whose history the server kept says so: "the server re-read", never "trimmed".
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.app_server import AppServer
from tests.support.browser import browser_page, choose, open_app, send, shoot, wait_idle

pytestmark = pytest.mark.e2e
KEY = "sk-e2e-BODIES0123456789"



@pytest.fixture(scope="module")
def wired(tmp_path_factory, fake) -> Iterator[AppServer]:
    """The app with OpenAI and Anthropic keys, both pointed at the fake wire server."""
    data_dir = tmp_path_factory.mktemp("e2e-bodies")
    server = AppServer(data_dir, data_dir / "streamlit.log", OPENAI_API_KEY=KEY, OPENAI_BASE_URL=fake.openai_url,
                       ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake.anthropic_url, PROVIDER_MAX_RETRIES="0")
    server.start()
    yield server
    server.stop()


def show_turn(page, turn: int) -> None:
    page.get_by_role("combobox", name="Show the request of turn").click()
    page.get_by_role("option", name=f"Turn {turn}", exact=True).click()
    wait_idle(page)


def shown_body(page) -> dict:
    """The one JSON request body drawn on the page (a code block whose text parses as a body)."""
    bodies = []
    for text in page.locator("[data-testid='stCode'] code").all_inner_texts():
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict) and "model" in value:
            bodies.append(value)
    assert len(bodies) == 1, bodies
    return bodies[0]


def turn_panel(page) -> str:
    """The text of the timeline's turn section: from its "Turn N ·" heading to the body."""
    return page.locator("[data-testid='stMain']").inner_text()


def test_shown_bodies_are_the_received_ones_and_the_server_kept_turn_is_not_trimmed(browser, wired, fake):
    with browser_page(browser) as page:
        open_app(page, wired)
        choose(page, "Provider", "Anthropic (Messages)")
        send(page, "Hello, Claude.")
        choose(page, "Provider", "OpenAI (Responses, server-side history)")
        send(page, "Hello, Responses.")
        send(page, "Which of you answered first?")
        received = [r["body"] for r in fake.requests]
        assert [r["path"] for r in fake.requests] == ["/v1/messages", "/v1/responses", "/v1/responses"]
        assert received[0]["system"] and received[2]["previous_response_id"] and len(received[2]["input"]) == 1

        for turn in (1, 2, 3):
            show_turn(page, turn)
            assert shown_body(page) == received[turn - 1], f"turn {turn}"
        text = turn_panel(page)  # turn 3 is shown: its history was kept by the server
        assert "the server re-read 4" in text and "kept by the server" in text
        section = text[text.index("Turn 3 ·"):]
        assert "trimmed" not in section and "dropped" not in section.split("Exact request body")[0]
        shoot(page, "chat-server-kept")

        page.get_by_test_id("stSidebarNav").get_by_text("Token inspector").click()
        wait_idle(page)
        page.get_by_text("Request body of a turn").scroll_into_view_if_needed()
        assert shown_body(page) == received[2]  # the inspector opens the chat's session at its newest turn
