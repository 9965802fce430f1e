"""Stored and user-supplied values reach Markdown only through lib.core.content.markdown_literal: a model name,
an error message or a response id shows as its text, and never becomes an image the browser fetches.

The page checks read every Markdown-rendered string of every element (bodies, labels, tooltips, tab and
expander labels) and look for the beacon's address as Markdown would read it: escaped, it cannot appear.
The browser test (tests/test_e2e_safety.py) counts the requests a real Chromium makes.
"""

from __future__ import annotations

import pytest

from lib.core import markdown_literal
from tests.support.apptest_helpers import open_app, shown, use_memory_store
from tests.support.markdown_beacon import hostile_session, markdown_strings, payloads

HOST = "127.0.0.1:9"
BASE = f"http://{HOST}"


@pytest.mark.parametrize("value", [
    *payloads(BASE), "plain gpt-4o-mini", "$5 and $6", "# heading", "1. list", "- item", "> quote",
    "<img src=x onerror=alert(1)>", "**bold** _it_ ~~s~~", "[link](http://h)", "<http://h>", "www.example.com",
    "a@b.example", ":red[red] :material/home: ", "a|b", "back\\slash", "tab\tand\r\nnewlines",
])
def test_a_literal_shows_its_text_on_one_line_and_opens_no_construct(value):
    literal = markdown_literal(value)
    assert "\n" not in literal and "\r" not in literal
    assert shown(literal) == " ".join(value.split())
    # Every punctuation character Markdown reads is escaped: no unescaped one is left.
    bare = literal.replace("\\\\", "")
    for special in "![]()<>`*_$#|~&:":
        assert all(bare[i - 1] == "\\" for i, c in enumerate(bare) if c == special), (special, literal)
    # Nor can GFM find a bare URL, www. address or e-mail address in the text it parses.
    assert "://" not in _without_escapes(literal) and "www." not in _without_escapes(literal).lower()
    assert "@" not in _without_escapes(literal).replace("@\u2060", "")


def _without_escapes(text: str) -> str:
    return text.replace("\\", "")


def test_a_literal_reveals_bidi_controls_and_can_be_cut():
    assert "⟪U\\+202E⟫" in markdown_literal("invoice\u202eexe.pdf")
    assert markdown_literal("x" * 50, limit=10) == "x" * 9 + "…"
    assert markdown_literal(None) == "" and markdown_literal(["a"]) == "\\[ \"a\" \\]"


# -- pages ---------------------------------------------------------------------------------------------------


@pytest.fixture
def store(monkeypatch):
    use_memory_store(monkeypatch)
    from pages.ui import services

    return services.store_handle().store  # the same cached MemoryStore the app uses in this process


def assert_no_beacon(at) -> None:
    assert not at.exception, at.exception
    leaks = [(kind, text) for kind, text in markdown_strings(at) if HOST in text]
    assert not leaks, leaks


@pytest.mark.parametrize("payload", payloads(BASE), ids=["plain", "newline", "backtick"])
def test_the_inspector_prints_a_stored_model_name_as_text(store, payload):
    sid = hostile_session(store, payload)
    at = open_app("pages/inspector.py", session=sid)
    assert_no_beacon(at)
    shown = "\n".join(text for _, text in markdown_strings(at))
    assert markdown_literal(payload) in shown  # the name is on the page, as text


@pytest.mark.parametrize("payload", payloads(BASE), ids=["plain", "newline", "backtick"])
def test_the_chat_and_its_timeline_print_stored_records_as_text(store, payload):
    sid = hostile_session(store, payload)
    at = open_app(session=sid)
    assert_no_beacon(at)
    assert any(markdown_literal(payload) in text for _, text in markdown_strings(at))
    key = f"chat_timeline__{sid}__turn"
    for turn in range(1, len(at.selectbox(key=key).options) + 1):  # every turn's badges, diff and request
        at.selectbox(key=key).set_value(turn).run()
        assert_no_beacon(at)


def test_the_sessions_page_prints_stored_values_as_text(store):
    for payload in payloads(BASE):
        hostile_session(store, payload)
    assert_no_beacon(open_app("pages/sessions.py"))


def test_a_session_id_in_the_link_is_reported_as_text(store):
    at = open_app(session=f"![m]({BASE}/sid.png)")
    assert any("not valid" in e.value for e in at.error)
    assert_no_beacon(at)
