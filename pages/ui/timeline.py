"""The payload timeline beside the chat: the seed's Turn 1/2/3 illustration, live (not a page of its own).

API for the chat page (all data comes from ``lib.views.timeline.build_timeline``)::

    from lib.views.timeline import build_timeline
    from pages.ui.timeline import render_badges, render_cost_caption, render_timeline

    data = build_timeline(history, store.get_turns(sid), meta=store.get_meta(sid),
                          reference_model=settings.reference_model, prices=prices)
    turn = render_timeline(data, key=f"chat_timeline__{sid}", selected_turn=None)  # -> the turn shown
    render_badges(data.row(n).badges)            # under a reply: the badges of its turn
    render_cost_caption(reply_meta, total=data.total_cost, turns=len(data.rows), unpriced=data.unpriced_turns)

``render_timeline`` draws one row per turn (block width = exact tokens, colour = role, new this turn
outlined in black, the cached prefix paler with a green rule under it, dropped tokens as a grey bar in a
panel of their own), in a fixed-height scrolling container once there are many turns, then a turn picker
with that turn's badges, its difference from the previous turn and its exact request body (rebuilt from
the record: model, max_tokens, messages; never a key). Every widget key starts with ``key``; the turn
picker's is ``f"{key}__turn"`` (set it in session_state to show a new turn). Rows run oldest first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd
import streamlit as st

from lib.core import ReplyMeta, markdown_literal
from lib.views import COST_UNIT_NOTE, Badge, Block, Level, Timeline, TurnRow, reply_caption, running_total_text

BadgeColour = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray"]

ROLE_COLOURS = {"system": "#7b3fb5", "summary": "#0f8b8d", "user": "#2f6fd0", "assistant": "#e07b1f",
                "tool": "#8d6e63", "developer": "#7b3fb5", "several": "#9e9e9e"}
STATES = ["new this turn", "re-sent", "re-sent, cached"]
BADGE_COLOURS: dict[Level, BadgeColour] = {"info": "blue", "ok": "green", "notice": "violet", "neutral": "gray",
                                           "warning": "orange", "error": "red"}
ROW_PX = 26
SCROLL_AFTER_ROWS = 16
CONTAINER_PX = 440
# Above this many blocks the chart merges neighbours of the same kind within a row (and says so).
MAX_BLOCKS = 6_000
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
    frame, dropped, note = timeline_frames(data, selected=chosen)
    st.caption("Each row is one request; each block one message, as wide as its exact tokens. Black outline: "
               "new this turn. Green rule under a row: the cached prefix (blocks wholly inside it are paler). "
               "Grey bar on the left: tokens dropped.")
    chart = timeline_chart(frame, dropped, rows=len(data.rows))
    if len(data.rows) > SCROLL_AFTER_ROWS:
        with st.container(height=CONTAINER_PX):
            st.vega_lite_chart(spec=chart, width="stretch")
    else:
        st.vega_lite_chart(spec=chart, width="stretch")
    if note:
        st.caption(note)
    render_turn(data, chosen, key=key)
    return int(chosen)


def render_turn(data: Timeline, turn: int, *, key: str) -> None:
    """One turn: badges, the difference from the previous turn, the dropped messages and the request body."""
    row = data.row(turn)
    record = row.record
    st.markdown(f"**Turn {turn}** · {markdown_literal(record.strategy or '?')} strategy · "
                f"{markdown_literal(record.provider or '?')} / {markdown_literal(record.model or '?')}")
    render_badges(row.badges)
    added, removed = data.changes(turn)
    st.markdown(f"**Difference from the previous turn:** {markdown_literal(row.diff.text)} "
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
    body = data.request_body(turn)
    st.markdown(f"**Exact request body of turn {turn}** (rebuilt from its turn record; no key is ever stored)")
    for problem in body.get("missing", []):
        st.warning(f"Could not rebuild everything: {markdown_literal(problem)}.")
    text = json.dumps(body, indent=2, ensure_ascii=False)
    if len(text) <= BODY_SHOWN_CHARS:
        with st.container(height=360):
            st.code(text, language="json")
        return
    # A long payload's body is tens of kilobytes of highlighted JSON: drawn on request (a lazy expander runs
    # nothing while closed), because highlighting it took the browser 0.4 s on every load of a long chat.
    box = st.expander(f"Show it: {len(body.get('messages', [])):,} messages, {len(text.encode()) / 1024:,.0f} KB "
                      "of JSON", key=f"{key}__body_{turn}", on_change="rerun", icon=":material/data_object:")
    if box.open:
        with box, st.container(height=360):
            st.code(text, language="json")


def render_badges(turn_badges: Sequence[Badge]) -> None:
    """Coloured badges with icons, large enough for a projector; errors red, warnings orange.

    One Markdown element for all of a turn's badges, not one ``st.badge`` each in a row container: the chat
    draws 50 turns, and every element is redrawn by the browser when a run starts and again when it is
    replaced, so seven elements per turn slowed "your message shown" at 10,000 messages. The sources of
    the numbers, one line per badge, are in the element's tooltip."""
    if turn_badges:
        st.markdown(badges_markdown(turn_badges), help=badge_sources(turn_badges))


