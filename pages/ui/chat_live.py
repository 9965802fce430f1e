"""The turn being sent now: your message at once, the reply streamed, and "Save again" after a store outage.

The chat page calls ``live_turn`` from a fragment (``pages.chat._typed_turn``) into a container placed below
the history, so your message shows as soon as Enter is pressed and the reply streams while the rest of the
page (the history window, the timeline) still shows the previous run's content; then the page reruns.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from lib.chat import PreparedTurn, TurnBody, TurnRequest, TurnResult, save_reply_again, start_turn
from lib.providers import Provider
from lib.sessions import SessionStore
from pages.ui import errors, services, sidebar
from pages.ui.render import render_message_body, stream_message_body
from pages.ui.timeline import render_cost_caption, render_model_report

_ERROR_KEY = "chat_live_error"


def unsaved_key(session_id: str) -> str:
    return f"hl_unsaved_reply__{session_id}"


def turn_request(text: str, session_id: str, choices: sidebar.SidebarChoices, *,
                 budget: int | None = None) -> TurnRequest:
    """What the sidebar asks for; ``reference_model`` only for a provider priced as another model. The stream's
    time limit and the reply cap come from the settings (STREAM_TIME_LIMIT, MAX_REPLY_CHARS)."""
    cfg = services.settings()
    return TurnRequest(
        user_text=text, session_id=session_id, system_prompt=choices.system_prompt,
        strategy=choices.strategy, budget=budget or choices.budget, reserve_tokens=choices.reserve,
        model=choices.model or None, max_output_tokens=sidebar.MAX_OUTPUT_TOKENS, strict=choices.strict,
        prompt_caching=choices.prompt_caching, reference_model=choices.reference_model,
        prices=sidebar.current_prices(), stream_time_limit=cfg.stream_time_limit, max_reply_chars=cfg.max_reply_chars,
        tools=choices.tools,
    )


def provider_for_choices(choices: sidebar.SidebarChoices) -> Provider:
    # The offline model simulates the cache of the model it is priced as, so it is built per reference model.
    options = {"reference_model": choices.reference_model} if choices.reference_model else {}
    return services.provider_for(choices.provider, **options)


def live_turn(store: SessionStore, request: TurnRequest,
              choices: sidebar.SidebarChoices) -> tuple[TurnResult | None, DeltaGenerator | None]:
    """Echo the user message, then store it, send the payload and stream the reply. Returns the result
    (None when nothing was sent: an error before the provider call, already shown) and an empty slot
    inside the reply, where the page puts the turn's badges once its record is read back."""
    with st.chat_message("user"):
        render_message_body(request.user_text, key="chat_live_echo", raw_tab=False)
    with errors.error_boundary() as caught:
        prepared = start_turn(store, provider_for_choices(choices), request)
    if caught.error:
        return None, None
    with st.chat_message("assistant"):
        with errors.error_boundary() as caught:  # e.g. the store failing while saving the reply
            result = stream_reply(prepared)
        if caught.error:
            return None, None
        if result.unsaved:
            st.session_state[unsaved_key(prepared.session_id)] = result
        if result.error is not None:
            errors.show_error(result.error)
        elif result.assistant_message is not None:
            render_cost_caption(result.assistant_message.get("meta"))
            render_model_report(result.assistant_message.get("meta"))
        slot = st.container()
        if result.request is not None:  # None when no request was made: there is no body to show
            with st.expander(f"What was sent this turn (turn {result.turn}): the exact request body"):
                st.code(TurnBody(result.request).text, language="json")
    return result, slot


def stream_reply(prepared: PreparedTurn) -> TurnResult:
    """Stream the reply into the page; the turn is recorded even if the run is stopped half-way."""
    try:
        deltas = prepared.deltas()
        with st.spinner("Waiting for the first token…"):
            first = next(deltas, None)
        if first is not None:
            # Not st.write_stream: it renders raw Markdown, so a streamed remote image would be fetched.
            stream_message_body(_chain(first, deltas), key=f"chat_live_reply_{prepared.turn}", raw_tab=False)
    finally:
        # finish() also runs when a rerun interrupts the stream, so the turn is recorded as interrupted.
        result = prepared.finish()
    return result


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield from itertools.chain([first], rest)


def keep_error(session_id: str, error: BaseException) -> None:
    """A failed turn's error, shown once more on the page's next run (the typed turn's own run ends with a
    rerun of the whole page, which would otherwise wipe it)."""
    st.session_state[_ERROR_KEY] = (session_id, error)


def show_kept_error(session_id: str) -> None:
    kept = st.session_state.pop(_ERROR_KEY, None)
    if kept is not None and kept[0] == session_id:
        errors.show_error(kept[1])


def offer_save_again(store: SessionStore, session_id: str, *, streamed_now: bool) -> None:
    """A reply the store could not keep (an outage) stays on the page with a "Save again" button."""
    result = st.session_state.get(unsaved_key(session_id))
    if result is None:
        return
    if not streamed_now:  # on later reruns the reply is not in the stored history: draw it from memory
        with st.chat_message("assistant"):
            render_message_body(result.text, key=f"chat_unsaved_{result.turn}", raw_tab=False)
            st.warning("This reply is not saved yet.")
    if st.button("Save again", key=f"chat_save_again__{session_id}", type="primary",
                 help="Store the reply shown above now that the store may be back."):
        with errors.error_boundary() as caught:
            save_reply_again(store, result)
        if caught.error:
            return
        del st.session_state[unsaved_key(session_id)]
        st.rerun()
