"""The history window of the chat: messages, per-turn badges, costs, and where the context window starts.

``load_view`` reads what one window needs (the session's history, which the store keeps incrementally,
and one slice of turn records); ``render_window`` draws it. Messages that the newest payload did not
send are marked (a dashed red border, a tint and a ✂ label; pages.ui.style), behind a red "context window
starts here" divider that reads on a projector in either theme. Each turn ends with its badges
(lib.views.badges via pages.ui.timeline). Session-state keys start with ``chat_``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

import streamlit as st

from lib.chat import MESSAGE as INTERRUPTED_MESSAGE
from lib.chat import STATUS as INTERRUPTED_STATUS
from lib.chat import interrupted_turns, set_turn_state, unanswered
from lib.context import MANUAL_HELP, MANUAL_STRATEGIES, ManualChoice
from lib.core import Message, Price, TurnRecord, content_text, markdown_literal, read_turns
from lib.costs import running_costs
from lib.sessions import SessionStore
from lib.views import Timeline, TurnRow, Window, build_timeline, chat_window, turn_badges
from pages.ui import errors, services
from pages.ui.render import render_message_body, render_raw
from pages.ui.timeline import render_badges, render_cost_caption, render_model_report
from pages.ui.token_view import render_token_view

TOKEN_VIEW_KEY = "chat_token_view"


@dataclass
class ChatView:
    """Everything one rerun draws: the stored history, the window, and the rows of the turns drawn."""

    session_id: str
    history: Sequence[Message]
    spans: list[tuple[int, int]]
    window: Window
    turn_count: int
    timeline: Timeline
    rows: dict[str, TurnRow] = field(default_factory=dict)  # by the turn's user message id
    dropped: set[str] = field(default_factory=set)  # not sent in the newest payload
    newest_turn: int | None = None
    total_cost: float = 0.0
    unpriced: int = 0
    interrupted: set[str] = field(default_factory=set)  # user message ids whose server stopped mid-turn
    choice: ManualChoice = field(default_factory=ManualChoice)  # "You choose": the session's pinned/left-out turns
    left_out: set[str] = field(default_factory=set)  # left out by hand in the newest payload (part of ``dropped``)

    @property
    def first_number(self) -> int:
        return chat_window.first_turn_number(len(self.spans), self.turn_count)


def window_key(session_id: str) -> str:
    return f"chat_window__{session_id}"


def window_state(session_id: str) -> tuple[int, int | None]:
    """(size, start): start None follows the newest turns."""
    size, start = st.session_state.get(window_key(session_id), (chat_window.DEFAULT_WINDOW, None))
    return int(size), start


def show_earlier(session_id: str) -> None:
    size, start = window_state(session_id)
    earlier = None if start is None else max(0, start - chat_window.STEP)
    st.session_state[window_key(session_id)] = (size + chat_window.STEP, earlier)


def jump_to(session_id: str, index: int) -> None:
    st.session_state[window_key(session_id)] = (chat_window.DEFAULT_WINDOW, max(0, index))


def follow_newest(session_id: str) -> None:
    st.session_state.pop(window_key(session_id), None)


def load_view(store: SessionStore, session_id: str, *, reference_model: str | None,
              prices: Mapping[str, Price] | None = None) -> ChatView:
    """The window's history and turn records (one slice), and the timeline rows of the turns drawn."""
    history = store.get_history(session_id)
    spans = chat_window.turn_spans(history)
    size, start = window_state(session_id)
    win = chat_window.window(len(spans), size=size, start=start)
    turn_count = store.turn_count(session_id)
    lo, hi = chat_window.record_slice(win, turn_count=turn_count)
    records = read_turns(store.get_turns(session_id, lo, hi)) if hi > lo else []
    meta = store.get_meta(session_id) if history else {}
    timeline = build_timeline(history, records, meta=meta, reference_model=reference_model, prices=prices)
    costs = running_costs(session_id, history)
    before = costs.before(_position(history, timeline.rows[0].record.user_id) if timeline.rows else None)
    if before:  # the slice starts mid-session: running totals include the turns before it
        timeline.rows = [_with_total(row, row.running_total + before) for row in timeline.rows]
    rows = {row.record.user_id: row for row in timeline.rows if row.record.user_id}
    newest = _newest_record(store, session_id, records, turn_count)
    dropped = set(newest.dropped_ids(history)) if newest else set()
    return ChatView(session_id, history, spans, win, turn_count, timeline, rows, dropped,
                    newest.turn if newest else None, costs.total, costs.unpriced,
                    _interrupted(store, session_id, history, spans, win, records), ManualChoice.from_meta(meta),
                    set(newest.left_out_ids(history)) if newest else set())


