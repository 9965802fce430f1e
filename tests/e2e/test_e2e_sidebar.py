"""The sidebar's provider switch in a real browser: one change is one script run, whose page already says
what changed since the session's last turn, and the Model box below it opens at the first click.

Script runs are counted on the wire: each run the browser asks for is one ``rerun_script`` message, and
each run the server makes ends with one ``script_finished`` message.
"""

from __future__ import annotations

from collections import Counter

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.support.browser import browser_page, choose, open_app, send, settle_scroll, wait_idle

pytestmark = pytest.mark.e2e

NOTICE = "Changed since this session's last turn"


class RunCounter:
    """Counts the reruns the page asks for and the script runs the server finishes, from the websocket."""

    def __init__(self, page) -> None:
        self.counts: Counter[str] = Counter()
        page.on("websocket", self._watch)

    def _watch(self, socket) -> None:
        socket.on("framesent", lambda frame: self._count(BackMsg(), frame, "sent"))
        socket.on("framereceived", lambda frame: self._count(ForwardMsg(), frame, "received"))

    def _count(self, message, frame: bytes | str, direction: str) -> None:
        if isinstance(frame, str):
            return  # Streamlit's messages are binary protobufs
        message.ParseFromString(frame)
        self.counts[f"{direction}:{message.WhichOneof('type')}"] += 1

    def reset(self) -> None:
        self.counts.clear()


def test_one_provider_change_is_one_run_that_shows_the_notice(browser, app):
    with browser_page(browser) as page:
        runs = RunCounter(page)
        open_app(page, app)
        send(page, "Hello")  # a turn, so the session has settings to differ from
        sidebar = page.get_by_test_id("stSidebar")
        assert sidebar.get_by_text(NOTICE).count() == 0

        runs.reset()
        choose(page, "Provider", "Anthropic (Messages) (not configured)")
        assert runs.counts["sent:rerun_script"] == 1, runs.counts
        assert runs.counts["received:script_finished"] == 1, runs.counts
        assert sidebar.get_by_text(f"{NOTICE}: provider, model.").is_visible()

        # The notice pushed the Model box down to the sidebar's fold: one click still opens its list.
        model = sidebar.get_by_role("combobox", name="Model")
        model.scroll_into_view_if_needed()
        settle_scroll(page)
        model.click()
        page.get_by_role("listbox").wait_for(timeout=5_000)
        page.keyboard.press("Escape")
        wait_idle(page)
