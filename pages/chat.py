"""Chat: one turn at a time, with the re-sent payload, the trimmed messages, badges and costs in plain sight.

Layout: the chat on the left, the payload timeline on the right (always open, not an expander), the
running cost above both. A long session stays quick: the chat input and the turn you type are a fragment
(``_typed_turn``), so Enter reruns only that and your message shows at once; the reply streams below the
history, then the whole page reruns to draw the new turn. Only a window of turns is drawn and only its
turn records are read (lib.views.chat_window). Widget and session-state keys owned here start with ``chat_``.
"""

from __future__ import annotations

import time

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from lib.chat import ExampleStep, TurnResult
from lib.core import markdown_literal
from lib.sessions import SessionStore, new_session_id
from lib.views import COST_UNIT_NOTE, chat_window, running_total_text
from pages.ui import chat_history, chat_live, errors, example, services, sidebar
from pages.ui.timeline import render_badges, render_timeline

UNKNOWN_KEY = "chat_unknown_session"


def main() -> None:
    st.title("💬 Chat")
    st.caption("The model is stateless: every turn re-sends the conversation. The timeline on the right shows "
               "each request; the badges under each reply say what was sent, dropped and paid (pick the turn in "
               "the timeline to see where each number comes from).")
    url_session = st.query_params.get("session")
    known_session = st.session_state.get(services.SESSION_KEY)
    example.prepare_sidebar(known_session)
    choices = sidebar.page_setup(skip_to_chat_input=True)
    session_id = services.current_session_id()
    if not choices.configured:
        st.error(f"The provider {markdown_literal(repr(choices.provider))} is not configured. "
                 f"{markdown_literal(choices.hint)} Or pick the offline model in the sidebar.")
    step = example.current_step(session_id)
    with errors.error_boundary() as caught:
        store = services.store_handle().store
        _check_linked_session(store, session_id, linked=bool(url_session) and url_session != known_session)
    if caught.error:
        return
    chat_column, timeline_column = st.columns([3, 2], gap="medium")
    with chat_column:
        header, history_box, live_box = st.container(), st.container(), st.container()
    with header:
        example.render_status(session_id, step=step)
    _typed_turn(store, session_id, choices, live_box, disabled=not choices.configured or step is not None)
    result, badge_slot = _send(store, session_id, choices, step, live_box) if step else (None, None)
    with header, errors.error_boundary() as caught:
        view = chat_history.load_view(store, session_id, reference_model=sidebar.reference_model(),
                                      prices=sidebar.current_prices())
    if caught.error:
        return
    if step is not None:
        example.after_step(session_id, step, result, view.history)
    _draw(view, header, history_box, live_box, timeline_column, result=result, store=store)
    if result is not None and badge_slot is not None and str(result.user_message.get("id")) in view.rows:
        with badge_slot:  # inside the reply just streamed
            render_badges(view.rows[str(result.user_message.get("id"))].badges)
    if step is not None:  # one more run after the last step too, so its status reads "finished"
        example.continue_later()


@st.fragment
def _typed_turn(store: SessionStore, session_id: str, choices: sidebar.SidebarChoices, live_box: DeltaGenerator,
                *, disabled: bool) -> None:
    """The chat input and the turn you type, as a fragment: Enter reruns only this function, so the browser
    shows your message at once instead of first redrawing the 100 messages and the timeline of the window
    (that redraw took 2 s at 10,000 messages). Once the reply is stored, the whole page reruns to draw the
    turn in the history, with its badges, and in the timeline (a failed turn too, its error shown again
    below). Only when nothing could be stored (the store is down) does the page stay as drawn here, your
    text and the error on it."""
    with st.bottom:  # pinned at the bottom of the page, as a top-level st.chat_input would be
        prompt = st.chat_input("Your message", key="chat_input", disabled=disabled, submit_mode="disable")
    with live_box:  # written on every run, so that this fragment has a place there when it reruns alone
        slot = st.container()
    if not prompt or not prompt.strip() or disabled:
        return
    chat_history.follow_newest(session_id)  # the window follows your new turn
    with slot:
        result, _ = chat_live.live_turn(store, chat_live.turn_request(prompt, session_id, choices), choices)
    if result is None:  # nothing was stored (the store is down, say): your text and the error stay as drawn
        return
    # The timeline shows the new turn. An unsaved reply is drawn from memory, with "Save again"; a failed
    # turn's error is drawn again below the history (its badges and record say it too).
    show_in_timeline(session_id, result.turn)
    if result.error is not None:
        chat_live.keep_error(session_id, result.error)
    st.rerun()


