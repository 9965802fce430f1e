"""The Compare page in a real browser at 800 px: readable summary, one body at a time with its diff, named
continue buttons, and the History strategies tab. Screenshots: compare.png and compare-strategies.png."""

from __future__ import annotations

import pytest

from tests.support.browser import browser_page, go_to, open_app, send, shoot, wait_idle

pytestmark = pytest.mark.e2e
WIDTH = 800


@pytest.fixture
def narrow(browser, app):
    with browser_page(browser, width=WIDTH, height=1100) as page:
        yield page


def no_horizontal_overflow(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"the page is {width} px wide at a {WIDTH} px viewport"


def fully_visible(page, text: str) -> None:
    """The element holding ``text`` is on screen horizontally and not cut off by its own box."""
    element = page.get_by_text(text, exact=True).first
    box = element.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, (text, box)
    assert element.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), f"{text!r} is cut off"


def provider_shown(page, column: int) -> str:
    box = page.get_by_test_id("stSelectbox").filter(has_text=f"Column {column}: provider")
    return box.evaluate("e => e.innerText + ' ' + [...e.querySelectorAll('input')].map(i => i.value).join(' ')")


def test_compare_page_reads_at_800_px(narrow, app):
    page = narrow
    open_app(page, app)
    send(page, "Compare this conversation, please.")
    go_to(page, "Compare providers")
    wait_idle(page)
    for label in ("Column 1: provider", "Column 2: model", "Configurations"):
        fully_visible(page, label)
    page.get_by_label("New message").fill("Which reply is shorter?")
    page.get_by_role("button", name="Send to all").click()
    page.wait_for_selector("text=How the requests differ", timeout=60_000)
    wait_idle(page)

    table = page.get_by_test_id("stTable").first
    text = table.inner_text()
    assert "time to first token (s)" in text and "cost (µ$, millionths of a US$)" in text
    assert "None" not in text and "approximate (o200k_base stands in for offline-teacher)" in text
    for n in (2, 1):  # the replies sit in tabs, one per column
        page.get_by_role("tab", name=f"Column {n}", exact=True).click()
        button = page.get_by_role("button", name=f"Continue with column {n} (offline / offline-teacher)")
        button.wait_for(state="visible", timeout=10_000)
        assert button.count() == 1
    assert page.get_by_text("What column 2 changes against column 1").count() == 1
    page.get_by_role("tab", name="Diff against column 1").click()
    page.wait_for_timeout(300)
    no_horizontal_overflow(page)
    assert table.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    page.get_by_text("Summary", exact=True).scroll_into_view_if_needed()
    shoot(page, "compare")

    page.get_by_role("tab", name="History strategies").click()
    page.wait_for_selector("text=simulated: what the Responses API would bill", timeout=60_000)
    assert "turns 1–2 visible" in page.get_by_test_id("stTable").filter(has_text="could see").inner_text()
    page.get_by_text("The bundled demo conversation").click()  # long enough for trimming and summaries
    wait_idle(page)
    text = page.get_by_test_id("stTable").filter(has_text="tokens billed (input)").inner_text()
    for row in ("re-send: turns", "re-send: summary", "server: previous_response_id", "server: compaction"):
        assert row in text, row
    seen = page.get_by_test_id("stTable").filter(has_text="what the model could see")
    assert "in a summary" in seen.inner_text() and "None" not in text
    for table in page.get_by_test_id("stTable").all():  # nothing hidden behind a table's own scroll bar
        assert table.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), table.inner_text()[:200]
    no_horizontal_overflow(page)
    page.get_by_text("Conversation", exact=True).scroll_into_view_if_needed()
    shoot(page, "compare-strategies")


def test_configurations_survive_a_visit_to_another_page(narrow, app):
    page = narrow
    open_app(page, app)
    go_to(page, "Compare providers")
    wait_idle(page)
    page.get_by_label("Column 2: provider").click()
    page.get_by_role("option", name="OpenAI (Responses, server-side history)").click()
    wait_idle(page)
    assert "OpenAI (Responses" in provider_shown(page, 2)
    go_to(page, "Chat")
    wait_idle(page)
    go_to(page, "Compare providers")
    wait_idle(page)
    assert "OpenAI (Responses" in provider_shown(page, 2)
