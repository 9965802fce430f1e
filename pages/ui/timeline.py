"""The payload timeline beside the chat: the seed's Turn 1/2/3 illustration, live (not a page of its own).

API for the chat page (all data comes from ``lib.views.timeline.build_timeline``)::

    from lib.views import build_timeline
    from pages.ui.timeline import render_badges, render_cost_caption, render_timeline

    data = build_timeline(history, store.get_turns(sid), meta=store.get_meta(sid),
                          reference_model=sidebar.reference_model(), prices=prices)
    turn = render_timeline(data, key=f"chat_timeline__{sid}", selected_turn=None)  # -> the turn shown
    render_badges(data.row(n).badges)            # under a reply: the badges of its turn
    render_cost_caption(reply_meta, total=data.total_cost, turns=len(data.rows), unpriced=data.unpriced_turns)

``render_timeline`` draws a turn picker, a legend, then the chart of pages.ui.timeline_chart (one row per
turn: block width = exact tokens, colour = role, new this turn outlined, the cached prefix thinner over a
green rule, dropped tokens as a grey bar left of a divider), in a fixed-height scrolling container once
there are many turns, the chart in words (lib.views.timeline_summary), then that turn's badges, its
difference from the previous request and its exact request body (rebuilt from the record by the adapter
that sent it, lib.chat.bodies; never a key). Every widget key starts with ``key``; the turn picker's is
``f"{key}__turn"`` (set it in session_state to show a new turn). Rows run oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd
import streamlit as st

from lib.chat import TurnBody
from lib.context import body_shape
from lib.core import ReplyMeta, markdown_literal
from lib.providers import REPORT_LABEL
from lib.views import (
    COST_UNIT_NOTE,
    Badge,
    Block,
    Level,
    Timeline,
    reply_caption,
    running_total_text,
    summarize_timeline,
    truncation_caption,
)
from pages.ui.timeline_chart import TITLE, legend_html, roles_drawn, timeline_chart, timeline_frames

BadgeColour = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray"]

BADGE_COLOURS: dict[Level, BadgeColour] = {"info": "blue", "ok": "green", "notice": "violet", "neutral": "gray",
                                           "warning": "orange", "error": "red"}
SCROLL_AFTER_ROWS = 16
CONTAINER_PX = 440
BODY_SHOWN_CHARS = 12_000  # a request body longer than this is drawn on request (see render_turn)


def render_timeline(data: Timeline, *, key: str, selected_turn: int | None = None) -> int | None:
    """Draw the timeline and the chosen turn's request; returns the turn shown (None with no turns yet)."""
    if not data.rows:
        st.info("The payload timeline fills up as you chat: one row per turn, one block per message sent.")
        return None
    turns = data.turns
    default = selected_turn if selected_turn in turns else turns[-1]
    chosen = st.selectbox("Show the request of turn", list(reversed(turns)), index=list(reversed(turns)).index(default),
                          key=f"{key}__turn", format_func=lambda t: f"Turn {t}")
    frame, per_turn, note = timeline_frames(data, selected=chosen)
    summary = summarize_timeline(data, turn=chosen)
    description = summary.text if summary else TITLE
    st.caption("Each row is one request; each block one message, as wide as its exact tokens.")
    has_dropped = bool((per_turn["dropped tokens"] > 0).any())
    st.html(legend_html(roles_drawn(frame), dropped=has_dropped, pinned=bool((frame["you chose"] == "pinned").any()),
                        left_out=bool((per_turn["left out tokens"] > 0).any())))
    chart = timeline_chart(frame, per_turn, rows=len(data.rows), description=description)
    if len(data.rows) > SCROLL_AFTER_ROWS:
        with st.container(height=CONTAINER_PX):
            st.vega_lite_chart(spec=chart, width="stretch")
    else:
        st.vega_lite_chart(spec=chart, width="stretch")
    if note:
        st.caption(note)
    # The chart in words: for a screen reader, and for a projector where colours wash out.
    st.markdown(f"**In words:** {markdown_literal(description)}")
    render_turn(data, chosen, key=key)
    return int(chosen)


def render_turn(data: Timeline, turn: int, *, key: str) -> None:
    """One turn: badges, the difference from the previous request, the dropped messages and the request body.

    A turn that made no request shows its error alone: no difference, no dropped messages, no body."""
    row = data.row(turn)
    record = row.record
    st.markdown(f"**Turn {turn}** · {markdown_literal(record.strategy or '?')} strategy · "
                f"{markdown_literal(record.provider or '?')} / {markdown_literal(record.model or '?')}")
    render_badges(row.badges, sources=True)
    if not row.made_request:
        st.info(f"No request was made in turn {turn}, so nothing was sent, trimmed or paid, and there is no "
                "request body. Your message is stored.")
        return
    added, removed = data.changes(turn)
    st.markdown(f"**Difference from the previous request:** {markdown_literal(row.diff.text)} "
                f"({markdown_literal(row.count_source)})")
    if added or removed:
        st.dataframe(block_table([*added, *removed]), hide_index=True, width="stretch", key=f"{key}__diff_{turn}")
    dropped_count = sum(stop - start for start, stop in row.dropped_runs)
    if dropped_count:
        # Lazy: a closed expander runs nothing. Its table has a row per dropped message (10,000 in a capped
        # session), which cost half a second to build and send on every rerun while nobody looked at it.
        box = st.expander(f"{dropped_count:,} stored messages not sent in turn {turn}", key=f"{key}__dropped_{turn}",
                          on_change="rerun")
        if box.open:
            with box:
                st.dataframe(block_table(data.dropped_blocks(turn)), hide_index=True, width="stretch",
                             key=f"{key}__dropped_table_{turn}")
    outcome = " It was sent, and the provider answered with an error (see the red badge)." if record.failed else ""
    render_body(data.request_body(turn), key=f"{key}__body_{turn}",
                title=f"**Exact request body of turn {turn}** (built by the {markdown_literal(record.provider or '?')} "
                      f"adapter from the turn record; no key is ever stored).{outcome}")