def badges_markdown(turn_badges: Sequence[Badge]) -> str:
    """``:colour-badge[icon text]`` directives; text literal (brackets too) so data never formats or links."""
    return " ".join(f":{BADGE_COLOURS[b.level]}-badge[{b.icon} {markdown_literal(b.text)}]" for b in turn_badges)


def badge_sources(turn_badges: Sequence[Badge]) -> str | None:
    lines = [f"- {markdown_literal(b.text)}: {markdown_literal(b.source)}" for b in turn_badges if b.source]
    return "Where each number comes from:\n\n" + "\n".join(lines) if lines else None


def render_cost_caption(
    meta: Mapping[str, Any] | ReplyMeta | None, *, total: float | None = None, turns: int = 0, unpriced: int = 0
) -> None:
    """A reply's caption (tokens, timings, cost and its source), then the session's running total."""
    st.caption(markdown_literal(reply_caption(meta)), help=COST_UNIT_NOTE)
    if total is not None:
        st.markdown(f"**{markdown_literal(running_total_text(total, turns=turns, unpriced=unpriced))}**",
                    help=COST_UNIT_NOTE)


# -- chart -----------------------------------------------------------------------------------------------------


def timeline_frames(data: Timeline, *, selected: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """One frame row per block (x0..x1 in tokens) and one per turn for its dropped tokens."""
    rows: list[dict[str, Any]] = []
    per_row = [data.blocks(row.turn) for row in data.rows]
    total = sum(len(b) for b in per_row)
    merge = total > MAX_BLOCKS
    for row, blocks in zip(data.rows, per_row, strict=True):
        label = _row_label(row, selected)
        rows += _block_rows(label, _merged(blocks) if merge else blocks, row)
    note = None
    if merge:
        note = (f"{total:,} blocks in all: neighbouring messages in the same state are drawn as one block (grey "
                "when their roles differ; hover for the count). Pick a turn above to see each of its messages.")
    # One row per turn: its dropped tokens (the left panel) and where its cached prefix ends (the green rule).
    dropped = pd.DataFrame([{"row": _row_label(row, selected), "turn": row.turn,
                             "dropped tokens": data.dropped_tokens(row.turn),
                             "dropped messages": row.record.dropped_count, "cached from": 0,
                             "cached to": row.cache.extent, "cached tokens": row.cache.cached_tokens,
                             "cache source": row.cache.source} for row in data.rows])
    return pd.DataFrame(rows), dropped, note


def _row_label(row: TurnRow, selected: int | None) -> str:
    mark = "▶ " if row.turn == selected else ""
    return f"{mark}Turn {row.turn}" + (" ✖" if row.failed else "")


def _state(block: Block) -> str:
    return "re-sent, cached" if block.cached else "new this turn" if block.new else "re-sent"


def _block_rows(label: str, blocks: Sequence[Block], row: TurnRow) -> list[dict[str, Any]]:
    out, x = [], 0
    for block in blocks:
        out.append({"row": label, "turn": row.turn, "x0": x, "x1": x + block.tokens, "tokens": block.tokens,
                    "role": block.role, "state": _state(block), "message": block.preview,
                    "position": f"#{block.index}", "message turn": block.message_turn})
        x += block.tokens
    return out


def _merged(blocks: Sequence[Block]) -> list[Block]:
    """Neighbouring messages in the same state (new, re-sent, cached) become one block of "several" roles
    when they differ; system prompt and summary stay apart. Only used when the chart would be too large."""
    out: list[Block] = []
    count = 1
    for block in blocks:
        last = out[-1] if out else None
        if last is not None and last.kind == block.kind == "message" and _state(last) == _state(block):
            count += 1
            role = last.role if last.role == block.role else "several"
            out[-1] = Block(last.index, "message", role, last.tokens + block.tokens, None, last.message_turn,
                            new=last.new, cached=last.cached, preview=f"{count} messages from turn "
                            f"{last.message_turn} to {block.message_turn}")
        else:
            out.append(block)
            count = 1
    return out


def timeline_chart(frame: pd.DataFrame, dropped: pd.DataFrame, *, rows: int) -> dict[str, Any]:
    """The Vega-Lite spec of the timeline (a plain dict), with both frames attached as named datasets.

    Written as a dict, not with altair: altair validates every ``encode`` and ``to_dict`` against the
    schema, which cost the chat about 0.2 s whenever the shape changed (tests/test_timeline_page.py
    validates this spec against the schema instead). Rows are ordered by their turn number, a field of the
    data, so the spec does not depend on the order of the frames' rows.
    """
    roles = [r for r in ROLE_COLOURS if not frame.empty and r in set(frame["role"])]
    height = max(60, rows * ROW_PX)
    y = {"field": "row", "type": "nominal", "title": None,
         "sort": {"field": "turn", "op": "min", "order": "ascending"}}
    row_label = {**y, "axis": {"labelFontSize": 13, "labelFontWeight": "bold"}}
    new_this_turn = "(datum.state === 'new this turn')"
    # Only the roles drawn, in a fixed order, so the legend lists what is on screen.
    blocks = {
        "data": {"name": "blocks"},
        "mark": {"type": "bar", "height": ROW_PX - 8},
        "encoding": {
            "y": row_label,
            "x": _field("x0", "quantitative", title="Tokens sent (exact, per message)"), "x2": {"field": "x1"},
            "color": {**_field("role", "nominal"), "legend": {"orient": "top", "title": None},
                      "scale": {"domain": roles, "range": [ROLE_COLOURS.get(r, "#9e9e9e") for r in roles]}},
            "opacity": {**_field("state", "ordinal"), "sort": STATES, "legend": {"orient": "top", "title": None},
                        "scale": {"domain": STATES, "range": [1.0, 0.75, 0.35]}},
            "stroke": {"condition": {"test": new_this_turn, "value": "#000000"}, "value": "#ffffff"},
            "strokeWidth": {"condition": {"test": new_this_turn, "value": 2}, "value": 0.5},
            "tooltip": _tooltip(("row", "nominal"), ("position", "nominal"), ("role", "nominal"),
                                ("message turn", "quantitative"), ("tokens", "quantitative"), ("state", "nominal"),
                                ("message", "nominal")),
        },
    }
    # The cached prefix may end inside a message (the system prompt, say): a rule shows exactly where.
    cached = {
        "data": {"name": "rows"},
        "transform": [{"filter": "(datum['cached to'] > 0)"}],
        "mark": {"type": "rule", "color": "#2e7d32", "strokeWidth": 4, "yOffset": ROW_PX / 2 - 3},
        "encoding": {
            "y": row_label, "x": _field("cached from", "quantitative"), "x2": {"field": "cached to"},
            "tooltip": _tooltip(("row", "nominal"), ("cached tokens", "quantitative"), ("cache source", "nominal")),
        },
    }
    lost = {
        "data": {"name": "rows"},
        "mark": {"type": "bar", "color": "#bdbdbd", "height": ROW_PX - 8},
        "encoding": {
            "y": {**y, "axis": None},
            "x": {**_field("dropped tokens", "quantitative", title="Dropped"), "scale": {"reverse": True}},
            "tooltip": _tooltip(("row", "nominal"), ("dropped messages", "quantitative"),
                                ("dropped tokens", "quantitative")),
        },
        "width": 90, "height": height,
    }
    return {"hconcat": [lost, {"layer": [blocks, cached], "height": height}], "spacing": 4,
            "datasets": {"blocks": frame, "rows": dropped}}


def _field(name: str, kind: str, **more: Any) -> dict[str, Any]:
    return {"field": name, "type": kind, **more}


def _tooltip(*fields: tuple[str, str]) -> list[dict[str, Any]]:
    return [_field(name, kind) for name, kind in fields]


def block_table(blocks: Sequence[Block]) -> pd.DataFrame:
    return pd.DataFrame([{"change": "dropped" if b.dropped else "added", "position": None if b.index < 0 else b.index,
                          "role": b.role, "turn": b.message_turn, "tokens": b.tokens, "message": b.preview}
                         for b in blocks])
