"""Usage in a real browser, against the fake wire server: an Anthropic turn shows its cache writes and what
"in" means, gpt-5.6 turns on the Responses API show why the cache missed, and the inspector labels each turn
by its own model.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.app_server import AppServer
from tests.support.browser import browser_page, choose, open_app, send, session_in_url, wait_idle

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def wired_app(tmp_path_factory, fake) -> Iterator[AppServer]:
    data_dir = tmp_path_factory.mktemp("e2e-usage")
    server = AppServer(data_dir, data_dir / "streamlit.log", ANTHROPIC_API_KEY="sk-ant-e2e", OPENAI_API_KEY="sk-e2e",
                       ANTHROPIC_BASE_URL=fake.anthropic_url, OPENAI_BASE_URL=fake.openai_url,
                       PROVIDER_MAX_RETRIES="0")
    server.start()
    yield server
    server.stop()


def last_message(page) -> str:
    return page.locator("[data-testid='stChatMessage']").last.inner_text()


def test_cache_writes_and_the_reason_a_cache_missed_are_shown(browser, wired_app, fake):
    with browser_page(browser) as page:
        open_app(page, wired_app)
        choose(page, "Provider", "Anthropic (Messages)")
        choose(page, "Model", "claude-sonnet-4-6")
        send(page, "Hello Claude")
        text = last_message(page)
        # Anthropic's input_tokens (10) exclude its 3 cache reads and 7 writes: "in" is their sum.
        assert "in 20 = 10 uncached + 3 cache read + 7 cache write (5m 5, 1h 2) · out 5 tokens" in text
        assert "cache hit: 3 of 20 input tokens read from the cache" in text
        choose(page, "Provider", "OpenAI (Responses, server-side history)")
        choose(page, "Model", "gpt-5.6-terra")
        send(page, "Hello GPT")
        send(page, "Again")
        text = last_message(page)
        assert "why the cache missed: the input changed (about 42 tokens not read from the cache)" in text
        assert "cache write (30m 4)" in text
        sid = session_in_url(page)
        requests = [r["body"] for r in fake.requests if r["path"].endswith("/responses")]
        assert requests[-1]["prompt_cache_options"]["ttl"] == "30m"
        assert requests[-1]["prompt_cache_options"]["comparison_response_id"]
        page.goto(f"{wired_app.url}/inspector?session={sid}")
        page.get_by_text("Tokens sent per turn").wait_for(timeout=60_000)
        wait_idle(page)
        body = page.locator("[data-testid='stApp']").inner_text()
        assert "turn 1: claude-sonnet-4-6 (anthropic), approximate (o200k_base stands in for claude-sonnet-4-6)" in body
        assert "gpt-5.6-terra (openai-responses)" in body
