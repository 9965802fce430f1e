"""The timeline renderer in a tiny script: 200 turns render, a turn can be chosen, badges are coloured."""

from __future__ import annotations

import json
import re

from streamlit.testing.v1 import AppTest

from lib.providers import reset_simulated_caches
from lib.views import build_timeline
from pages.ui.timeline_chart import MAX_BLOCKS, timeline_chart, timeline_frames
from tests.support.apptest_helpers import shown
from tests.support.timelines import LONG_SYSTEM, play, timeline_of
from tests.support.vega import assert_valid_vega_lite


def timeline_script(turns: int, budget: int, strategy: str) -> None:
    """Runs inside AppTest: plays a session on the offline model once, then renders its timeline."""
    import streamlit as st

    from lib.chat import TurnRequest, run_turn
    from lib.providers import OfflineProvider
    from lib.sessions import MemoryStore
    from lib.views import build_timeline
    from pages.ui.timeline import render_badges, render_cost_caption, render_timeline

    if "session" not in st.session_state:
        store, provider, session_id = MemoryStore(), OfflineProvider(delay=0), None
        for n in range(turns):
            result = run_turn(store, provider, TurnRequest(
                user_text=f"Turn {n}: tell me about the year {1800 + n} ![x](http://example.invalid/x.png)",
                session_id=session_id, system_prompt="You are a *patient* tutor.", budget=budget,
                strategy=strategy, reference_model="gpt-4o-mini"))
            session_id = result.session_id
        st.session_state.session = (store, session_id)
    store, session_id = st.session_state.session
    if session_id is None:  # no turn played: an empty session
        data = build_timeline([], [])
    else:
        data = build_timeline(store.get_history(session_id), store.get_turns(session_id),
                              meta=store.get_meta(session_id), reference_model="gpt-4o-mini")
    shown = render_timeline(data, key="tl", selected_turn=None)
    st.text(f"shown={shown}")
    if shown is not None:
        render_badges(data.row(shown).badges)
        reply = next(m for m in reversed(store.get_history(session_id)) if m["role"] == "assistant")
        render_cost_caption(reply.get("meta"), total=data.total_cost, turns=len(data.rows),
                            unpriced=data.unpriced_turns)


def badge_directives(at: AppTest) -> list[str]:
    """Each ``:colour-badge[...]`` directive on the page (a turn's badges share one Markdown element)."""
    return [":" + part.lstrip(":") for m in at.markdown if "-badge[" in m.value
            for part in re.split(r" (?=:[a-z]+-badge\[)", m.value)]


def test_a_200_turn_timeline_renders_and_a_turn_can_be_chosen() -> None:
    reset_simulated_caches()
    at = AppTest.from_function(timeline_script, args=(200, 600, "turns"), default_timeout=180).run()
    assert not at.exception, at.exception
    assert at.text[0].value == "shown=200"  # the newest turn by default
    assert at.get("vega_lite_chart")
    badges = badge_directives(at)
    assert any(b.startswith(":blue-badge[") and "sent" in b for b in badges)
    assert any(b.startswith(":violet-badge[") and "dropped" in b for b in badges)
    assert not any("![" in m.value for m in at.markdown)  # content never becomes an image
    at.selectbox(key="tl__turn").set_value(3).run()
    assert not at.exception, at.exception
    assert at.text[0].value == "shown=3"
    assert any("**Turn 3**" in m.value for m in at.markdown)
    assert any(c.value.startswith("in ") and "cost" in c.value for c in at.caption)
    assert any(shown(m.value).startswith("**Running total:") for m in at.markdown)


def test_an_empty_session_says_what_will_appear() -> None:
    at = AppTest.from_function(timeline_script, args=(0, 600, "turns"), default_timeout=60).run()
    assert not at.exception
    assert "payload timeline fills up" in at.info[0].value
    assert at.text[0].value == "shown=None"


