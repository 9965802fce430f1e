"""Compare in a real browser at 1280 px with the three major providers side by side: OpenAI, Anthropic and
Gemini, each through its real SDK, all pointed at the fake wire server. Screenshot: compare-providers.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.app_server import AppServer
from tests.support.browser import _shutdown_leftover_valkey, browser_page, open_app, shoot, wait_idle

pytestmark = pytest.mark.e2e
WIDTH = 1280
KEYS = {"OPENAI_API_KEY": "sk-test-e2e-openai-key", "ANTHROPIC_API_KEY": "sk-ant-test-e2e-key",
        "GEMINI_API_KEY": "AIzaSyE2E-0123456789abcdefghijklmnopqrs"}



@pytest.fixture(scope="module")
def keyed_app(tmp_path_factory, fake) -> Iterator[AppServer]:
    data_dir = tmp_path_factory.mktemp("e2e-providers")
    server = AppServer(data_dir, data_dir / "streamlit.log", OPENAI_BASE_URL=fake.openai_url,
                       ANTHROPIC_BASE_URL=fake.anthropic_url, GEMINI_BASE_URL=fake.gemini_url,
                       PROVIDER_MAX_RETRIES="0", **KEYS)
    server.start()
    yield server
    server.stop()
    _shutdown_leftover_valkey(data_dir)


@pytest.fixture
def wide(browser, keyed_app):
    with browser_page(browser, width=WIDTH) as page:
        yield page


def pick(page, label: str, option: str) -> None:
    page.get_by_label(label).click()
    page.get_by_role("option", name=option).click()
    wait_idle(page)


def test_openai_anthropic_and_gemini_side_by_side_at_1280_px(wide, keyed_app, fake):
    page = wide
    open_app(page, keyed_app)
    page.get_by_test_id("stSidebarNav").get_by_text("Compare providers").click()
    wait_idle(page)
    slider = page.get_by_test_id("stSlider").filter(has_text="Configurations").get_by_role("slider")
    for _ in range(5):  # two configurations by default; one step right gives three
        if page.get_by_label("Column 3: provider").count():
            break
        slider.focus()
        slider.press("ArrowRight")
        wait_idle(page)
    pick(page, "Column 1: provider", "OpenAI (Chat Completions)")
    pick(page, "Column 2: provider", "Anthropic (Messages)")
    pick(page, "Column 3: provider", "Google (Gemini API)")
    page.get_by_label("New message").fill("Which provider keeps my history?")
    page.get_by_role("button", name="Send to all").click()
    page.wait_for_selector("text=How the requests differ", timeout=90_000)
    wait_idle(page)

    summary = page.get_by_test_id("stTable").first.inner_text()
    for column in ("1. openai / gpt-5.4-mini", "2. anthropic / claude-sonnet-5", "3. gemini / gemini-3.8-flash"):
        assert column in summary, summary[:400]
    assert "failed" not in summary and "None" not in summary
    assert "approximate (o200k_base stands in for gemini-3.8-flash)" in summary
    notes = page.get_by_text("Gemini generateContent", exact=False).first.inner_text()
    assert "systemInstruction" in notes or "roles user/model" in notes
    paths = [r["path"] for r in fake.requests]
    assert any(p.endswith("/chat/completions") for p in paths) and any(p.endswith("/messages") for p in paths)
    assert any(p.endswith("/models/gemini-3.8-flash:streamGenerateContent") for p in paths)
    text = page.locator("body").inner_text()
    assert all(key not in text for key in KEYS.values())
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"the page is {width} px wide at a {WIDTH} px viewport"
    page.get_by_text("Summary", exact=True).scroll_into_view_if_needed()
    shoot(page, "compare-providers")
