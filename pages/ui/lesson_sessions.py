"""The Lesson's chapters 1-4: re-sending, in-memory sessions, Redis sessions, the routes (figures from lib.chat.lesson).

Each chapter runs the real code when its button is pressed: three turns of the offline model through
lib.chat.conversation, a MemoryStore replaced by a new instance, the app's own store and its real keys, and the /api
routes called in-process. Session-state keys start with ``lesson_``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from lib.api import call_api
from lib.chat import curl_lines, offline_model, payload_column, restart_memory_store, run_seed_turns
from lib.core import markdown_literal
from lib.sessions import (
    MemoryStore,
    RedisStore,
    projected_writes,
    seed_commands,
    session_keys,
    stored_values,
    writes_per_turn,
)
from lib.tokens import ESTIMATE_LABEL
from pages.ui import errors, services
from pages.ui.compare_results import plain_table

MEMORY = "lesson_memory"  # (MemoryStore, session id) of chapters 1 and 2
COLUMNS = "lesson_columns"  # chapter 1's payload columns
RESTARTED = "lesson_restarted"  # chapter 2: the history length before the restart
SESSION = "lesson_session"  # the lesson's session in the app's store (chapters 3-6)
REOPENED = "lesson_reopened"  # chapter 3: messages a new store object read back
ROUTE_RESULT = "lesson_route_result"  # chapter 4: (label, status, body) of the last in-process call
LOCAL_BASE = "http://localhost:8501"
PROJECTED_TURNS = 500
ERROR = "lesson_error"  # an error raised in a button's callback, shown on the next run


def guarded(action: Callable[[], None]) -> Callable[[], None]:
    """A button callback whose failure is kept and shown by ``show_kept_error`` (callbacks run before the page)."""
    def run() -> None:
        with errors.error_boundary(show=False) as caught:
            action()
        if caught.error is not None:
            st.session_state[ERROR] = caught.error
    return run


def show_kept_error() -> None:
    error = st.session_state.pop(ERROR, None)
    if error is not None:
        errors.show_error(error)


def run_memory_turns() -> None:
    """Chapters 1 and 2: the three turns in a fresh MemoryStore, as the seed's Map would hold them."""
    store = MemoryStore()
    results = run_seed_turns(store, offline_model())
    failed = next((r.error for r in results if r.error is not None), None)
    if failed is not None:
        raise failed
    st.session_state[MEMORY] = (store, results[-1].session_id)
    st.session_state[COLUMNS] = [payload_column(r) for r in results]
    st.session_state.pop(RESTARTED, None)


def resend() -> None:
    """Chapter 1: the three payloads side by side."""
    st.button("Run the three turns", key="lesson_run_turns", type="primary", icon=":material/play_arrow:",
              on_click=guarded(run_memory_turns))
    columns = st.session_state.get(COLUMNS)
    if not columns:
        st.info("Press **Run the three turns**: the offline model answers “Hello”, “What's 2+2?” and “And 4+4?”.")
        return
    for column, slot in zip(columns, st.columns(len(columns)), strict=True):
        with slot:
            st.markdown(f"**Turn {column.turn}: {len(column.messages)} messages sent**")
            frame = pd.DataFrame([{"role": m.role, "content": m.content, "tokens": m.exact, "chars/4": m.estimate}
                                  for m in column.messages])
            plain_table(frame.set_index("role"))
            st.caption(f"{column.exact:,} tokens, {markdown_literal(column.count_label)}, with 3 to prime the reply "
                       f"· {column.estimate:,} by the {markdown_literal(ESTIMATE_LABEL)} · the model replied "
                       f"“{markdown_literal(column.reply)}”")
    last = columns[-1]
    listing = ", ".join(m.content for m in last.messages if m.role != "system")
    st.success(f"Turn {last.turn} sends the system prompt and {markdown_literal(listing)}: everything said so far, "
               "again.")


