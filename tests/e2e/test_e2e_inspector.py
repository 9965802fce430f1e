"""The token inspector in a real browser: the demo's messages table and charts, and the token view.

Fixtures (browser, app, page) and helpers live in tests/support/browser.py.
"""

from __future__ import annotations

import pytest

from lib.tokens import PRESETS, count_text
from tests.support.browser import open_app, session_in_url, shoot, wait_for_charts, wait_idle

pytestmark = pytest.mark.e2e


def open_inspector_with_demo(page, app) -> None:
    open_app(page, app)
    page.get_by_test_id("stSidebarNav").get_by_text("Token inspector").click()
    wait_idle(page)
    page.get_by_role("button", name="Load demo conversation").click()
    wait_idle(page)
    page.wait_for_selector("text=31 turns · ")


def test_messages_table_and_charts_on_the_demo(page, app):
    open_inspector_with_demo(page, app)
    demo = session_in_url(page)
    picker = page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first
    inputs = picker.locator("input")
    shown = (picker.text_content() or "") + (inputs.first.input_value() if inputs.count() else "")
    assert demo in shown, shown  # the session picker follows the demo it loaded
    wait_for_charts(page, 5)
    heading = page.get_by_role("heading", name="Messages")
    heading.scroll_into_view_if_needed()
    heading.scroll_into_view_if_needed()
    # The grid draws its cells on a canvas (column names are checked under AppTest); here: tall enough to read.
    grids = page.locator("[data-testid='stDataFrame']")
    heights = [(grids.nth(i).bounding_box() or {}).get("height", 0) for i in range(grids.count())]
    assert max(heights) >= 500, heights
    page.get_by_text("Per turn: estimate, exact").scroll_into_view_if_needed()
    shoot(page, "inspector")


def test_token_view_shades_tokens_and_labels_counts(page, app):
    open_app(page, app)
    page.get_by_test_id("stSidebarNav").get_by_text("Token inspector").click()
    wait_idle(page)
    page.get_by_role("tab", name="Token view").click()
    page.get_by_role("button", name="Chinese", exact=True).click()
    wait_idle(page)
    text = PRESETS["Chinese"]
    page.get_by_text(f"exact (tiktoken, cl100k_base): {count_text(text, 'cl100k_base'):,}").first.wait_for()
    shaded = page.locator("[data-testid='stHtml'] span[title^='token ']")
    assert shaded.count() == count_text(text, "o200k_base")
    box = page.get_by_role("textbox", name="Text to tokenize")
    box.fill("Hello, world! 你好")
    box.press("Control+Enter")
    wait_idle(page)
    page.get_by_text(f"exact (tiktoken, o200k_base): {count_text('Hello, world! 你好', 'o200k_base')}").first.wait_for()
    page.get_by_role("button", name="Japanese", exact=True).click()
    wait_idle(page)
    page.get_by_role("tab", name="Token view").scroll_into_view_if_needed()
    shoot(page, "inspector-tokens")