def _send(store: SessionStore, session_id: str, choices: sidebar.SidebarChoices, step: ExampleStep,
          live_box: DeltaGenerator) -> tuple[TurnResult | None, DeltaGenerator | None]:
    """One step of the example (a full run: the page draws the step's outcome and plays the next)."""
    request = chat_live.turn_request(step.text, session_id, choices, budget=step.budget)
    with live_box:
        return chat_live.live_turn(store, request, choices)


def _draw(view: chat_history.ChatView, header: DeltaGenerator,
          history_box: DeltaGenerator, live_box: DeltaGenerator,
          timeline_column: DeltaGenerator, *, result: TurnResult | None,
          store: SessionStore) -> None:
    session_id = view.session_id
    with header:
        if view.turn_count:
            total = running_total_text(view.total_cost, turns=view.turn_count, unpriced=view.unpriced)
            st.markdown(f"**{markdown_literal(total)}**", help=COST_UNIT_NOTE)
        if not view.history and example.playing(session_id) is None:
            _unknown_session_notice(session_id)
            example.offer(session_id)
        elif view.history:
            st.session_state.pop(UNKNOWN_KEY, None)
    live_ids = _live_ids(result)
    with history_box:
        chat_history.render_window(view, skip=live_ids)
    with live_box:
        chat_live.show_kept_error(session_id)
        chat_live.offer_save_again(store, session_id, streamed_now=result is not None)
    if result is not None and result.turn in view.timeline.turns:
        show_in_timeline(session_id, result.turn)
    with timeline_column:
        _timeline_panel(view)


def _live_ids(result: TurnResult | None) -> set[str]:
    if result is None:
        return set()
    ids = {str(result.user_message.get("id"))}
    if result.assistant_message is not None:
        ids.add(str(result.assistant_message.get("id")))
    return ids


def _timeline_panel(view: chat_history.ChatView) -> None:
    st.header("Payload timeline")
    win = view.window
    if win.total and (win.earlier or win.later):
        first, last = view.first_number + win.first, view.first_number + win.last - 1
        st.caption(f"Turns {first:,}–{last:,} of {view.first_number + win.total - 1:,} (the turns drawn in the chat).")
    render_timeline(view.timeline, key=timeline_key(view.session_id))
    if view.turn_count > 1 and win.total > 1:
        _jump_control(view)


def _jump_control(view: chat_history.ChatView) -> None:
    first, last = view.first_number, view.first_number + view.window.total - 1
    key = f"chat_jump__{view.session_id}"
    # One under the other: side by side in the timeline's column (312 px at 1280) the button read "Show in c…".
    st.number_input("Jump to turn", min_value=first, max_value=last, value=last, step=1, key=key,
                    help="Draw the chat from this turn on (with its badges), and its row in the timeline.")
    st.button("Show in chat", key=f"{key}_go", on_click=_jump, args=(view, key))


def _jump(view: chat_history.ChatView, key: str) -> None:
    turn = int(st.session_state.get(key) or view.first_number)
    index = chat_window.index_of_turn(turn, total=view.window.total, turn_count=view.turn_count)
    chat_history.jump_to(view.session_id, index)
    show_in_timeline(view.session_id, turn)


def timeline_key(session_id: str) -> str:
    return f"chat_timeline__{session_id}"


def show_in_timeline(session_id: str, turn: int) -> None:
    """Make the timeline's turn picker show ``turn`` (it would keep its old choice). Set, not deleted, so the
    browser's picker shows it too."""
    st.session_state[f"{timeline_key(session_id)}__turn"] = turn


def _check_linked_session(store: SessionStore, session_id: str, *, linked: bool) -> None:
    """A ?session= link to a session the store does not hold (unknown, or expired after its TTL)."""
    if linked and not store.exists(session_id):
        st.session_state[UNKNOWN_KEY] = session_id


def _unknown_session_notice(session_id: str) -> None:
    if st.session_state.get(UNKNOWN_KEY) != session_id:
        return
    ttl_hours = services.settings().session_ttl / 3600
    deleted = services.deleted_at(session_id)
    if deleted is not None:  # deleted in this tab, then reopened (Back, or its link)
        st.warning(f"Session `{session_id}` was deleted at {time.strftime('%H:%M:%S', time.localtime(deleted))}, "
                   "in this browser tab: its messages are gone from the store. Anything you send now starts a new "
                   "conversation under this id.", icon=":material/delete:")
    else:
        st.warning(f"Session `{session_id}` was not found: the link is wrong, the session was deleted, or it "
                   f"expired (sessions are kept for {ttl_hours:g} h after their last use). Anything you send now "
                   "starts a new conversation under this id.", icon=":material/history_toggle_off:")
    st.button("Start a new chat", key="chat_unknown_new", on_click=_new_chat)


def _new_chat() -> None:
    st.session_state.pop(UNKNOWN_KEY, None)
    services.set_session(new_session_id())


main()
