"""AppTest helpers shared by the page tests."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app.py"
_fresh = itertools.count()
_ESCAPED = re.compile(r"\\(.)", re.S)


def shown(markdown: object) -> str:
    """The text a reader sees for Markdown whose only syntax is backslash escapes and word joiners: what
    ``lib.core.content.markdown_literal`` makes of stored values, so tests can look for the words themselves."""
    return _ESCAPED.sub(r"\1", str(markdown)).replace("\u2060", "")


def open_app(page: str | None = None, *, session: str | None = None, timeout: float = 60) -> AppTest:
    """A fresh browser session on the app, optionally with ?session= and on ``page`` ("pages/x.py")."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    if session:
        at.query_params["session"] = session
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def use_memory_store(monkeypatch, **env: str) -> None:
    """Point the app at a fresh MemoryStore and the instant offline model, with no keys or Redis.

    The store is cached per process by its settings; a TTL unique to this test gives a fresh one.
    """
    monkeypatch.setenv("HISTORY_LAB_STORE", "memory")
    monkeypatch.setenv("SESSION_TTL", str(10_000 + next(_fresh)))
    monkeypatch.setenv("OFFLINE_DELAY", "0")
    for name in ("REDIS_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                 "DEFAULT_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


REDIS_SCRUBBED = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_COMPATIBLE_API_KEY", "DEFAULT_PROVIDER",
                  "HISTORY_LAB_STORE", "REDIS_CLUSTER", "TOKEN_BUDGET")


def use_redis_store(monkeypatch, url: str, prefix: str) -> None:
    """Point the app at the Valkey at ``url`` under a private key ``prefix``, with the instant offline model."""
    for name in REDIS_SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("REDIS_PREFIX", prefix)
    monkeypatch.setenv("OFFLINE_DELAY", "0")
