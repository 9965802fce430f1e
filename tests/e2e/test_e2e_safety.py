"""In a real browser, untrusted message content and stored values load nothing: a local HTTP server on
127.0.0.1 counts the requests that Markdown images, reference images, raw <img> HTML and KaTeX graphics
would make, and those of images in a turn record's model name, error and response id, or in a link's id.

A control image rendered with plain ``st.markdown`` proves the counter works (the test can fail).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.app_server import ROOT, free_port
from tests.support.browser import app_store, messages, open_app, send, wait_idle
from tests.support.markdown_beacon import hostile_session, payloads

pytestmark = pytest.mark.e2e

# One transparent pixel, so a browser that does fetch an image gets a real one.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f9d0000000049454e44ae426082")


class Counter(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        assert isinstance(self.server, Counter)
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet test output
        pass


@pytest.fixture
def counter() -> Iterator[Counter]:
    server = Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def hostile(base: str) -> str:
    return "\n\n".join([
        f"Look ![x]({base}/p.png?d=secret) here.",
        f"Reference ![y][logo] and ![logo]\n\n[logo]: {base}/ref.png?d=secret",
        f'Raw <img src="{base}/html.png?d=secret"> HTML',
        f"KaTeX $\\includegraphics[height=1em]{{{base}/katex.png}}$",
        "Bidi: invoice\u202eexe.pdf",
    ])


def _settle(page, counter: Counter) -> list[str]:
    page.wait_for_timeout(1_500)  # let any lazy image request leave the browser
    return list(counter.paths)


PROBE = '''
import streamlit as st
from pages.ui.render import render_message_body
st.markdown(st.query_params["control"])  # unprotected: proves the counter sees image requests
render_message_body(st.query_params["text"], key="probe")
'''


@pytest.fixture
def probe_app(tmp_path) -> Iterator[str]:
    """A bare Streamlit app that renders its ?text= with pages.ui.render (no store, no provider)."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    port = free_port()
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    log = open(tmp_path / "probe.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, Path(log.name))
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"probe app exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("probe app did not become healthy")


def test_render_message_body_fetches_nothing_in_a_browser(page, counter, probe_app):
    from urllib.parse import urlencode

    query = urlencode({"control": f"![c]({counter.base}/control.png)", "text": hostile(counter.base)})
    page.goto(f"{probe_app}/?{query}")
    wait_idle(page)
    page.get_by_role("tab", name="Raw").click()
    paths = _settle(page, counter)
    assert paths == ["/control.png"], paths  # the control image loads; nothing from the message does
    raw = page.locator("[data-testid='stCode']").inner_text()
    assert "⟪U+202E⟫" in raw and "\u202e" not in raw
    page.get_by_role("tab", name="Rendered").click()
    rendered = page.locator("[data-testid='stMarkdown']").nth(1).inner_text()
    assert "⟪U+202E⟫" in rendered
    assert "<img" in rendered  # raw HTML is shown as text, not parsed


def test_chat_page_fetches_nothing_for_a_hostile_message(page, app, counter):
    """Sent as a user message with the offline model, which quotes the current message in its reply."""
    open_app(page, app)
    send(page, hostile(counter.base))
    shown = messages(page)
    assert len(shown) >= 2 and "secret" in shown[-2]
    page.reload()
    wait_idle(page)
    assert _settle(page, counter) == []
    assert page.locator("[data-testid='stChatMessage'] img[src*='127.0.0.1']").count() == 0


def test_stored_records_and_a_bad_session_link_load_nothing(page, app, counter):
    """The inspector and the chat (its timeline included) print model names, errors and response ids that
    hold images, plain, after a newline and breaking out of backticks; a ?session= link holds one too."""
    from urllib.parse import quote

    open_app(page, app)  # the app starts its embedded store on the first page load
    store = app_store(app)
    captions: list[str] = []
    for payload in payloads(counter.base):
        sid = hostile_session(store, payload)
        open_app(page, app, f"inspector?session={sid}")
        _settle(page, counter)
        captions.append(page.locator("[data-testid='stCaptionContainer']", has_text=" turns · ").first.inner_text())
        open_app(page, app, f"?session={sid}")
        page.get_by_text("no reply to this message").first.wait_for()
        _settle(page, counter)
    open_app(page, app, f"?session={quote(f'![m]({counter.base}/sid.png)')}")
    assert page.get_by_text("session id is not valid").count()
    assert _settle(page, counter) == []
    host = f"127.0.0.1:{counter.server_address[1]}"
    assert all(host in caption for caption in captions), captions  # the model name is shown, as text