def memory() -> None:
    """Chapter 2: a MemoryStore restarted loses the conversation."""
    held = st.session_state.get(MEMORY)
    if held is None:
        st.button("Run the three turns", key="lesson_run_memory", type="primary", icon=":material/play_arrow:",
                  on_click=guarded(run_memory_turns))
        st.info("First, run the three turns into an in-memory store.")
        return
    store, session_id = held
    before = st.session_state.get(RESTARTED)
    count = len(store.get_history(session_id))
    if before is None:
        st.markdown(f"The MemoryStore holds session `{session_id}`: **{count} messages** "
                    "(MemoryStore.get_history, read now).")
        st.button("Restart the server", key="lesson_restart_memory", type="primary",
                  icon=":material/restart_alt:", on_click=_restart_memory)
        return
    st.markdown(f"Before the restart the MemoryStore held **{before} messages**. After it, a new MemoryStore "
                f"instance answers get_history(`{session_id}`) with **{count} messages** and says the session "
                f"{'exists' if store.exists(session_id) else 'does not exist'}.")
    st.warning("The conversation is gone: it lived only in the old process's memory.", icon=":material/delete_forever:")
    st.button("Run the three turns again", key="lesson_rerun_memory", icon=":material/replay:",
              on_click=guarded(run_memory_turns))


def _restart_memory() -> None:
    store, session_id = st.session_state[MEMORY]
    st.session_state[RESTARTED] = len(store.get_history(session_id))
    st.session_state[MEMORY] = (restart_memory_store(store), session_id)


def run_store_turns() -> None:
    """Chapters 3-6: the three turns in the app's own store (the embedded Valkey, or REDIS_URL)."""
    results = run_seed_turns(services.store_handle().store, offline_model())
    failed = next((r.error for r in results if r.error is not None), None)
    if failed is not None:
        raise failed
    st.session_state[SESSION] = results[-1].session_id
    st.session_state.pop(REOPENED, None)
    st.session_state.pop(ROUTE_RESULT, None)


def lesson_session() -> str | None:
    """The lesson's session in the app's store, while it still has messages."""
    session_id = st.session_state.get(SESSION)
    if session_id and services.store_handle().store.get_history(session_id):
        return str(session_id)
    return None


def redis() -> None:
    """Chapter 3: the real keys, their TTL, the stored JSON, and the seed's one-string layout beside them."""
    handle = services.store_handle()
    store = handle.store
    if not isinstance(store, RedisStore):
        st.warning(f"This app runs on a MemoryStore ({markdown_literal(handle.notice or handle.label)}), so there are "
                   "no Redis keys to show. Start it without HISTORY_LAB_STORE=memory (the embedded Valkey) or "
                   "with REDIS_URL.")
        return
    session_id = lesson_session()
    st.button("Store the three turns in Valkey" if session_id is None else "Store the three turns again",
              key="lesson_run_store", type="primary" if session_id is None else "secondary",
              icon=":material/database:", on_click=guarded(run_store_turns))
    if session_id is None:
        st.info(f"The app's store: {markdown_literal(handle.label)}.")
        return
    st.markdown(f"**This store: the real keys of session `{session_id}`** ({markdown_literal(handle.label)})")
    _live_keys(store, session_id)
    left, right = st.columns(2)
    with left:
        st.markdown("**The first stored message**, exactly as in the LIST (LRANGE)")
        st.code(stored_values(store, session_id, limit=1)[0], language="json", wrap_lines=True)
    with right:
        st.markdown("**The seed's layout: one string per session** (computed, not written)")
        st.code("\n".join(seed_commands(session_id, store.get_history(session_id))), language="text",
                wrap_lines=True)
    writes = writes_per_turn(store, session_id)
    plain_table(pd.DataFrame([{"turn": w.turn, "messages after the turn": w.messages,
                               "seed: SETEX of the whole history (bytes)": w.seed_bytes,
                               "this store: appended JSON (bytes)": w.our_bytes} for w in writes]).set_index("turn"))
    seed_later, ours_later = projected_writes(writes, PROJECTED_TURNS)
    st.caption(f"Bytes of the values each layout writes per turn: the seed's from the JSON it would SETEX, ours read "
               "back from the keys (the turn's messages and its turn record). Ours are larger at first: each message "
               "carries its id, time and metadata (usage, timings, the model's report), and each turn a record. But "
               f"the seed rewrites the whole conversation every turn: projected from these turns, by turn "
               f"{PROJECTED_TURNS:,} the seed would write about {seed_later:,} bytes per turn, this store still about "
               f"{ours_later:,}.")
    reopened = st.session_state.get(REOPENED)
    if reopened is None:
        st.button("Restart the server (a new store object, the same Valkey)", key="lesson_restart_redis",
                  icon=":material/restart_alt:", on_click=_reopen, args=(session_id,))
    else:
        st.success(f"After the restart a new RedisStore, with nothing in memory, read **{reopened} messages** of "
                   f"session `{session_id}` back from Valkey: the conversation survived.")


