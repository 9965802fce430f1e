"""End to end in a real browser: Debian's Chromium driven by Playwright against `streamlit run app.py`.

The app runs on a free loopback port with a private embedded Valkey (its own data dir) and the offline
model. The screenshots in docs/ come from these tests. Under CI=true a missing browser fails the run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from lib.providers import FORGOT_PHRASE
from lib.sessions.embedded import socket_path_for
from tests.app_server import ROOT, AppServer
from tests.ci import require

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = ROOT / "docs" / "screenshots"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"

pytestmark = pytest.mark.e2e


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


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def _shutdown_leftover_valkey(data_dir: Path) -> None:
    # The app stops its embedded server at exit; this only cleans up if that ever failed.
    try:
        redis.Redis(unix_socket_path=str(socket_path_for(data_dir.resolve())), socket_timeout=2).shutdown(nosave=True)
    except (redis.RedisError, OSError):
        pass


def wait_idle(page) -> None:
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_timeout(300)  # let a rerun triggered by the last action start
    page.wait_for_selector(IDLE, timeout=60_000)


def open_app(page, app: AppServer, query: str = "") -> None:
    page.goto(f"{app.url}/{query}")
    wait_idle(page)


def send(page, text: str) -> None:
    before = page.locator("[data-testid='stChatMessage']").count()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function(
        f"document.querySelectorAll(\"[data-testid='stChatMessage']\").length >= {before + 2}", timeout=60_000
    )
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


def test_chat_survives_reload_and_server_restart(page, app):
    open_app(page, app)
    questions = ["What is a context window?", "Why is the history re-sent?", "What does trimming do?"]
    for question in questions:
        send(page, question)
    shown = messages(page)
    assert len(shown) == 6
    for n, question in enumerate(questions):
        assert question in shown[2 * n]
        assert f"I received {2 * n + 2} messages" in shown[2 * n + 1]  # with the system prompt
    sid = session_in_url(page)
    page.get_by_text("What was sent this turn").first.click()
    page.wait_for_timeout(300)
    shoot(page, "chat")

    page.reload()
    wait_idle(page)
    assert session_in_url(page) == sid
    assert messages(page) == shown

    app.stop()
    app.start()
    open_app(page, app, f"?session={sid}")
    assert messages(page) == shown


def test_small_budget_trims_and_the_model_forgets(page, app):
    open_app(page, app)
    slider = page.get_by_test_id("stSidebar").get_by_role("slider").first
    slider.focus()
    slider.press("Home")  # the smallest budget preset
    wait_idle(page)
    send(page, "My name is Ada and my first program computed Bernoulli numbers.")
    for n in range(5):
        send(page, f"Tell me one more thing about the analytical engine, part {n}.")
        if FORGOT_PHRASE in messages(page)[-1]:
            break
    assert FORGOT_PHRASE in messages(page)[-1]
    assert page.get_by_text("not sent in the last payload").count() >= 1
    shoot(page, "chat-trimmed")


def test_inspector_charts_render_for_the_session(page, app):
    open_app(page, app)
    for question in ("One", "Two", "Three"):
        send(page, question)
    sid = session_in_url(page)
    page.get_by_test_id("stSidebarNav").get_by_text("Token inspector").click()
    wait_idle(page)
    page.wait_for_selector("[data-testid='stVegaLiteChart']")
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 2
    assert session_in_url(page) == sid
    assert page.get_by_text(re.compile(r"^3 turns · model")).first.is_visible()
    page.get_by_role("button", name="Load demo conversation").click()
    wait_idle(page)
    page.wait_for_selector("text=31 turns · model")
    demo = session_in_url(page)
    assert demo != sid
    page.reload()
    wait_idle(page)
    page.wait_for_selector("text=31 turns · model")  # the demo is now this browser's session
    page.get_by_test_id("stSidebar").get_by_text(demo).first.wait_for(timeout=30_000)
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 3
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
    assert page.get_by_text("I received 4 messages").count() == 2  # both columns got the re-sent history
    shoot(page, "compare")

    page.get_by_test_id("stSidebarNav").get_by_text("Sessions").click()
    wait_idle(page)
    page.wait_for_selector("[data-testid='stDataFrame']")
    assert page.get_by_role("button", name="Export JSON").count() == 1
    shoot(page, "sessions")