def test_failed_turns_render_red_badges() -> None:
    at = AppTest.from_function(timeline_script, args=(6, 90, "seed"), default_timeout=60).run()
    assert not at.exception, at.exception
    red: list[str] = []
    for turn in at.selectbox(key="tl__turn").options:  # the seed fails on some turn at this budget
        at.selectbox(key="tl__turn").set_value(int(turn.removeprefix("Turn "))).run()
        red += [b for b in badge_directives(at) if b.startswith(":red-badge[")]
    # A seed turn over budget says what its chars/4 arithmetic believed against the exact count.
    assert any("the API refuses it" in b for b in red) and any("rejected" in b for b in red), red


def test_the_chart_spec_is_valid_and_merges_blocks_when_too_many() -> None:
    store, sid, _ = play([f"Question {n}" for n in range(8)], budget=2_400, system=LONG_SYSTEM)
    data = timeline_of(store, sid)
    frame, dropped, note = timeline_frames(data, selected=2)
    spec = timeline_chart(frame, dropped, rows=len(data.rows))
    assert_valid_vega_lite(spec)
    assert spec["layer"] and note is None
    assert set(spec["datasets"]) == {"blocks", "rows"}
    # Rows are ordered by turn number (a field), so the spec does not depend on the order of the rows.
    assert timeline_chart(frame.iloc[::-1], dropped, rows=len(data.rows))["layer"] == spec["layer"]
    assert list(dropped["row"])[1] == "▶ Turn 2"
    history = [{"id": f"m{n}", "role": "user" if n % 2 == 0 else "assistant", "content": f"m {n}"}
               for n in range(2 * 120)]
    records = [{"turn": t, "sent": [[history[0]["id"], history[2 * t - 2]["id"]]], "sent_count": 2 * t - 1,
                "model": "gpt-4o-mini", "user_id": history[2 * t - 2]["id"]} for t in range(1, 121)]
    big = build_timeline(history, records)
    frame, _, note = timeline_frames(big)
    assert sum(len(big.blocks(t)) for t in big.turns) > MAX_BLOCKS
    assert note is not None and len(frame) < MAX_BLOCKS


def test_a_long_request_body_is_drawn_on_request_and_a_short_one_at_once() -> None:
    reset_simulated_caches()
    at = AppTest.from_function(timeline_script, args=(70, 200_000, "turns"), default_timeout=240).run()
    assert not at.exception, at.exception
    json_code = [c for c in at.code if c.language == "json"]
    assert not json_code  # turn 70 re-sends 139 messages: too long to highlight on every load
    label = next(e.label for e in at.expander if e.label.startswith("Show it:"))
    assert re.search(r"Show it: 140 messages, \d+ KB of JSON", label), label  # the system prompt + 139
    at.session_state["tl__body_70"] = True
    at.run()
    body = next(c.value for c in at.code if c.language == "json")
    assert body.count('"role"') == 140 and "Turn 69" in body
    at.selectbox(key="tl__turn").set_value(1).run()
    assert any(c.language == "json" and "Turn 0" in c.value for c in at.code)  # short: shown at once


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_chart_fits_its_column_says_what_it_shows_and_reads_in_both_themes() -> None:
    from pages.ui.timeline_chart import (
        CACHED_COLOUR,
        DROPPED_COLOUR,
        LEFT_OUT_COLOUR,
        PINNED_COLOUR,
        ROLE_COLOURS,
        legend_html,
        roles_drawn,
    )
    store, sid, _ = play([f"Question {n}" for n in range(6)], budget=120)
    data = timeline_of(store, sid)
    frame, per_turn, _ = timeline_frames(data)
    spec = timeline_chart(frame, per_turn, rows=len(data.rows), description="6 requests drawn.")
    assert_valid_vega_lite(spec)
    assert spec["width"] == "container" and "hconcat" not in spec  # a concat cannot follow its column
    assert spec["title"]["text"] and spec["description"] == "6 requests drawn."
    # Graphics need 3:1 against the background: white (light theme) and #171614 (dark theme).
    for colour in [*ROLE_COLOURS.values(), DROPPED_COLOUR, CACHED_COLOUR, PINNED_COLOUR, LEFT_OUT_COLOUR]:
        assert contrast(colour, "#ffffff") >= 3 and contrast(colour, "#171614") >= 3, colour
    marks = json.dumps(spec["layer"])
    assert "opacity" not in marks.replace("fillOpacity", "")  # states are not told apart by paleness
    outline = next(layer for layer in spec["layer"] if "layer" in layer)["layer"]
    assert [(m["mark"]["stroke"], m["mark"]["strokeWidth"]) for m in outline] == [("#ffffff", 5), ("#000000", 2)]
    # The axis reads in whole tokens: its ticks sit on the shared 0..1 scale, labelled in tokens.
    axis = next(layer for layer in spec["layer"] if layer.get("mark", {}).get("type") == "bar"
                and layer["data"]["name"] == "blocks")["encoding"]["x"]["axis"]
    assert all(0 <= u <= 1 for u in axis["values"]) and "0.000000" not in axis["labelExpr"]
    legend = legend_html(roles_drawn(frame), dropped=True)
    assert "<ul" in legend and "new this turn" in legend and "dropped" in legend


