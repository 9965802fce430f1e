"""The payload timeline's chart: a Vega-Lite spec (a plain dict) and the legend drawn under it.

    frame, rows, note = timeline_frames(data, selected=7)
    spec = timeline_chart(frame, rows, rows_drawn=len(data.rows), description=summary.text)
    st.vega_lite_chart(spec=spec, width="stretch")
    st.html(legend_html(roles_drawn(frame)))

One view, as wide as its column (``width: "container"``): an hconcat of two panels cannot follow its
container in Vega-Lite, and was always about 560 px wide, clipped in a 312 px column. So both panels share
one x scale over 0..1 and each maps its own tokens into its share of it: the dropped tokens of each turn
grow leftwards from a divider, the payload's messages rightwards from it. The axis ticks are placed and
labelled here, in tokens, so the two panels keep their own units.

Readable without colour and on either theme: every role colour holds 3:1 against white and against the
dark theme's background; "new this turn" is a black line inside a white one (one of the two always shows);
cached blocks are drawn thinner, over a green rule, instead of paler.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from lib.views import Block, Timeline, TurnRow

Row = dict[str, Any]  # one row of a chart's data, or one Vega-Lite object

# Each 3:1 or better against white (#ffffff) and the dark theme's #171614: graphics must stand out on both.
ROLE_COLOURS = {"tools": "#607d8b", "system": "#8e5bd6", "summary": "#118a8c", "user": "#3a7bd5",
                "assistant": "#c0670f", "tool": "#947064", "developer": "#8e5bd6", "several": "#8a8a8a"}
DROPPED_COLOUR = "#8a8a8a"
CACHED_COLOUR = "#2b8a3e"
# "You choose": a gold rule over pinned blocks, red for the dropped tokens left out by hand (both 3:1+ on
# either theme's background, like the role colours).
PINNED_COLOUR = "#a86b00"
LEFT_OUT_COLOUR = "#d32f2f"
STATES = ["new this turn", "re-sent", "re-sent, cached"]
ROW_PX = 26
BAR_PX = ROW_PX - 8
CACHED_BAR_PX = 10
# Above this many blocks the chart merges neighbours of the same kind within a row (and says so).
MAX_BLOCKS = 6_000
# Shares of the 0..1 x scale: the dropped panel, then a gap, then the payload.
DROPPED_SHARE = 0.18
GAP_SHARE = 0.03
TITLE = "Tokens per request"
# A frame with no block (every turn failed before sending) still has its columns, for the spec's fields.
BLOCK_COLUMNS = ["row", "turn", "x0", "x1", "tokens", "role", "state", "message", "position", "message turn",
                 "you chose"]


# -- frames ----------------------------------------------------------------------------------------------------


def timeline_frames(data: Timeline, *, selected: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """One frame row per block (x0..x1 in tokens) and one per turn for its dropped tokens and cached prefix."""
    rows: list[Row] = []
    per_row = [data.blocks(row.turn) for row in data.rows]
    total = sum(len(b) for b in per_row)
    merge = total > MAX_BLOCKS
    for row, blocks in zip(data.rows, per_row, strict=True):
        label = row_label(row, selected)
        rows += _block_rows(label, _merged(blocks) if merge else blocks, row)
    note = None
    if merge:
        note = (f"{total:,} blocks in all: neighbouring messages in the same state are drawn as one block (grey "
                "when their roles differ; hover for the count). Pick a turn above to see each of its messages.")
    per_turn = pd.DataFrame([{"row": row_label(row, selected), "turn": row.turn,
                              "dropped tokens": data.dropped_tokens(row.turn),
                              "left out tokens": data.left_out_tokens(row.turn),
                              "dropped messages": row.record.dropped_count, "cached from": 0,
                              "cached to": row.cache.extent, "cached tokens": row.cache.cached_tokens,
                              "cache source": row.cache.source} for row in data.rows])
    return pd.DataFrame(rows, columns=BLOCK_COLUMNS), per_turn, note


def row_label(row: TurnRow, selected: int | None) -> str:
    mark = "▶ " if row.turn == selected else ""
    return f"{mark}Turn {row.turn}" + (" ✖" if row.failed else "")


def _state(block: Block) -> str:
    return "re-sent, cached" if block.cached else "new this turn" if block.new else "re-sent"


def _block_rows(label: str, blocks: Sequence[Block], row: TurnRow) -> list[Row]:
    out, x = [], 0
    for block in blocks:
        out.append({"row": label, "turn": row.turn, "x0": x, "x1": x + block.tokens, "tokens": block.tokens,
                    "role": block.role, "state": _state(block), "message": block.preview,
                    "position": f"#{block.index}", "message turn": block.message_turn,
                    "you chose": "pinned" if block.pinned else ""})
        x += block.tokens
    return out


def _merged(blocks: Sequence[Block]) -> list[Block]:
    """Neighbouring messages in the same state (new, re-sent, cached) become one block of "several" roles
    when they differ; system prompt and summary stay apart. Only used when the chart would be too large."""
    out: list[Block] = []
    count = 1
    for block in blocks:
        last = out[-1] if out else None
        if (last is not None and last.kind == block.kind == "message" and _state(last) == _state(block)
                and last.pinned == block.pinned):
            count += 1
            role = last.role if last.role == block.role else "several"
            out[-1] = Block(last.index, "message", role, last.tokens + block.tokens, None, last.message_turn,
                            new=last.new, cached=last.cached, preview=f"{count} messages from turn "
                            f"{last.message_turn} to {block.message_turn}", pinned=last.pinned)
        else:
            out.append(block)
            count = 1
    return out


def roles_drawn(frame: pd.DataFrame) -> list[str]:
    """The roles in the chart, in the legend's fixed order."""
    present = set(frame["role"]) if not frame.empty else set()
    return [r for r in ROLE_COLOURS if r in present and not (r == "developer" and "system" in present)]


