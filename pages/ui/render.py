"""Streamlit rendering of one message's content: safe Markdown beside the raw text, long text collapsed.

Every page that shows message content (chat, compare, inspector, sessions) calls ``render_message_body``
instead of ``st.markdown(content)``, so that content never loads a remote resource, bidi controls are
visible, a "Raw" tab shows exactly what was sent (``# heading`` and ``$x^2$`` change what Markdown shows),
and a 200k-character paste is collapsed after ``PREVIEW_CHARS`` with "Show all".

Anything else from data (a model name, an error, a note) is not Markdown at all: it is put into captions,
alerts and labels through ``lib.core.content.markdown_literal``, which shows it as literal text.

Cheap for many messages: no widget per message unless the message is long (one button), and the raw tab
holds only the preview until "Show all" is pressed. Session-state keys owned here start with ``hl_render_``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import streamlit as st

from lib.core import PREVIEW_CHARS, content_text, preview, reveal_bidi, safe_markdown

TABS = ("Rendered", "Raw")


def expanded_key(key: str) -> str:
    """The session-state flag that says message ``key`` is shown in full."""
    return f"hl_render_all__{key}"


def render_message_body(content: object, *, key: str, limit: int = PREVIEW_CHARS, raw_tab: bool = True) -> None:
    """Show one message's content: "Rendered | Raw" tabs for text, JSON text for anything else.

    ``key`` must be unique on the page and stable across reruns (the message id, prefixed by the page's
    namespace, e.g. ``f"chat_{message_id}"``); it keys the "Show all" state of long messages.
    ``raw_tab=False`` draws the rendered Markdown alone: the chat draws 100 messages on every rerun, and the
    tabs (three elements and a hidden code block per message) were the largest share of the browser's work
    after Enter, so the chat offers the raw text on demand instead (its "Raw text & tokens" button).
    """
    text = content_text(content)
    full = bool(st.session_state.get(expanded_key(key), False))
    shown, cut = (text, False) if full else preview(text, limit)
    if isinstance(content, str) and not raw_tab:
        st.markdown(safe_markdown(shown) + (" …" if cut else ""))
    elif isinstance(content, str):
        rendered, raw = st.tabs(list(TABS))
        with rendered:
            st.markdown(safe_markdown(shown) + (" …" if cut else ""))
        with raw:
            render_raw(shown)
    else:
        # Structured content (a list of parts, or whatever a crafted import stored) is shown as data.
        render_raw(shown)
    if cut or full and len(text) > limit:
        _show_all_toggle(key, shown=len(shown), total=len(text), full=full)


def stream_message_body(deltas: Iterable[str], *, key: str, every_s: float = 0.05, raw_tab: bool = True) -> str:
    """Draw a reply while it streams, safely, then as ``render_message_body``; return the whole text.

    Use instead of ``st.write_stream``, which renders the raw Markdown: a streamed image would be fetched
    before the finished reply is ever drawn safely. Redraws at most every ``every_s`` seconds.
    """
    placeholder = st.empty()
    # The chunks are joined once, at the end; while streaming only the head that the preview shows is kept
    # as text, so a huge reply costs no copy of itself per delta.
    chunks: list[str] = []
    head, drawn_at = "", 0.0
    for delta in deltas:
        chunks.append(delta)
        if len(head) <= PREVIEW_CHARS:
            head += delta[:PREVIEW_CHARS + 1 - len(head)]
        if time.monotonic() - drawn_at >= every_s:
            shown, _ = preview(head, PREVIEW_CHARS)
            placeholder.markdown(safe_markdown(shown) + " ▌")
            drawn_at = time.monotonic()
    text = "".join(chunks)
    with placeholder.container():
        render_message_body(text, key=key, raw_tab=raw_tab)
    return text


def render_raw(text: str) -> None:
    """Exactly ``text``, in monospace, except that bidi controls are shown as markers."""
    st.code(reveal_bidi(text), language=None, wrap_lines=True)


def _show_all_toggle(key: str, *, shown: int, total: int, full: bool) -> None:
    if full:
        label, note = "Show less", f"Showing all {total:,} characters."
    else:
        label, note = "Show all", f"Showing the first {shown:,} of {total:,} characters."
    st.caption(note)
    st.button(label, key=f"hl_render_toggle__{key}", on_click=_flip, args=(expanded_key(key),))


def _flip(state_key: str) -> None:
    st.session_state[state_key] = not st.session_state.get(state_key, False)
