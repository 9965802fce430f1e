"""Sessions: every conversation in the store, to open, export, import or delete.

Titles come from message text, so they are untrusted: shown through ``lib.core.content.safe_title`` (bidi
controls visible, one line). An upload is imported once per browser session, however often the page
reruns while the file stays in the uploader (it used to create a session on every click).
Session-state keys owned here start with ``ses_``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable

import pandas as pd
import streamlit as st

from lib.core import HistoryLabError, markdown_literal, safe_title
from lib.sessions import SessionStore, StoreHandle, new_session_id
from lib.transfer import MAX_IMPORT_BYTES, export_json, import_session
from pages.ui import errors, services, sidebar

log = logging.getLogger(__name__)
IMPORTED_KEY = "ses_imported"  # sha256 of an uploaded file -> the session it became


def store_notice(handle: StoreHandle) -> None:
    if handle.kind == "memory":
        st.warning(f"**Memory store**: sessions are lost on restart and not shared between processes. "
                   f"{markdown_literal(handle.notice or '')}")
    else:
        st.info(f"**Store**: {markdown_literal(handle.label)}. Sessions expire after {handle.store.ttl_seconds:,} "
                "s without activity (sliding TTL).")


def when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def open_in_chat(session_id: str) -> None:
    services.set_session(session_id)
    st.switch_page("pages/chat.py")


def upload_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def import_upload(store: SessionStore) -> None:
    """Import the file in the uploader, once: the same bytes map to the session they already became."""
    upload = st.session_state.get("ses_import")
    if upload is None:
        return
    data = upload.getvalue()
    digest = upload_digest(data)
    imported: dict[str, str] = st.session_state.setdefault(IMPORTED_KEY, {})
    if digest in imported and store.exists(imported[digest]):
        return
    with errors.error_boundary(show=False) as caught:  # shown beside the uploader (InvalidExport says what)
        imported[digest] = import_session(store, data)
    if caught.error:
        st.session_state["ses_import_error"] = (digest, caught.error)
    else:
        st.session_state.pop("ses_import_error", None)


def import_section() -> None:
    st.header("Import")
    upload = st.file_uploader("A JSON file exported from History Lab", type=["json"], key="ses_import",
                              help=f"Creates a new session. Up to {MAX_IMPORT_BYTES // 1_000_000} MB.")
    if upload is None:
        return
    digest = upload_digest(upload.getvalue())
    failed = st.session_state.get("ses_import_error")
    if failed and failed[0] == digest:
        if isinstance(failed[1], HistoryLabError):
            st.error(f"Nothing was imported: {markdown_literal(errors.describe_error(failed[1]))}")
        else:
            errors.show_error(failed[1])  # a bug: logged with its traceback, shown as a short message
        return
    new_id = st.session_state.get(IMPORTED_KEY, {}).get(digest)
    if new_id:
        st.success(f"Imported as session `{new_id}` (remove the file from the uploader to import another).")
        if st.button("Open it in the chat", key="ses_open_imported"):
            open_in_chat(new_id)


def deferred_export(store: SessionStore, session_id: str) -> Callable[[], str]:
    """The export, built only when "Export JSON" is clicked (a 10,000-message session is megabytes)."""
    def build() -> str:
        # Runs outside the script (when the download is fetched): the file itself says what went wrong.
        with errors.error_boundary(show=False) as caught:
            return export_json(store, session_id)
        assert caught.error is not None
        return json.dumps({"error": errors.describe_error(caught.error)})
    return build


def session_actions(store: SessionStore, session_id: str) -> None:
    cols = st.columns(3)
    if cols[0].button("Open in chat", key="ses_open", width="stretch"):
        open_in_chat(session_id)
    cols[1].download_button("Export JSON", data=deferred_export(store, session_id),
                            file_name=f"{session_id}.json", mime="application/json", key="ses_export",
                            width="stretch", on_click="ignore")
    if cols[2].button("Delete…", key="ses_delete", width="stretch"):
        st.session_state["ses_confirm"] = session_id
    if st.session_state.get("ses_confirm") == session_id:
        st.warning(f"Delete session `{session_id}` and all its messages? This cannot be undone.")
        yes, no = st.columns(2)
        if yes.button("Yes, delete", key="ses_delete_yes", type="primary", width="stretch"):
            store.clear_history(session_id)
            services.remember_deleted(session_id)
            st.session_state.pop("ses_confirm", None)
            if session_id == services.current_session_id():
                services.set_session(new_session_id())
            st.session_state["ses_deleted"] = session_id
            st.rerun()
        if no.button("Cancel", key="ses_delete_no", width="stretch"):
            st.session_state.pop("ses_confirm", None)
            st.rerun()


def session_table(store: SessionStore) -> None:
    rows = store.list_sessions()
    current = services.current_session_id()
    if not rows:
        st.info("No sessions yet. Chat on the **Chat** page, load the demo on the **Token inspector**, or "
                "import an export below.")
        return
    titles = {r.id: safe_title(r.title) for r in rows}
    # The short columns first and the title at a fixed width, the id last (the picker below shows it too):
    # a long title used to push "last activity" past the table's edge.
    table = pd.DataFrame([{
        "title": titles[r.id], "messages": r.message_count, "turns": r.turn_count,
        "TTL left": sidebar.format_ttl(r.ttl), "last activity": when(r.last_activity),
        "open": "◀ current" if r.id == current else "", "id": r.id,
    } for r in rows])
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"title": st.column_config.TextColumn(width="medium"),
                                "last activity": st.column_config.TextColumn(width="medium")})
    ids = [r.id for r in rows]
    chosen = st.selectbox("Session", ids, key="ses_pick", index=ids.index(current) if current in ids else 0,
                          format_func=lambda sid: f"{titles.get(sid) or '(untitled)'} · {sid}")
    session_actions(store, chosen)


def main() -> None:
    sidebar.page_setup()
    st.title("🗂️ Sessions")
    with errors.error_boundary():
        handle = services.store_handle()
        store = handle.store
        store_notice(handle)
        import_upload(store)  # before the table, so a new import is listed on this very run
        if deleted := st.session_state.pop("ses_deleted", None):
            st.success(f"Deleted session `{deleted}`.")
        session_table(store)
        import_section()


main()