# -- the spec --------------------------------------------------------------------------------------------------


def nice_step(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above ``value`` (1 for nothing), so ticks fall on round numbers."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(step * power for step in (1, 2, 5, 10) if step * power >= value))


def nice_ticks(top: float, *, count: int = 4) -> list[float]:
    """Round ticks from 0 to at least ``top``, about ``count`` steps (never fractions of a token)."""
    step = max(1.0, nice_step(top / count))
    steps = max(1, math.ceil(top / step))
    return [step * n for n in range(steps + 1)]


Ticks = list[tuple[float, float]]  # (position on the 0..1 scale, tokens it stands for)


def _scaled(frame: pd.DataFrame, per_turn: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, Ticks]:
    """Both frames with u-positions on the shared 0..1 scale, and the axis ticks as (position, tokens)."""
    dropped_top = float(per_turn["dropped tokens"].max()) if not per_turn.empty else 0.0
    has_dropped = dropped_top > 0
    start = DROPPED_SHARE + GAP_SHARE if has_dropped else 0.0
    sent_ticks = nice_ticks(max(float(frame["x1"].max()) if not frame.empty else 0.0,
                                float(per_turn["cached to"].max()) if not per_turn.empty else 0.0))
    sent_top = sent_ticks[-1]
    width = 1.0 - start
    frame = frame.assign(u0=start + frame["x0"] / sent_top * width, u1=start + frame["x1"] / sent_top * width)
    ticks = [(round(start + t / sent_top * width, 6), t) for t in sent_ticks]
    if has_dropped:
        top = nice_ticks(dropped_top, count=1)[-1]
        per_turn = per_turn.assign(d0=DROPPED_SHARE * (1 - per_turn["dropped tokens"] / top), d1=DROPPED_SHARE,
                                   l0=DROPPED_SHARE * (1 - per_turn["left out tokens"] / top))
        ticks = [(0.0, top), *ticks]  # the dropped panel's far end; its 0 sits at the divider
    else:
        per_turn = per_turn.assign(d0=0.0, d1=0.0, l0=0.0)
    per_turn = per_turn.assign(c0=start, c1=start + per_turn["cached to"] / sent_top * width)
    return frame, per_turn, ticks


def timeline_chart(frame: pd.DataFrame, per_turn: pd.DataFrame, *, rows: int, description: str = "") -> Row:
    """The Vega-Lite spec of the timeline (a plain dict), with both frames attached as named datasets.

    Written as a dict, not with altair: altair validates every ``encode`` and ``to_dict`` against the
    schema, which cost the chat about 0.2 s whenever the shape changed (tests/test_timeline_page.py
    validates this spec against the schema instead). Rows are ordered by their turn number, a field of the
    data, so the spec does not depend on the order of the frames' rows.
    """
    frame, per_turn, ticks = _scaled(frame, per_turn)
    roles = roles_drawn(frame)
    has_dropped = bool((per_turn["dropped tokens"] > 0).any()) if not per_turn.empty else False
    y = {"field": "row", "type": "nominal", "title": None,
         "sort": {"field": "turn", "op": "min", "order": "ascending"},
         "axis": {"labelFontSize": 13, "labelFontWeight": "bold"}}
    labels = " : ".join(f"datum.value === {u} ? '{tokens:,g}'" for u, tokens in ticks) + " : ''"
    x_title = (["◀ dropped | sent ▶", "tokens (exact)"] if has_dropped else ["tokens sent", "(exact)"])
    x_axis = {"values": [u for u, _ in ticks], "labelExpr": labels, "title": x_title, "grid": True,
              "labelOverlap": "greedy", "labelFlush": True}
    x_scale = {"domain": [0, 1], "nice": False, "zero": False}
    new_this_turn = "datum.state === 'new this turn'"
    blocks = {
        "data": {"name": "blocks"},
        "mark": {"type": "bar", "stroke": "#ffffff", "strokeWidth": 0.5,
                 "description": {"expr": "datum.row + ': ' + datum.role + ' message, ' + datum.tokens + "
                                         "' tokens, ' + datum.state"}},
        "encoding": {
            "y": y,
            "x": {"field": "u0", "type": "quantitative", "scale": x_scale, "axis": x_axis}, "x2": {"field": "u1"},
            "color": {"field": "role", "type": "nominal", "legend": None,
                      "scale": {"domain": roles, "range": [ROLE_COLOURS[r] for r in roles]}},
            "size": {"field": "state", "type": "ordinal", "sort": STATES, "legend": None,
                     "scale": {"domain": STATES, "range": [BAR_PX, BAR_PX, CACHED_BAR_PX]}},
            "tooltip": _tooltip(("row", "nominal"), ("position", "nominal"), ("role", "nominal"),
                                ("message turn", "quantitative"), ("tokens", "quantitative"), ("state", "nominal"),
                                ("you chose", "nominal"), ("message", "nominal")),
        },
    }
    # Pinned blocks get a gold rule along their top edge, so a pinned turn shows even when it is also new.
    pinned = {
        "data": {"name": "blocks"},
        "transform": [{"filter": "datum['you chose'] === 'pinned'"}],
        "mark": {"type": "rule", "color": PINNED_COLOUR, "strokeWidth": 4, "yOffset": -(ROW_PX / 2 - 3),
                 "aria": False},
        "encoding": {"y": y, "x": {"field": "u0", "type": "quantitative"}, "x2": {"field": "u1"},
                     "tooltip": _tooltip(("row", "nominal"), ("you chose", "nominal"), ("message", "nominal"))},
    }
    outline = {  # "new this turn": white under black, so one of them shows on either theme's background
        "data": {"name": "blocks"},
        "transform": [{"filter": new_this_turn}],
        "encoding": {"y": y, "x": {"field": "u0", "type": "quantitative"}, "x2": {"field": "u1"}},
        "layer": [
            {"mark": {"type": "bar", "fillOpacity": 0, "stroke": "#ffffff", "strokeWidth": 5, "size": BAR_PX,
                      "aria": False}},
            {"mark": {"type": "bar", "fillOpacity": 0, "stroke": "#000000", "strokeWidth": 2, "size": BAR_PX,
                      "aria": False}},
        ],
    }
    # The cached prefix may end inside a message (the system prompt, say): a rule shows exactly where.
    cached = {
        "data": {"name": "rows"},
        "transform": [{"filter": "datum['cached to'] > 0"}],
        # Hidden from screen readers (the summary under the chart says what was cached): when no turn has a
        # cached prefix the rule's container is empty, and an empty labelled graphic is an axe violation.
        "mark": {"type": "rule", "color": CACHED_COLOUR, "strokeWidth": 4, "yOffset": ROW_PX / 2 - 3, "aria": False},
        "encoding": {
            "y": y, "x": {"field": "c0", "type": "quantitative"}, "x2": {"field": "c1"},
            "tooltip": _tooltip(("row", "nominal"), ("cached tokens", "quantitative"), ("cache source", "nominal")),
        },
    }
    layers: list[Row] = [blocks, outline, cached]
    if not frame.empty and (frame["you chose"] == "pinned").any():
        layers.append(pinned)
    if has_dropped:
        dropped = {
            "data": {"name": "rows"},
            "transform": [{"filter": "datum['dropped tokens'] > 0"}],
            "mark": {"type": "bar", "color": DROPPED_COLOUR, "size": BAR_PX,
                     "description": {"expr": "datum.row + ': ' + datum['dropped messages'] + "
                                             "' messages dropped, ' + datum['dropped tokens'] + ' tokens'"}},
            "encoding": {
                "y": y, "x": {"field": "d0", "type": "quantitative"}, "x2": {"field": "d1"},
                "tooltip": _tooltip(("row", "nominal"), ("dropped messages", "quantitative"),
                                    ("dropped tokens", "quantitative"), ("left out tokens", "quantitative")),
            },
        }
        # The part left out by hand, drawn over the grey bar from the divider (it is part of the dropped tokens).
        left_out = {
            "data": {"name": "rows"},
            "transform": [{"filter": "datum['left out tokens'] > 0"}],
            "mark": {"type": "bar", "color": LEFT_OUT_COLOUR, "size": BAR_PX,
                     "description": {"expr": "datum.row + ': ' + datum['left out tokens'] + "
                                             "' tokens left out by you'"}},
            "encoding": {
                "y": y, "x": {"field": "l0", "type": "quantitative"}, "x2": {"field": "d1"},
                "tooltip": _tooltip(("row", "nominal"), ("left out tokens", "quantitative")),
            },
        }
        divider = {"data": {"name": "rows"}, "transform": [{"aggregate": [{"op": "count", "as": "rows"}]}],
                   "mark": {"type": "rule", "strokeDash": [4, 3], "color": DROPPED_COLOUR, "aria": False},
                   "encoding": {"x": {"datum": DROPPED_SHARE + GAP_SHARE / 2, "type": "quantitative"}}}
        # Only when drawn: an empty layer with a description is an unlabelled graphic to a screen reader.
        shown = [dropped, left_out] if (per_turn["left out tokens"] > 0).any() else [dropped]
        layers = [*shown, divider, *layers]
    return {
        "title": {"text": TITLE, "anchor": "start"},
        "description": description or TITLE,
        "width": "container",
        "height": max(60, rows * ROW_PX),
        "autosize": {"type": "fit-x", "contains": "padding"},
        "layer": layers,
        "datasets": {"blocks": frame, "rows": per_turn},
    }


def _tooltip(*fields: tuple[str, str]) -> list[Row]:
    return [{"field": name, "type": kind} for name, kind in fields]


# -- legend ----------------------------------------------------------------------------------------------------

LEGEND_STYLE = f"""<style>
.hl-legend {{ display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; font-size: 0.875rem; margin: 0 0 0.5rem 0 !important;
  padding: 0 !important; list-style: none; }}
.hl-legend li {{ display: inline-flex; align-items: center; gap: 0.4rem; }}
.hl-swatch {{ display: inline-block; width: 1.6rem; height: 0.9rem; border-radius: 2px; }}
.hl-swatch-new {{ background: #c0c0c0; border: 2px solid #000000; outline: 2px solid #ffffff; }}
.hl-swatch-pinned {{ height: 0.45rem; border-top: 4px solid {PINNED_COLOUR}; }}
.hl-swatch-cached {{ height: 0.45rem; border-bottom: 4px solid {CACHED_COLOUR}; }}
</style>"""


def legend_html(roles: Sequence[str], *, dropped: bool, pinned: bool = False, left_out: bool = False) -> str:
    """The legend as a list that wraps with its column (a Vega legend runs off a narrow chart)."""
    items = [f'<li><span class="hl-swatch" style="background:{ROLE_COLOURS[r]}"></span>{html.escape(r)}</li>'
             for r in roles]
    items.append('<li><span class="hl-swatch hl-swatch-new"></span>new this turn (outlined)</li>')
    items.append(f'<li><span class="hl-swatch hl-swatch-cached" style="background:{ROLE_COLOURS["user"]}">'
                 "</span>cached prefix (thin, over a green rule)</li>")
    if dropped:
        items.append(f'<li><span class="hl-swatch" style="background:{DROPPED_COLOUR}"></span>'
                     "tokens dropped (left of the dashed line)</li>")
    if left_out:
        items.append(f'<li><span class="hl-swatch" style="background:{LEFT_OUT_COLOUR}"></span>'
                     "tokens left out by you (part of the dropped)</li>")
    if pinned:
        items.append(f'<li><span class="hl-swatch hl-swatch-pinned" style="background:{ROLE_COLOURS["user"]}">'
                     "</span>pinned by you (gold rule above)</li>")
    return f'{LEGEND_STYLE}<ul class="hl-legend" aria-label="Legend of the payload timeline">{"".join(items)}</ul>'