def render_body(shown: TurnBody, *, key: str, title: str) -> None:
    """A request body, whole, as copyable JSON (the code block's copy button), or why there is none.

    Used by the timeline, the reply just streamed and the inspector, so every page shows the one body."""
    st.markdown(title)
    if shown.body is None:
        st.caption(markdown_literal(shown.note))
        return
    for problem in shown.missing:
        st.warning(f"Could not rebuild everything: {markdown_literal(problem)}. The body below lacks it.")
    text = shown.text
    if len(text) <= BODY_SHOWN_CHARS:
        # Wrapped: only the box scrolls (up and down), and a keyboard user reaches it through the code block's
        # copy button inside it; a long unwrapped line made the block itself a scroll region no key could reach.
        with st.container(height=360):
            st.code(text, language="json", wrap_lines=True)
        return
    # A long payload's body is tens of kilobytes of highlighted JSON: drawn on request (a lazy expander runs
    # nothing while closed), because highlighting it took the browser 0.4 s on every load of a long chat.
    box = st.expander(f"Show it: {body_shape(shown.body).sent_text}, {len(text.encode()) / 1024:,.0f} KB of JSON",
                      key=key, on_change="rerun", icon=":material/data_object:")
    if box.open:
        with box, st.container(height=360):
            st.code(text, language="json", wrap_lines=True)


def render_badges(turn_badges: Sequence[Badge], *, sources: bool = False) -> None:
    """Coloured badges with icons, large enough for a projector; errors red, warnings orange.

    One Markdown element for all of a turn's badges, not one ``st.badge`` each in a row container: the chat
    draws 50 turns, and every element is redrawn by the browser when a run starts and again when it is
    replaced, so seven elements per turn slowed "your message shown" at 10,000 messages. ``sources``: the
    sources of the numbers, one line per badge, in the element's tooltip. Only the timeline's chosen turn
    asks for them: a tooltip under every reply was one more Tab stop per turn between a keyboard user and
    the chat input."""
    if turn_badges:
        st.markdown(badges_markdown(turn_badges), help=badge_sources(turn_badges) if sources else None)


def badges_markdown(turn_badges: Sequence[Badge]) -> str:
    """``:colour-badge[icon text]`` directives; text literal (brackets too) so data never formats or links."""
    return " ".join(f":{BADGE_COLOURS[b.level]}-badge[{b.icon} {markdown_literal(b.text)}]" for b in turn_badges)


def badge_sources(turn_badges: Sequence[Badge]) -> str | None:
    lines = [f"- {markdown_literal(b.text)}: {markdown_literal(b.source)}" for b in turn_badges if b.source]
    return "Where each number comes from:\n\n" + "\n".join(lines) if lines else None


def render_cost_caption(
    meta: Mapping[str, Any] | ReplyMeta | None, *, total: float | None = None, turns: int = 0, unpriced: int = 0
) -> None:
    """A reply's caption (tokens, timings, cost and its source), then the session's running total. What the
    units mean is said once, by the running total above the chat (COST_UNIT_NOTE), not under every reply."""
    st.caption(markdown_literal(reply_caption(meta)))
    truncated = truncation_caption(meta)
    if truncated:
        st.caption(markdown_literal(truncated))
    if total is not None:
        st.markdown(f"**{markdown_literal(running_total_text(total, turns=turns, unpriced=unpriced))}**",
                    help=COST_UNIT_NOTE)


def render_model_report(meta: Mapping[str, Any] | ReplyMeta | None) -> None:
    """The model's own report of what it could see, under its reply: labelled, and never part of the reply."""
    reply = meta if isinstance(meta, ReplyMeta) else ReplyMeta.from_json(meta)
    if not reply.report:
        return
    lines = "  \n".join(f"· {markdown_literal(line)}" for line in reply.report)
    st.caption(f"🔎 **{markdown_literal(REPORT_LABEL)}**  \n{lines}")


def block_table(blocks: Sequence[Block]) -> pd.DataFrame:
    return pd.DataFrame([{"change": "dropped" if b.dropped else "added", "position": None if b.index < 0 else b.index,
                          "role": b.role, "turn": b.message_turn, "tokens": b.tokens, "message": b.preview}
                         for b in blocks])
