"""The token view: a text split into its tokens, shaded one by one as tiktokenizer does, with the counts beside.

``render_token_view(text, key=...)`` draws it for any text (the chat calls it for one message);
``token_view_section(key=...)`` adds the text box and the presets (the inspector). Widget keys start with
the ``key`` given, so several views can live on one page.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from lib.core import Message, markdown_literal, signed
from lib.tokens import (
    COMPARED_ENCODINGS,
    DEFAULT_SEGMENT_LIMIT,
    PRESETS,
    EncodingUnavailable,
    content_text,
    count_label,
    segments_html,
    summarize,
    token_view,
)

DEFAULT_PRESET = "Japanese"
REFERENCE = "o200k_base"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{signed(value, '.1f')}%"


def counts_caption(text: str) -> str:
    """Every count of ``text``, each with its label (the same words the chat and the API use)."""
    summary = summarize(text, reference=REFERENCE)
    parts = [f"{count_label('tiktoken', encoding=name)}: {'—' if n is None else f'{n:,}'}"
             for name, n in summary.counts.items()]
    parts.append(f"{count_label('estimate')}: {summary.estimate:,}, error {_pct(summary.error_pct)} "
                 f"against {summary.reference}")
    if summary.chars_per_token is not None:
        parts.append(f"{summary.chars_per_token:.2f} characters per token")
    return " · ".join(parts)


def _metrics(text: str) -> None:
    """The counts as metrics, three to a row: six in one row cut every label to "Toke…" in a chat column,
    and the encoding's name, the one part that tells the two counts apart, comes first."""
    summary = summarize(text, reference=REFERENCE)
    cells = [*st.columns(3), *st.columns(3)]
    cells[0].metric("Characters", f"{summary.chars:,}")
    for col, name in zip(cells[1:4], COMPARED_ENCODINGS, strict=True):
        count = summary.counts.get(name)
        col.metric(f"{name} tokens", "—" if count is None else f"{count:,}",
                   help=count_label("tiktoken", encoding=name))
    cells[4].metric("chars/4 estimate", f"{summary.estimate:,}", delta=_pct(summary.error_pct),
                    delta_color="off", delta_arrow="off",
                    help=f"{count_label('estimate')}; the delta is its error against {summary.reference}.")
    cells[5].metric("Chars per token", "—" if summary.chars_per_token is None else
                    f"{summary.chars_per_token:.2f}", help=f"Against {summary.reference}. chars/4 assumes 4.")
    st.caption(counts_caption(text))


def render_token_view(text: str, *, key: str) -> None:
    """The shaded tokens of ``text`` and its counts. Counts are exact over the whole text; the shading
    stops after the first tokens so a 20,000-character message stays quick."""
    if not text:
        st.info("Nothing to show: the text is empty.")
        return
    _metrics(text)
    encoding = st.radio("Tokens shown in", COMPARED_ENCODINGS, index=COMPARED_ENCODINGS.index(REFERENCE),
                        horizontal=True, key=f"{key}_encoding")
    try:
        view = token_view(text, encoding, limit=DEFAULT_SEGMENT_LIMIT)
    except EncodingUnavailable as exc:
        st.warning(f"{markdown_literal(str(exc))} The shaded view needs the encoding; the estimate above still "
                   "holds.")
        return
    with st.container(height=320 if view.total > 300 else "content", key=f"{key}_tokens"):
        st.html(segments_html(view))
    partial = sum(segment.partial for segment in view.segments)
    notes = [f"Each shade is one token of {encoding}; hover a token for its id and bytes."]
    if partial:
        notes.append(f"{partial:,} tokens hold only part of a character (dashed outline): their bytes are shown "
                     "as \\x escapes, because one character can span several tokens.")
    if view.truncated:
        notes.append(f"Shading stops after {len(view.segments):,} of {view.total:,} tokens; the counts above "
                     "cover the whole text.")
    st.caption(" ".join(notes))


def _use_preset(key: str, name: str) -> None:
    st.session_state[f"{key}_text"] = PRESETS[name]


def _load_message(key: str, messages: Sequence[Message]) -> None:
    # A callback: the text box is created after it, already holding the message.
    number = st.session_state.get(f"{key}_message")
    if number is None or not 0 <= number < len(messages):
        return
    message = messages[int(number)]
    text = content_text(message.get("content") or "")
    st.session_state[f"{key}_text"] = text
    st.session_state[f"{key}_loaded"] = (f"message #{int(number):,} ({message.get('role')})", text)


def token_view_section(*, key: str, messages: Sequence[Message] = ()) -> None:
    """A text box with presets (English prose, Chinese, Japanese, Python code, JSON, emoji) and, optionally,
    a message of ``messages`` to load by its position (the inspector passes the session's stored history),
    then the token view.

    Messages are picked by number, not from a list: a list of every message of a 10,000-message session
    was 10,000 options built and sent on every run of the tab.
    """
    st.session_state.setdefault(f"{key}_text", PRESETS[DEFAULT_PRESET])
    cols = st.columns(len(PRESETS))
    for col, name in zip(cols, PRESETS, strict=True):
        col.button(name, key=f"{key}_preset_{name}", on_click=_use_preset, args=(key, name), width="stretch")
    if messages:
        st.number_input(f"Or load a message of this session by its # (0–{len(messages) - 1:,}, as numbered in "
                        "the Messages table)", min_value=0, max_value=len(messages) - 1, value=None, step=1,
                        key=f"{key}_message", on_change=_load_message, args=(key, messages),
                        placeholder="Message #")
    text = st.text_area("Text to tokenize", key=f"{key}_text", height=140,
                        help="Type or paste any text; press Ctrl+Enter (or click outside the box) to update. "
                             "Long pastes are fine: counts stay exact, shading is capped.")
    loaded = st.session_state.get(f"{key}_loaded")
    if loaded and loaded[1] == text:  # said only while the box still holds that message
        st.caption(f"Loaded {markdown_literal(loaded[0])}. Editing it here never changes the stored message.")
    render_token_view(text, key=key)
