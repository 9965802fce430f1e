"""Sessions: every conversation in the store, to open, export, import or delete."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from lib.sessions import new_session_id
from lib.transfer import MAX_IMPORT_BYTES, InvalidExport, export_json, import_session
from pages import errors, services, sidebar


def store_notice(handle) -> None:
    if handle.kind == "memory":
        st.warning(f"**Memory store**: sessions are lost on restart and not shared between processes. "
                   f"{handle.notice or ''}")
    else:
        st.info(f"**Store**: {handle.label}. Sessions expire after {handle.store.ttl_seconds:,} s without "
                "activity (sliding TTL).")


def when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def open_in_chat(session_id: str) -> None:
    services.set_session(session_id)
    st.switch_page("pages/chat.py")


def import_section(store) -> None:
    st.subheader("Import")
    upload = st.file_uploader("A JSON file exported from History Lab", type=["json"], key="ses_import",
                              help=f"Creates a new session. Up to {MAX_IMPORT_BYTES // 1_000_000} MB.")
    if upload is None:
        return
    imported = st.session_state.get("ses_imported", {})
    if upload.file_id in imported:  # the uploader keeps the file across reruns; import it once
        st.success(f"Imported as session `{imported[upload.file_id]}`.")
        return
    try:
        new_id = import_session(store, upload.getvalue())
    except InvalidExport as exc:
        st.error(f"Nothing was imported: {exc}")
        return
    except Exception as exc:  # noqa: BLE001 - the one error boundary
        errors.show_error(exc)
        return
    st.session_state["ses_imported"] = {**imported, upload.file_id: new_id}
    st.success(f"Imported as session `{new_id}`.")


def session_actions(store, session_id: str) -> None:
    cols = st.columns(3)
    if cols[0].button("Open in chat", key="ses_open", width="stretch"):
        open_in_chat(session_id)
    cols[1].download_button("Export JSON", data=export_json(store, session_id), file_name=f"{session_id}.json",
                            mime="application/json", key="ses_export", width="stretch")
    if cols[2].button("Delete…", key="ses_delete", width="stretch"):
        st.session_state["ses_confirm"] = session_id
    if st.session_state.get("ses_confirm") == session_id:
        st.warning(f"Delete session `{session_id}` and all its messages? This cannot be undone.")
        yes, no = st.columns(2)
        if yes.button("Yes, delete", key="ses_delete_yes", type="primary", width="stretch"):
            store.clear_history(session_id)
            st.session_state.pop("ses_confirm", None)
            if session_id == services.current_session_id():
                services.set_session(new_session_id())
            st.session_state["ses_deleted"] = session_id
            st.rerun()
        if no.button("Cancel", key="ses_delete_no", width="stretch"):
            st.session_state.pop("ses_confirm", None)
            st.rerun()


def main() -> None:
    sidebar.page_setup()
    st.title("🗂️ Sessions")
    try:
        handle = services.store_handle()
        store = handle.store
        store_notice(handle)
        if deleted := st.session_state.pop("ses_deleted", None):
            st.success(f"Deleted session `{deleted}`.")
        rows = store.list_sessions()
        current = services.current_session_id()
        if not rows:
            st.info("No sessions yet. Chat on the **Chat** page, load the demo on the **Token inspector**, or "
                    "import an export below.")
        else:
            table = pd.DataFrame([{
                "id": r.id, "title": r.title, "messages": r.message_count, "turns": r.turn_count,
                "TTL left": sidebar.format_ttl(r.ttl), "last activity": when(r.last_activity),
                "open": "◀ current" if r.id == current else "",
            } for r in rows])
            st.dataframe(table, hide_index=True, width="stretch")
            ids = [r.id for r in rows]
            titles = {r.id: r.title for r in rows}
            chosen = st.selectbox("Session", ids, key="ses_pick",
                                  index=ids.index(current) if current in ids else 0,
                                  format_func=lambda sid: f"{titles[sid] or '(untitled)'} · {sid}")
            session_actions(store, chosen)
        import_section(store)
    except Exception as exc:  # noqa: BLE001 - the one error boundary
        errors.show_error(exc)


main()
