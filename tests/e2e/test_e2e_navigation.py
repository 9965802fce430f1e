"""Deep links in a real browser: every page's own URL opens that page under the app's navigation.

The page scripts sit in pages/, next to app.py, a folder Streamlit also reads as an old-style multipage app
(one entry per file name, each script run on its own). The app must never show that: not even to the first
visitor of a freshly started server whose first request is a deep link, which is why this module's server
(the module-scoped ``app`` fixture) serves no other test and the root page is opened last.
"""

from __future__ import annotations

import re

import pytest

from tests.support.browser import browser_page, wait_idle

pytestmark = pytest.mark.e2e

# url path -> the page's h1. The Chat is the default page, at "/".
DEEP_LINKS = {
    "lesson": "Lesson: how a chat keeps its history",
    "inspector": "Token inspector",
    "compare": "Compare",
    "sessions": "Sessions",
    "": "Chat",
}
# The navigation app.py declares, in its order.
NAVIGATION = ["Lesson", "Chat", "Token inspector", "Compare providers", "Sessions"]


def _nav_labels(page) -> list[str]:
    # Each entry is drawn as its icon and its label; the label is the last line.
    links = page.get_by_test_id("stSidebarNav").locator("a").all_inner_texts()
    return [text.strip().splitlines()[-1].strip() for text in links]


def test_every_page_opens_from_its_own_url_under_the_apps_navigation(browser, app):
    for url_path, heading in DEEP_LINKS.items():
        with browser_page(browser) as page:  # a new visitor each time: nothing carried over from the last page
            page.goto(f"{app.url}/{url_path}")
            wait_idle(page)
            assert re.match(rf"{re.escape(app.url)}/{re.escape(url_path)}(\?|$)", page.url), (url_path, page.url)
            headings = page.locator("h1").all_inner_texts()
            assert headings and headings[0].endswith(heading), (url_path, headings)
            # The navigation is app.py's, not one entry per file in pages/ ("app", "chat", "inspector", ...).
            assert _nav_labels(page) == NAVIGATION, url_path
            # app.py ran (its page config), rather than the page's script on its own (titled by its file name).
            assert page.title() == "History Lab", url_path
            assert page.get_by_text("Page not found").count() == 0, url_path
