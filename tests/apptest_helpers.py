"""AppTest helpers shared by the page tests."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"


def open_app(page: str | None = None, *, session: str | None = None, timeout: float = 60) -> AppTest:
    """A fresh browser session on the app, optionally with ?session= and on ``page`` ("pages/x.py")."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    if session:
        at.query_params["session"] = session
    at.run()
    if page:
        at.switch_page(page).run()
    return at
