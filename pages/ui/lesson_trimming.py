"""The Lesson's chapters 5 and 6: the seed's trimHistory against the exact count, the better strategies, the
model forgetting, and manual against server-side history (figures from lib.chat.lesson and lib.chat.strategies).

Session-state keys start with ``lesson_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from lib.chat import (
    LESSON_MODEL,
    LESSON_SYSTEM_PROMPT,
    QUESTION,
    SMALL_BUDGET,
    better_strategies,
    compare_strategies,
    exact_budget,
    offline_model,
    play_forgetting,
    run_seed_turns,
    seed_budget,
    trim_like_the_seed,
)
from lib.core import Message, default_table, markdown_literal, wire_payload
from lib.sessions import MemoryStore, SessionStore
from lib.tokens import ESTIMATE_LABEL, count_label, message_breakdown
from pages.ui import services
from pages.ui.compare_results import plain_table
from pages.ui.compare_strategies import show_comparison
from pages.ui.lesson_sessions import SESSION, guarded, lesson_session, run_store_turns
from pages.ui.timeline import render_model_report

FORGETTING = "lesson_forgetting"  # chapter 5: the steps of the example's second half, as table rows
ANSWER = "lesson_answer"  # chapter 5: (reply, its meta) of the question at the end


def seed_payload() -> list[dict[str, Any]]:
    """The payload of the seed's turn 3 with the lesson's system prompt: from the lesson's session when it has
    one, else from three turns run now in a scratch MemoryStore (the same script)."""
    session_id = lesson_session()
    store: SessionStore = services.store_handle().store if session_id else MemoryStore()
    if session_id is None:
        session_id = run_seed_turns(store, offline_model())[-1].session_id
    history = store.get_history(session_id)[:5]
    payload, _ = wire_payload([{"role": "system", "content": LESSON_SYSTEM_PROMPT}, *history])
    return payload


def trimming() -> None:
    """Chapter 5: the seed's trimHistory, the better strategies on the same payload, then the forgetting."""
    payload = seed_payload()
    st.subheader("The seed's trimHistory on turn 3's payload")
    default = seed_budget(payload)
    budget = int(st.number_input("Budget for trimHistory (tokens)", min_value=1, max_value=10_000, value=default,
                                 key="lesson_seed_budget",
                                 help="Starts one token under the payload's chars/4 estimate, so the seed must "
                                      "remove something."))
    view = trim_like_the_seed(payload, budget)
    (st.error if view.refusal else st.success)(markdown_literal(view.belief))
    _payload_table(payload, removed=len(payload) - len(view.kept))
    exact = markdown_literal(count_label("tiktoken", model=LESSON_MODEL))
    st.caption(f"Estimates: {markdown_literal(ESTIMATE_LABEL)} of each content, {view.estimate_before:,} before "
               f"trimming and {view.estimate:,} after. Tokens: {exact}, with the per-message overhead and 3 to "
               "prime the reply.")
    for problem in view.problems:
        st.error(f"Invalid payload: {markdown_literal(problem)}")
    if view.refusal:
        st.caption(f"The offline model, given {budget:,} tokens as its context window and strict validation, "
                   f"answered: {markdown_literal(view.refusal)}")
    _better(payload)
    _forgetting()


def _payload_table(payload: Sequence[Message], *, removed: int) -> None:
    rows = message_breakdown(payload, LESSON_MODEL)
    # The seed removes index 1 again and again: the removed messages are the ones right after the system prompt.
    plain_table(pd.DataFrame([{"#": r.index, "role": r.role, "content": str(m.get("content", "")),
                               "chars/4": r.estimate, "tokens": r.exact,
                               "trimHistory": "removed" if 1 <= r.index <= removed else "kept"}
                              for r, m in zip(rows, payload, strict=True)]).set_index("#"))


def _better(payload: Sequence[Message]) -> None:
    budget = exact_budget(payload)
    st.subheader("Whole turns, cache-aware and summary on the same payload")
    st.caption(f"Budget {budget:,} tokens: one under the payload's exact count, so each must trim "
               f"({markdown_literal(count_label('tiktoken', model=LESSON_MODEL))}).")
    rows = []
    for view in better_strategies(payload, budget):
        rows.append({"strategy": view.label, "sent": " · ".join(str(m.get("content")) for m in view.kept)
                     or "nothing", "dropped": " · ".join(str(m.get("content")) for m in view.dropped) or "nothing",
                     "tokens": "—" if view.exact is None else f"{view.exact:,}",
                     "valid": view.error or ("; ".join(view.problems) if view.problems else "yes: starts with a user "
                                             "message after the system prompt")})
    plain_table(pd.DataFrame(rows).set_index("strategy"))


def _forgetting() -> None:
    st.subheader(f"The model forgets: play on at {SMALL_BUDGET} tokens")
    st.button("Play on: state a fact, fill the window, ask for it", key="lesson_forget", type="primary",
              icon=":material/play_arrow:", on_click=guarded(_play_forgetting))
    rows = st.session_state.get(FORGETTING)
    if not rows:
        st.caption("Continues this lesson's session (the three turns first, if it has none) with the same script "
                   "as Play the example on the Chat page, whole-turn trimming.")
        return
    plain_table(pd.DataFrame(rows).set_index("turn"))
    answer = st.session_state.get(ANSWER)
    if answer is not None:
        with st.chat_message("assistant"):
            st.markdown(markdown_literal(answer[0]))
            render_model_report(answer[1])


def _play_forgetting() -> None:
    if lesson_session() is None:
        run_store_turns()
    session_id = st.session_state[SESSION]
    steps = play_forgetting(services.store_handle().store, offline_model(), session_id)
    st.session_state[FORGETTING] = [{
        "turn": s.result.turn, "you said": s.step.text, "the model replied": s.result.text or "(no reply)",
        "sent": s.result.record.sent_count, "dropped": s.result.record.dropped_count,
        "a message holding the fact was sent": "yes" if s.fact_sent else "no"} for s in steps]
    last = steps[-1].result
    meta = (last.assistant_message or {}).get("meta")
    st.session_state[ANSWER] = (last.text, meta) if last.assistant_message else None
    if last.error is not None:
        raise last.error


def server_side() -> None:
    """Chapter 6: the seed's closing comparison, live, on this lesson's conversation (simulated offline)."""
    session_id = lesson_session()
    history = services.store_handle().store.get_history(session_id) if session_id else []
    if not history:
        store = MemoryStore()
        history = store.get_history(run_seed_turns(store, offline_model())[-1].session_id)
        st.caption("This lesson has no stored session (chapter 3 makes one), so the three turns were run just now.")
    reference = services.settings().reference_model
    model = reference if reference in default_table() and reference.startswith("gpt") else "gpt-4o-mini"
    st.caption(f"{len(history):,} stored messages, and the next message “{markdown_literal(QUESTION.text)}”, counted, "
               f"cached and priced as {markdown_literal(model)} at a budget of {SMALL_BUDGET:,} tokens. SIMULATED "
               "offline: no provider is called.")
    result = compare_strategies(history, QUESTION.text, model=model, budget=SMALL_BUDGET,
                                system_prompt=LESSON_SYSTEM_PROMPT, prices=default_table())
    show_comparison(result)
