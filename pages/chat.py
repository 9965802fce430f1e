"""Chat: one turn at a time, with the re-sent payload, the trimmed messages and the token counts visible."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import streamlit as st

from lib.chat import PreparedTurn, TurnRequest, TurnResult, save_reply_again, start_turn
from lib.records import ReplyMeta, TurnRecord, read_turns, rebuild_request
from lib.sessions import SessionStore
from lib.tokens import choose_encoding
from pages import errors, services, sidebar

log = logging.getLogger(__name__)
DROPPED_MARK = "✂ not sent in the last payload (trimmed)"


def last_turn_key(session_id: str) -> str:
    return f"hl_last_turn__{session_id}"


def unsaved_key(session_id: str) -> str:
    return f"hl_unsaved_reply__{session_id}"


def offer_save_again(store: SessionStore, session_id: str, *, streamed_now: bool) -> None:
    """A reply the store could not keep (an outage) stays on the page with a "Save again" button."""
    result = st.session_state.get(unsaved_key(session_id))
    if result is None:
        return
    if not streamed_now:  # on later reruns the reply is not in the stored history: draw it from memory
        with st.chat_message("assistant"):
            st.markdown(result.text)
            st.warning("This reply is not saved yet.")
    if st.button("Save again", key=f"chat_save_again__{session_id}", type="primary",
                 help="Store the reply shown above now that the store may be back."):
        try:
            save_reply_again(store, result)
        except Exception as exc:  # noqa: BLE001 - the one error boundary
            errors.show_error(exc)
            return
        del st.session_state[unsaved_key(session_id)]
        st.rerun()


def reply_caption(meta: object) -> str:
    """'in 120 · out 48 tokens · first token 0.21 s · total 1.30 s · offline / offline-teacher'.

    Whatever the stored meta holds: a figure of the wrong type reads as missing ("?").
    """
    reply = ReplyMeta.from_json(meta)
    usage = reply.usage
    parts = [f"in {_n(usage.input_tokens if usage else None)} · out {_n(usage.output_tokens if usage else None)}"
             " tokens"]
    if usage and (usage.cache_read_tokens or usage.cache_write_tokens):
        label = "simulated cache" if usage.simulated else "cache"
        parts.append(f"{label} read {_n(usage.cache_read_tokens)} / write {_n(usage.cache_write_tokens)}")
    parts.append(f"first token {_s(reply.ttft)} · total {_s(reply.total)}")
    if reply.cost is not None:
        parts.append(f"${reply.cost:,.6f} ({reply.cost_source or 'estimate'})")
    if reply.provider:
        parts.append(f"{reply.provider} / {reply.model or '?'}")
    return " · ".join(parts)


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _s(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} s"


def render_history(
    history: Iterable[Mapping[str, Any]], dropped: set[str], failed: Mapping[str, str]
) -> None:
    for message in history:
        with st.chat_message(message.get("role", "user")):
            content = message.get("content", "")
            if isinstance(content, str):
                st.markdown(content)
            else:
                st.json(content)
            if message.get("id") in dropped:
                st.caption(DROPPED_MARK)
            if message.get("role") == "assistant":
                st.caption(reply_caption(message.get("meta")))
            if message.get("id") in failed:
                st.caption(f"⚠ no reply to this message: {failed[message['id']]}")


def stream_reply(prepared: PreparedTurn) -> TurnResult:
    """Stream the reply into the page; the turn is recorded even if the run is stopped half-way."""
    try:
        deltas = prepared.deltas()
        with st.spinner("Waiting for the first token…"):
            first = next(deltas, None)
        if first is not None:
            st.write_stream(_chain(first, deltas))
    finally:
        # finish() also runs when a rerun interrupts the stream, so the turn is recorded as interrupted.
        result = prepared.finish()
    return result


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield from itertools.chain([first], rest)


def payload_view(result: TurnResult) -> dict[str, Any]:
    """What the 'What was sent' expander needs, kept in session state for later reruns."""
    return {"turn": result.turn, "request": result.request, "payload": result.payload,
            "record": result.record}


def view_from_record(record: TurnRecord, history: list[Mapping[str, Any]], meta: Mapping[str, str]) -> dict[str, Any]:
    """Rebuild the request from a stored turn record (after a reload the exact body is gone from memory)."""
    body = rebuild_request(record, history, meta)
    return {"turn": record.turn, "request": None, "payload": body["messages"], "record": record,
            "missing": body.get("missing", [])}


def render_sent(view: Mapping[str, Any], history: list[Mapping[str, Any]]) -> None:
    record: TurnRecord = view["record"]
    with st.expander(f"What was sent this turn (turn {view['turn']})", expanded=False):
        exact = record.exact
        choice = choose_encoding(record.model or "")
        cols = st.columns(3)
        cols[0].metric("Estimate (chars/4)", _n(record.estimate))
        cols[1].metric("Exact (tiktoken)", _n(exact), help=choice.label if exact is not None else
                       "Encoding unavailable: only the estimate is shown.")
        cols[2].metric("Provider reported input", _n(record.usage.prompt_total if record.usage else None))
        encoding = choice.label if exact is not None else "unavailable (estimate only)"
        st.caption(f"Encoding: {encoding} · strategy {record.strategy} · budget "
                   f"{_n(record.budget)} (reserve {_n(record.reserve)}) · "
                   f"{record.provider} / {record.model}")
        if record.previous_response_id:
            st.info("Server-side history: only the new message was sent, with previous_response_id="
                    f"`{record.previous_response_id}`. Every earlier input token is still billed.")
        for problem in record.problems:
            st.warning(problem)
        for gap in view.get("missing", []):
            st.caption(f"Not shown: {gap}.")
        _kept_and_dropped(record, history)
        if view.get("request") is not None:
            st.markdown("**Exact request body** (no API key)")
            st.json(view["request"])
        else:
            note = "not sent" if record.failed else "rebuilt from the turn record"
            st.markdown(f"**Payload** ({note})")
            st.json(view["payload"])


def _kept_and_dropped(record: TurnRecord, history: list[Mapping[str, Any]]) -> None:
    sent, dropped = set(record.sent_ids(history)), set(record.dropped_ids(history))
    lines = []
    for message in history:
        mid = message.get("id")
        if mid in sent:
            mark = "✅ sent"
        elif mid in dropped:
            mark = "✂ dropped"
        else:
            continue
        text = str(message.get("content", "")).replace("\n", " ")
        lines.append(f"- {mark} · **{message.get('role')}**: {text[:80]}{'…' if len(text) > 80 else ''}")
    system = " (system prompt included)" if record.system_sent else ""
    st.markdown(f"**{record.sent_count} sent{system}, {record.dropped_count} dropped**")
    if lines:
        st.markdown("\n".join(lines))


def _request(prompt: str, session_id: str, choices: sidebar.SidebarChoices) -> TurnRequest:
    return TurnRequest(
        user_text=prompt, session_id=session_id, system_prompt=choices.system_prompt,
        strategy=choices.strategy, budget=choices.budget, reserve_tokens=choices.reserve,
        model=choices.model or None, max_output_tokens=sidebar.MAX_OUTPUT_TOKENS,
    )


def main() -> None:
    st.title("💬 Chat")
    st.caption("The model is stateless: every turn re-sends the conversation. "
               "Open *What was sent* to see it.")
    choices = sidebar.page_setup()
    session_id = services.current_session_id()
    if not choices.configured:
        st.error(f"The provider {choices.provider!r} is not configured. {choices.hint} "
                 "Or pick the offline model in the sidebar.")
    prompt = st.chat_input("Your message", key="chat_input", disabled=not choices.configured,
                           submit_mode="disable")
    try:
        store = services.store_handle().store
        prepared = None
        if prompt and prompt.strip():
            provider = services.provider_for(choices.provider)
            prepared = start_turn(store, provider, _request(prompt, session_id, choices))
        history = store.get_history(session_id)
        turns = read_turns(store.get_turns(session_id))
        meta = store.get_meta(session_id)
    except Exception as exc:  # noqa: BLE001 - the one error boundary
        errors.show_error(exc)
        return

    failed = {t.user_id: t.error for t in turns if t.error and t.user_id}
    if prepared is not None:
        failed.pop(prepared.user_message["id"], None)  # this turn's outcome is shown live below
        dropped = set(prepared.dropped_ids)
    else:
        dropped = set(turns[-1].dropped_ids(history)) if turns else set()
    if not history:
        st.info("Say something to start. Pick a small token budget in the sidebar to watch old turns get "
                "trimmed, and ask the offline model what it can still see.")
    render_history(history, dropped, failed)

    if prepared is not None:
        with st.chat_message("assistant"):
            try:
                result = stream_reply(prepared)
            except Exception as exc:  # noqa: BLE001 - e.g. the store failing while saving the reply
                errors.show_error(exc)
                return
            if result.unsaved:
                st.session_state[unsaved_key(session_id)] = result
            if result.error is not None:
                errors.show_error(result.error)
            elif result.assistant_message is not None:
                st.caption(reply_caption(result.assistant_message.get("meta")))
        st.session_state[last_turn_key(session_id)] = payload_view(result)
        history = [*history, result.assistant_message] if result.assistant_message else history

    offer_save_again(store, session_id, streamed_now=prepared is not None)
    view = st.session_state.get(last_turn_key(session_id))
    if view is None and turns:
        view = view_from_record(turns[-1], history, meta)
    if view is not None:
        render_sent(view, history)


main()