def _interrupted(store: SessionStore, session_id: str, history: Sequence[Message], spans: Sequence[tuple[int, int]],
                 win: Window, records: Sequence[TurnRecord]) -> set[str]:
    """The window's turns whose server stopped mid-turn. Only a user message with no reply and no record in
    the window's slice of records can be one, so the other records are read only when such a message shows."""
    if not win.total or win.last <= win.first:
        return set()
    lo, hi = spans[win.first][0], spans[win.last - 1][1]
    recorded = {r.user_id for r in records}
    if all(history[lo + n].get("id") in recorded for n in unanswered(history[lo:hi])):
        return set()
    shown = {m.get("id") for m in history[lo:hi]}
    every = read_turns(store.get_turns(session_id))
    return {t.user_id for t in interrupted_turns(history, every) if t.user_id in shown}


def _with_total(row: TurnRow, running_total: float) -> TurnRow:
    fixed = replace(row, running_total=running_total)
    return replace(fixed, badges=tuple(turn_badges(fixed)))


def _position(history: Sequence[Message], message_id: str | None) -> int | None:
    # Searched from the end: the window's first turn is near the end of a long history.
    for n in range(len(history) - 1, -1, -1):
        if history[n].get("id") == message_id:
            return n
    return None


def _newest_record(store: SessionStore, session_id: str, records: Sequence[TurnRecord],
                   turn_count: int) -> TurnRecord | None:
    """The newest turn's record: the window's last one when the window reaches it, else one more read."""
    if not turn_count:
        return None
    if records and records[-1].turn == turn_count:
        return records[-1]
    newest = store.get_turns(session_id, -1)
    return TurnRecord.from_json(newest[-1]) if newest else None


# -- drawing -------------------------------------------------------------------------------------------------


def render_window(view: ChatView, *, skip: Collection[str] = ()) -> None:
    """The window of turns, oldest first; ``skip``: ids drawn elsewhere (the turn being sent now)."""
    win = view.window
    if win.earlier:
        st.button(f"Show earlier turns ({win.earlier:,} not shown)", key=f"chat_earlier__{view.session_id}",
                  on_click=show_earlier, args=(view.session_id,), icon=":material/expand_less:")
    positions_dropped = _dropped_positions(view)
    start_position = view.spans[win.first][0] if win.total else 0
    divider_due = any(p < start_position for p in positions_dropped)
    for index in range(win.first, win.last):
        start, stop = view.spans[index]
        for position in range(start, stop):
            message = view.history[position]
            message_id = str(message.get("id", ""))
            if message_id in skip:
                continue
            dropped = message_id in view.dropped
            if dropped and message_id not in view.left_out:  # trimmed: the window starts after these
                divider_due = True
            elif divider_due:
                _window_divider(view)
                divider_due = False
            last = position == stop - 1
            _message(view, message, position, dropped=dropped, row=_row_of(view, start) if last else None)
            if position == start and message.get("role") == "user":
                _choice_control(view, message_id)
    if win.later:
        st.button(f"Show the newest turns ({win.later:,} after these)", key=f"chat_newest__{view.session_id}",
                  on_click=follow_newest, args=(view.session_id,), icon=":material/expand_more:")


def _dropped_positions(view: ChatView) -> list[int]:
    """Positions of the messages the trimmer dropped (not those left out by hand) in the newest payload."""
    trimmed = view.dropped - view.left_out
    if not trimmed:
        return []
    return [n for n, m in enumerate(view.history) if m.get("id") in trimmed]


def _row_of(view: ChatView, turn_start: int) -> TurnRow | None:
    first = view.history[turn_start]
    return view.rows.get(str(first.get("id"))) if first.get("role") == "user" else None


def _window_divider(view: ChatView) -> None:
    count = len(view.dropped - view.left_out)
    st.html(f'<div class="hl-window-start">✂ Context window starts here — the {count:,} message'
            f'{"s" * (count != 1)} above {"were" if count != 1 else "was"} not sent in turn '
            f'{view.newest_turn}, the newest request.</div>')
    _summary_sent(view)


