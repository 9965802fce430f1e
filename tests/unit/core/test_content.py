"""Untrusted content: no Markdown image survives safe_markdown, bidi controls are visible, long text is
collapsed; and pages/ui/render.py shows Rendered | Raw with "Show all" (AppTest)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from lib.core import PREVIEW_CHARS, content_text, has_bidi_controls, preview, reveal_bidi, safe_markdown, safe_title

# Every CommonMark image starts with "![" (inline, full/collapsed/shortcut reference, nested in a link).
IMAGES = [
    "![x](http://127.0.0.1:9/p.png?d=secret)",
    '![x](<http://127.0.0.1:9/p.png> "title")',
    "![x][ref]\n\n[ref]: http://127.0.0.1:9/r.png",
    "![ref][]\n\n[ref]: http://127.0.0.1:9/r.png",
    "![ref]\n\n[ref]: http://127.0.0.1:9/r.png",
    "[![x](http://127.0.0.1:9/i.png)](http://example.invalid)",
    "\\![x](http://127.0.0.1:9/e.png)",  # an escaped "!" before an image-looking link
    "!![x](http://127.0.0.1:9/d.png)",
    "![](http://127.0.0.1:9/empty.png)",
]


@pytest.mark.parametrize("text", IMAGES)
def test_safe_markdown_leaves_no_image_syntax(text):
    out = safe_markdown(text)
    assert "![" not in out
    assert "http://127.0.0.1:9/" in out  # the address stays readable (as a link), it is just not loaded


def test_empty_alt_gets_a_visible_label():
    assert "[image](http://127.0.0.1:9/empty.png)" in safe_markdown("![](http://127.0.0.1:9/empty.png)")


def test_ordinary_markdown_is_unchanged():
    text = "# Title\n\nSome **bold**, a [link](http://x.invalid), `code`, $x^2$ and ! [not an image]."
    assert safe_markdown(text) == text


@given(st.text(alphabet="![]()\\x\u200b\u202e ", max_size=40))
def test_no_image_start_survives_any_text(text):
    assert "![" not in safe_markdown(text)


@pytest.mark.parametrize("char", [*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))])
def test_every_bidi_control_is_revealed(char):
    text = f"invoice{char}fdp.exe"
    out = reveal_bidi(text)
    assert char not in out
    assert f"⟪U+{ord(char):04X}⟫" in out
    assert has_bidi_controls(text) and not has_bidi_controls(out)
    assert char not in safe_markdown(text) and char not in safe_title(text)


def test_ordinary_rtl_text_is_left_alone():
    assert reveal_bidi("שלום مرحبا") == "שלום مرحبا"


def test_preview_keeps_short_text_and_cuts_long_text_at_a_break():
    assert preview("short") == ("short", False)
    words = "word " * 1_000
    head, cut = preview(words)
    assert cut and len(head) <= PREVIEW_CHARS and head.endswith("word")
    solid = "x" * 5_000
    assert preview(solid, 100) == ("x" * 100, True)
    lines = ("a" * 50 + "\n") * 100
    head, cut = preview(lines, 120)
    assert cut and head == "a" * 50 + "\n" + "a" * 50


def test_safe_title_is_one_line_and_bounded():
    assert safe_title("  hello\n\n world  ") == "hello world"
    assert safe_title("x" * 200, limit=10) == "x" * 9 + "…"
    assert safe_title({"a": 1}) == '{ "a": 1 }'
    assert safe_title(None) == ""


def test_content_text_never_raises():
    loop: list[object] = []
    loop.append(loop)
    deep: object = []
    for _ in range(100_000):
        deep = [deep]
    assert content_text("x") == "x"
    assert content_text(None) == ""
    assert content_text([{"type": "text", "text": "hi"}]).startswith("[")
    assert content_text(float("nan")) == "NaN"
    assert content_text(loop) == "<unreadable list>"
    assert content_text(deep) == "<unreadable list>"


# --- pages/ui/render.py under AppTest ------------------------------------------------------------------------


def _render_script() -> None:
    import streamlit as st

    from pages.ui.render import render_message_body

    for key, content in st.session_state["hl_test_messages"].items():
        render_message_body(content, key=key)


def _run(messages: dict[str, object]) -> AppTest:
    at = AppTest.from_function(_render_script, default_timeout=30)
    at.session_state["hl_test_messages"] = messages
    at.run()
    assert not at.exception, at.exception
    return at


def test_render_shows_safe_markdown_beside_raw_text():
    text = "# Heading\n![x](http://127.0.0.1:9/p.png?d=secret) \u202eevil"
    at = _run({"m1": text})
    assert [t.label for t in at.tabs] == ["Rendered", "Raw"]
    assert at.markdown[0].value == safe_markdown(text)
    assert at.code[0].value == reveal_bidi(text)  # raw: the exact text, bidi revealed
    assert at.code[0].language == "plaintext"  # no syntax highlighting of untrusted text
    assert not at.button  # short messages carry no widget


def test_render_collapses_long_messages_until_show_all():
    long_text = "start " + "x" * 200_000
    at = _run({"long": long_text, "other": "y" * 3_000})
    assert len(at.markdown[0].value) < PREVIEW_CHARS + 10
    assert len(at.code[0].value) <= PREVIEW_CHARS
    assert "Showing the first" in at.caption[0].value and "200,006" in at.caption[0].value
    at.button(key="hl_render_toggle__long").click().run()
    assert not at.exception
    assert at.code[0].value == long_text  # the long message in full ...
    assert len(at.code[1].value) <= PREVIEW_CHARS  # ... and only that one
    assert at.button(key="hl_render_toggle__long").label == "Show less"
    at.button(key="hl_render_toggle__long").click().run()
    assert len(at.code[0].value) <= PREVIEW_CHARS


def test_render_shows_structured_or_odd_content_as_data():
    at = _run({"parts": [{"type": "text", "text": "![x](http://127.0.0.1:9/a.png)"}], "n": 5, "none": None})
    assert not at.tabs and not at.markdown
    assert [c.value for c in at.code][1:] == ["5", ""]
    assert re.search(r'"text": "!\[x\]', at.code[0].value)  # raw JSON text: shown, never rendered


def _stream_script() -> None:
    import streamlit as st

    from pages.ui.render import stream_message_body

    chunks = ["Here: !", "[x](http://127.0.0.1:9/p", ".png) and \u202e", "done"]
    st.session_state["hl_test_streamed"] = stream_message_body(iter(chunks), key="s", every_s=0)


def test_stream_message_body_never_draws_an_image_and_ends_as_render_message_body():
    at = AppTest.from_function(_stream_script, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    text = "Here: ![x](http://127.0.0.1:9/p.png) and \u202edone"
    assert at.session_state["hl_test_streamed"] == text
    assert [t.label for t in at.tabs] == ["Rendered", "Raw"]
    assert at.markdown[0].value == safe_markdown(text) and "![" not in at.markdown[0].value


def test_signed_figures_use_one_minus_and_zero_has_no_sign() -> None:
    from lib.core.content import MINUS, signed
    from lib.views.rows import TurnDiff

    assert signed(-3) == f"{MINUS}3" and signed(1234) == "+1,234" and signed(0) == "0"
    assert signed(-0.04, ".1f") == "0.0" and signed(-12.34, ".1f") == f"{MINUS}12.3"
    text = TurnDiff(added=2, removed=0, tokens=-3).text
    assert text == f"2 messages added · 0 dropped · {MINUS}3 tokens"
    assert "-" not in text and f"{MINUS}0" not in text
