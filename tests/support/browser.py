"""Browser test plumbing shared by every end-to-end test module (a pytest plugin, see conftest.py).

Debian's Chromium driven by Playwright against `streamlit run app.py` on a free loopback port, with a private
embedded Valkey (its own data dir) and the offline model. Under CI=true a missing browser fails the run.

Screenshots go to a temporary folder, so a test run never rewrites tracked files. Set
HISTORY_LAB_REFRESH_SCREENSHOTS=1 to write them to docs/screenshots/ for the README.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from lib.sessions import socket_path_for
from tests.support.app_server import ROOT, AppServer
from tests.support.ci import require

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]
REFRESH = os.environ.get("HISTORY_LAB_REFRESH_SCREENSHOTS", "") == "1"
SHOTS = ROOT / "docs" / "screenshots" if REFRESH else Path(tempfile.gettempdir()) / "history-lab-screenshots"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    require(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[AppServer]:
    data_dir = tmp_path_factory.mktemp("e2e-data")
    server = AppServer(data_dir, data_dir / "streamlit.log")
    server.start()
    yield server
    server.stop()
    _shutdown_leftover_valkey(data_dir)


@contextlib.contextmanager
def browser_page(browser, *, width: int = 1400, height: int = 1000, timeout_ms: int = 30_000) -> Iterator[Any]:
    """A page in a fresh browser context of the given window size, closed afterwards."""
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser, app):
    with browser_page(browser) as page:
        yield page


def _shutdown_leftover_valkey(data_dir: Path) -> None:
    # The app stops its embedded server at exit; this only cleans up if that ever failed.
    try:
        redis.Redis(unix_socket_path=str(socket_path_for(data_dir.resolve())), socket_timeout=2).shutdown(nosave=True)
    except (redis.RedisError, OSError):
        pass


def wait_idle(page) -> None:
    """Until the script has stayed idle for 300 ms: a run may start right after another ends (the chat's
    typed turn is a fragment run followed by a rerun of the whole page)."""
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_timeout(300)  # let a rerun triggered by the last action start
    for _ in range(200):  # bounded: 200 settles of at least 300 ms
        page.wait_for_selector(IDLE, timeout=60_000)
        page.wait_for_timeout(300)
        if page.locator(IDLE).count():
            return
    raise AssertionError("the app never stayed idle for 300 ms")


def open_app(page, app: AppServer, query: str = "") -> None:
    page.goto(f"{app.url}/{query}")
    wait_idle(page)


# The turn has ended: a reply is drawn under the new message, or the new message is a failed turn, which the
# page's full rerun draws with "no reply to this message" under it and no reply (pages/ui/chat_history.py).
TURN_ENDED = """before => {
  const shown = document.querySelectorAll("[data-testid='stChatMessage']");
  return shown.length >= before + 2
    || (shown.length >= before + 1 && shown[shown.length - 1].innerText.includes("no reply to this message"));
}"""


def send(page, text: str) -> None:
    before = page.locator("[data-testid='stChatMessage']").count()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function(TURN_ENDED, arg=before, timeout=60_000)
    wait_idle(page)


def messages(page) -> list[str]:
    return page.locator("[data-testid='stChatMessage'] [data-testid='stChatMessageContent']").all_inner_texts()


def session_in_url(page) -> str:
    match = re.search(r"[?&]session=([A-Za-z0-9_-]+)", page.url)
    assert match, page.url
    return match.group(1)


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


# -- chat helpers (sidebar controls, the app's own store) ------------------------------------------------------


def app_store(app: AppServer):
    """A RedisStore on the app's private embedded Valkey (default prefix), to check what the page stored."""
    from lib.sessions import RedisStore

    # From a URL, so the store builds its client as the app does (decoded replies included).
    return RedisStore(f"unix://{socket_path_for(app.data_dir.resolve())}", prefix="chat")


def set_budget(page, value: int) -> None:
    """Move the sidebar's budget slider to ``value`` (one of the presets), one key press per rerun.

    A ``value`` below the smallest preset (200) is read as the preset's index (0: 200, 2: 1,000), as
    callers written for the earlier, step-counting helper pass it.
    """
    slider = page.get_by_test_id("stSidebar").get_by_role("slider").first
    slider.focus()
    slider.press("Home")
    wait_idle(page)
    for step in range(20):
        text = (slider.get_attribute("aria-valuetext") or "").replace(",", "")
        if text == str(value) or (value < 200 and step == value):
            return
        slider.focus()
        slider.press("ArrowRight")
        wait_idle(page)
    raise AssertionError(f"the budget slider never reached {value:,}: {slider.get_attribute('aria-valuetext')}")


def settle_scroll(page) -> None:
    """Until the browser has delivered the scroll events of a scroll just made (they come with the next frame)."""
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the sidebar selectbox labelled ``label``, with one click on the box.

    The box is scrolled into view first and the scroll left to settle: a select list closes on a scroll, and
    Playwright's click scrolls and presses in the same frame, so on a box partly below the sidebar's fold
    (where a notice at the top of the sidebar can push the Model box) the scroll event arrived just after
    the press had opened the list, and closed it.
    """
    box = page.get_by_test_id("stSidebar").get_by_role("combobox", name=label)
    box.scroll_into_view_if_needed()
    settle_scroll(page)
    box.click()
    page.get_by_role("listbox").wait_for(timeout=5_000)
    page.get_by_role("option", name=option).click()
    wait_idle(page)


def message_bodies(page) -> list[str]:
    """The rendered body of every chat message (no captions, badges or buttons): the same before and after
    a reload, whereas the message drawn live also carries "What was sent this turn"."""
    return page.locator("[data-testid='stChatMessage']").evaluate_all(
        "els => els.map(e => (e.querySelector(\"[role='tabpanel'] [data-testid='stMarkdownContainer']\")"
        " || e.querySelector(\"[data-testid='stMarkdownContainer']\") || {innerText: ''}).innerText)")


def wait_for_charts(page, at_least: int) -> None:
    """Charts mount after the script is idle: wait until ``at_least`` are on the page instead of counting early."""
    page.wait_for_function(f"document.querySelectorAll(\"[data-testid='stVegaLiteChart']\").length >= {at_least}",
                           timeout=30_000)


def go_to(page, name: str) -> None:
    """Open a page through the sidebar's list, opening the sidebar first where a narrow window collapsed it."""
    nav = page.get_by_test_id("stSidebarNav")
    if not nav.is_visible():
        page.get_by_test_id("stExpandSidebarButton").click()
    nav.get_by_text(name, exact=True).click()