@st.fragment(run_every=1)
def _live_keys(store: RedisStore, session_id: str) -> None:
    """The session's keys, re-read every second so the TTL counts down."""
    keys = session_keys(store, session_id)
    plain_table(pd.DataFrame([{"key": k.key, "type": k.kind, "TTL (s)": "none" if k.ttl is None else f"{k.ttl:,}",
                               "entries": k.entries, "bytes": k.value_bytes} for k in keys]).set_index("key"))
    st.caption("Read from Valkey every second: TYPE, TTL, and the entries' bytes. Every write refreshes the TTL of "
               "every key to 24 h (SESSION_TTL).")


def _reopen(session_id: str) -> None:
    store = services.store_handle().store
    assert isinstance(store, RedisStore)
    fresh = RedisStore(store.client, prefix=store.prefix, ttl=store.ttl_seconds, max_messages=store.max_messages)
    st.session_state[REOPENED] = len(fresh.get_history(session_id))


def routes() -> None:
    """Chapter 4: the calls as curl lines for this server, and the same requests sent from here."""
    session_id = lesson_session()
    if session_id is None:
        st.button("Store the three turns", key="lesson_run_routes", type="primary", icon=":material/play_arrow:",
                  on_click=guarded(run_store_turns))
        st.info("First, run the three turns into the app's store (chapter 3 does it too).")
        _route_result()
        return
    token = bool(services.settings().api_token)
    st.code("\n".join(curl_lines(base_url(), session_id, token=token)), language="bash", wrap_lines=True)
    one, two, three = st.columns(3)
    one.button("POST the next turn", key="lesson_post", icon=":material/send:", on_click=_call,
               args=("POST /api/chat", "POST", "/api/chat", {"sessionId": session_id, "message": "And 8+8?"}))
    two.button("GET the session", key="lesson_get", icon=":material/download:", on_click=_call,
               args=(f"GET /api/chat/{session_id}", "GET", f"/api/chat/{session_id}", None))
    three.button("DELETE the session", key="lesson_delete", icon=":material/delete:", on_click=_call,
                 args=(f"DELETE /api/chat/{session_id}", "DELETE", f"/api/chat/{session_id}", None))
    _route_result()


def base_url() -> str:
    """This server's address as the browser reached it (localhost:8501 when there is no browser)."""
    url = getattr(st.context, "url", None) or ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else LOCAL_BASE


def _call(label: str, method: str, path: str, body: object) -> None:
    with errors.error_boundary(show=False) as caught:  # shown on this page's next run
        status, answer = call_api(method, path, body, settings_factory=services.settings)
        st.session_state[ROUTE_RESULT] = (label, status, _short(answer))
    if caught.error is not None:
        st.session_state[ERROR] = caught.error


def _short(answer: object) -> object:
    """A GET's messages without their metadata, so the answer stays readable."""
    if isinstance(answer, dict) and isinstance(answer.get("messages"), list):
        messages = [{"role": m.get("role"), "content": m.get("content")} for m in answer["messages"]]
        return {**answer, "messages": messages, "turns": f"{len(answer.get('turns') or [])} turn records"}
    return answer


def _route_result() -> None:
    result = st.session_state.get(ROUTE_RESULT)
    if result is None:
        return
    label, status, answer = result
    st.markdown(f"**{markdown_literal(label)}** → HTTP {status} (sent in-process to this app's own route)")
    st.code(json.dumps(answer, indent=2, ensure_ascii=False), language="json", wrap_lines=True)