def test_a_chart_with_nothing_dropped_has_no_dropped_panel() -> None:
    store, sid, _ = play(["Hello", "What's 2+2?"], budget=80_000)
    data = timeline_of(store, sid)
    frame, per_turn, _ = timeline_frames(data)
    spec = timeline_chart(frame, per_turn, rows=len(data.rows))
    assert_valid_vega_lite(spec)
    assert len(spec["layer"]) == 3  # blocks, the new-this-turn outline, the cached rule: no dropped panel
    assert "dropped" not in json.dumps(spec["layer"][0]["encoding"]["x"]["axis"]["title"])


def test_the_tools_a_pinned_turn_and_a_left_out_turn_are_drawn_apart() -> None:
    from lib.chat import TurnRequest, run_turn, set_turn_state, user_turns
    from lib.core import TOOL_SET
    from lib.providers import OfflineProvider
    from lib.sessions import MemoryStore
    from pages.ui.timeline_chart import LEFT_OUT_COLOUR, PINNED_COLOUR, ROLE_COLOURS, legend_html, roles_drawn

    store, provider, sid = MemoryStore(), OfflineProvider(delay=0), "drawn"
    for n in range(4):
        run_turn(store, provider, TurnRequest(user_text=f"Question {n} " + "word " * 30, session_id=sid,
                                              budget=100_000, tools=TOOL_SET))
    turns = user_turns(store.get_history(sid), store.turn_count(sid))
    set_turn_state(store, sid, turns[1], "pinned")
    set_turn_state(store, sid, turns[2], "left_out")
    run_turn(store, provider, TurnRequest(user_text="And now?", session_id=sid, budget=100_000, tools=TOOL_SET))
    data = timeline_of(store, sid)
    frame, per_turn, _ = timeline_frames(data)
    spec = timeline_chart(frame, per_turn, rows=len(data.rows))
    assert_valid_vega_lite(spec)
    assert roles_drawn(frame)[0] == "tools" and "tools" in ROLE_COLOURS
    marks = json.dumps(spec["layer"])
    assert PINNED_COLOUR in marks and LEFT_OUT_COLOUR in marks
    last = per_turn[per_turn["turn"] == 5].iloc[0]
    assert 0 < last["left out tokens"] <= last["dropped tokens"]
    pinned = frame[(frame["turn"] == 5) & (frame["you chose"] == "pinned")]
    assert len(pinned) == 2 and set(pinned["message turn"]) == {1}
    legend = legend_html(roles_drawn(frame), dropped=True, pinned=True, left_out=True)
    assert "pinned by you" in legend and "left out by you" in legend
