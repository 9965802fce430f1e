"""'Play the example' on an empty chat: lib.chat.example's script, played one turn per rerun with a caption each.

Each step goes through the same turn as a typed message (pages.ui.chat_live), so the payload timeline fills
up row by row. The example uses the offline model and the "turns" strategy; from the fact on it moves the
sidebar's budget to lib.chat.example.SMALL_BUDGET, so the class sees the control that causes the forgetting.
Session-state keys start with ``chat_example``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from lib.chat import ExampleProgress, ExampleStep, TurnResult, after, next_step, total_steps_at_most
from lib.providers import OfflineProvider

STATE = "chat_example"  # (session id, ExampleProgress) while playing
LOG = "chat_example_log"  # (session id, [captions], finished)
PAUSE_S = 0.4  # between steps, so each new timeline row can be seen arriving


def playing(session_id: str) -> ExampleProgress | None:
    state = st.session_state.get(STATE)
    return state[1] if state and state[0] == session_id else None


def current_step(session_id: str) -> ExampleStep | None:
    progress = playing(session_id)
    return next_step(progress) if progress is not None else None


def prepare_sidebar(session_id: str | None) -> None:
    """Before the sidebar is drawn: show the budget the next step uses (widget state may be set only then)."""
    step = current_step(session_id) if session_id else None
    if step is not None and step.budget is not None:
        st.session_state["sb_budget"] = step.budget


def offer(session_id: str) -> None:
    """The first-minute button on an empty chat."""
    st.info("New here? **Play the example**: three short turns show the whole conversation re-sent every "
            "time (watch the payload timeline fill up), then a small budget trims old turns until the model "
            "forgets a fact you told it. Or type a message below.")
    st.button("Play the example", key="chat_example_play", type="primary", icon=":material/play_arrow:",
              on_click=start, args=(session_id,))


def start(session_id: str) -> None:
    st.session_state[STATE] = (session_id, ExampleProgress())
    st.session_state[LOG] = (session_id, [], False)
    # The lesson needs the model that tells the truth about its payload, and whole-turn trimming.
    st.session_state["sb_provider"] = OfflineProvider.name
    st.session_state["sb_strategy"] = "turns"


def stop() -> None:
    st.session_state.pop(STATE, None)


def after_step(session_id: str, step: ExampleStep, result: TurnResult | None,
               history: Sequence[Mapping[str, Any]]) -> None:
    """Record the step's outcome; stop on a failed step (the error is already on the page)."""
    progress = playing(session_id)
    sid, captions, _ = st.session_state.get(LOG, (session_id, [], False))
    captions = [*captions, step.caption]
    if progress is None or result is None or result.error is not None:
        stop()  # the error is on the page; the status then reads "stopped"
        st.session_state[LOG] = (session_id, captions, False)
        return
    progress = after(progress, step, result, history)
    done = next_step(progress) is None
    if done:
        stop()
    else:
        st.session_state[STATE] = (session_id, progress)
    st.session_state[LOG] = (session_id, captions, done)


def render_status(session_id: str, *, step: ExampleStep | None) -> None:
    """One short caption per step, in a status box that stays open while the example plays."""
    log = st.session_state.get(LOG)
    if not log or log[0] != session_id:
        return
    captions, finished = log[1], log[2]
    stopped = not finished and playing(session_id) is None
    if finished:
        label = "Example finished. Carry on typing, or change the strategy and budget in the sidebar."
    elif stopped:
        label = "Example stopped. Type a message to carry on from here."
    else:
        label = f"Playing the example: step {len(captions) + 1} of at most {total_steps_at_most()}"
    with st.status(label, state="complete" if finished or stopped else "running",
                   expanded=not (finished or stopped)):
        for n, caption in enumerate(captions, start=1):
            st.markdown(f"**{n}.** {caption}")
        if step is not None:
            st.markdown(f"**{len(captions) + 1}.** {step.caption} *(sending “{step.text}”…)*")
        if not finished and not stopped:
            st.button("Stop the example", key="chat_example_stop", on_click=stop)


def continue_later() -> None:
    """Let the browser draw this step, then run the next one."""
    time.sleep(PAUSE_S)
    st.rerun()