def _summary_sent(view: ChatView) -> None:
    """With the summary strategy, what was sent in place of the dropped turns, openable."""
    newest = next((row for row in view.timeline.rows if row.turn == view.newest_turn), None)
    summary = newest.summary if newest is not None else None
    if summary is None:
        return
    with st.expander(f"Summary of turns {summary.first_turn}–{summary.last_turn}: sent in their place "
                     f"({summary.tokens:,} tokens)", icon=":material/compress:"):
        render_message_body(summary.text, key=f"chat_summary_{summary.first_turn}_{summary.last_turn}")


CHOICE_LABELS = {"pinned": "📌 Pin: always send", "left_out": "⊘ Leave out: never send"}


def _choice_control(view: ChatView, user_id: str) -> None:
    """"You choose" for the turn this user message starts: pinned, left out, or the strategy decides."""
    key = f"chat_choice_{user_id}"
    st.session_state[key] = view.choice.state_of(user_id)  # the stored choice, even if another tab changed it
    st.segmented_control("You choose", list(CHOICE_LABELS), key=key, format_func=CHOICE_LABELS.__getitem__,
                         label_visibility="collapsed", on_change=_set_choice, args=(view.session_id, user_id, key),
                         help=f"**You choose** this turn. {MANUAL_HELP} Applies with "
                              f"{' and '.join(MANUAL_STRATEGIES)}; the cache breaks where a turn is left out.")


def _set_choice(session_id: str, user_id: str, key: str) -> None:
    with errors.error_boundary(show=False) as caught:
        set_turn_state(services.store_handle().store, session_id, user_id, st.session_state.get(key))
    if caught.error:
        services.notice("error", f"Could not save your choice: {errors.describe_error(caught.error)}")


def _message(view: ChatView, message: Message, position: int, *, dropped: bool, row: TurnRow | None) -> None:
    message_id = str(message.get("id") or position)
    role = str(message.get("role", "user"))
    avatar = role if role in ("user", "assistant") else "ai"
    left_out = message_id in view.left_out
    # As few elements as possible per message (see pages.ui.render and pages.ui.timeline.render_badges): a keyed
    # container only where the trimmed style (pages.ui.style) needs one.
    if dropped:
        with st.container(key=f"chat_dropped_{message_id}"):
            _message_body(message, message_id, role, avatar, dropped=True, row=row, interrupted=view.interrupted,
                          left_out=left_out)
    else:
        _message_body(message, message_id, role, avatar, dropped=False, row=row, interrupted=view.interrupted)


def _message_body(message: Message, message_id: str, role: str, avatar: str, *, dropped: bool,
                  row: TurnRow | None, interrupted: Collection[str] = (), left_out: bool = False) -> None:
    with st.chat_message(avatar):
        render_message_body(message.get("content", ""), key=f"chat_{message_id}", raw_tab=False)
        if left_out:
            st.caption("⊘ left out by you: not sent in the newest payload, whatever the budget")
        elif dropped:
            st.caption("✂ not sent in the newest payload (trimmed)")
        if role == "assistant":
            render_cost_caption(message.get("meta"))
            render_model_report(message.get("meta"))
        if message_id in interrupted:
            st.caption(f"⚠ {INTERRUPTED_STATUS}: {INTERRUPTED_MESSAGE}")
        if row is not None:
            if row.failed and role == "user":
                st.caption(f"⚠ no reply to this message: {markdown_literal(row.record.error)}")
            render_badges(row.badges)
        _raw_view_toggle(message, message_id)


def _raw_view_toggle(message: Message, message_id: str) -> None:
    """The message exactly as sent (Markdown changes what ``# heading`` or ``$x^2$`` show) and its tokens,
    on demand: one button per message instead of Rendered/Raw tabs on every message."""
    shown = st.session_state.get(TOKEN_VIEW_KEY) == message_id
    # No tooltip: the label says it all, and a tooltip is one more component per message to draw.
    st.button("Hide raw text & tokens" if shown else "Raw text & tokens", key=f"chat_tokens_{message_id}",
              type="tertiary", icon=":material/token:", on_click=_toggle_token_view, args=(message_id,))
    if shown:
        st.caption("Exactly as sent (bidi controls marked), then split into its tokens, with the exact counts "
                   "beside the chars/4 estimate.")
        text = content_text(message.get("content", ""))
        render_raw(text)
        render_token_view(text, key=f"chat_tv_{message_id}")


def _toggle_token_view(message_id: str) -> None:
    current = st.session_state.get(TOKEN_VIEW_KEY)
    st.session_state[TOKEN_VIEW_KEY] = None if current == message_id else message_id
