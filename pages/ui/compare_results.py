"""The Compare page's results: the summary table, the replies, one request body at a time with a diff
against a baseline column, and the "Continue with column N" buttons. Keys start with ``cmp_``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from lib.chat import column_name, continue_with, request_differences, seconds_text, server_context_text, summary_table
from lib.context import highlights, pretty, unified_diff
from lib.core import ColumnResult, as_float, markdown_literal, safe_title
from lib.sessions import SessionStore
from pages.ui import render
from pages.ui.timeline import render_model_report

RESULTS_KEY = "cmp_last"
BODY_KEY, BASELINE_KEY = "cmp_body_shown", "cmp_body_baseline"


def plain_table(frame: pd.DataFrame, *, index_name: str | None = None) -> None:
    """st.table with every header, index label and cell shown as plain text.

    st.table renders Markdown in every cell and header: "$" starts LaTeX, "1." a list, and a model name is
    whatever the user typed. A named index (or ``index_name``) is shown under that name, in the header's
    first cell; an unnamed one (row numbers) is not shown. Either way no header cell is blank, which a
    screen reader announces as an unnamed column."""
    name = index_name or frame.index.name
    shown = frame.map(_plain)
    shown.columns = [_plain(c) for c in frame.columns]
    shown.index = pd.Index([_plain(i) for i in frame.index], name=_plain(name) if name else None)
    st.table(shown, hide_index=not name)


def show_saved(store: SessionStore, session_id: str) -> None:
    saved = st.session_state.get(RESULTS_KEY)
    if not saved or saved["session"] != session_id:
        return
    results: list[ColumnResult] = saved["results"]
    record: Mapping[str, Any] = saved["record"]
    st.header("Summary")
    plain_table(pd.DataFrame(summary_table(results)), index_name="figure")
    st.caption("Token figures are provider-reported unless marked simulated (the offline model simulates its "
               "prompt cache). Costs are estimates from the price table, in µ$ (millionths of a US$).")
    show_replies(store, session_id, record, results)
    show_bodies(results)
    st.caption("Saved with the session as a comparison. It is not part of the chat history unless you continue "
               "with one reply.")


def show_replies(store: SessionStore, session_id: str, record: Mapping[str, Any],
                 results: Sequence[ColumnResult]) -> None:
    st.header("Replies")
    for result, tab in zip(results, st.tabs([f"Column {r.index + 1}" for r in results]), strict=True):
        with tab:
            st.markdown(f"**{markdown_literal(column_name(result))}**")
            if result.error:
                st.error(markdown_literal(result.error))
                continue
            render.render_message_body(result.text, key=f"cmp_reply_{record.get('id')}_{result.index}")
            render_model_report({"report": result.report})
            if result.response_id or result.server_context:
                st.caption(f"Came back: response id {markdown_literal(result.response_id or '—')}; server-side "
                           f"context: {markdown_literal(server_context_text(result.server_context))}.")
            label = f"Continue with column {result.index + 1} ({markdown_literal(result.label)})"
            if st.button(label, key=f"cmp_continue_{result.index}"):
                continue_with(store, session_id, record, result.index)
                st.session_state.pop(RESULTS_KEY, None)
                st.success(f"Added the message and the reply from column {result.index + 1} "
                           f"({markdown_literal(result.label)}) to the chat history.")


def show_bodies(results: Sequence[ColumnResult]) -> None:
    """One body at a time, full width, and what it changes against a chosen baseline column."""
    sent = [r for r in results if r.request]
    st.header("How the requests differ")
    if not sent:
        st.info("No request was sent.")
        return
    st.markdown("\n".join(f"- {note}" for note in request_differences(sent)))
    names = {r.index: column_name(r) for r in sent}
    indexes = list(names)
    if st.session_state.get(BODY_KEY) not in indexes:
        st.session_state[BODY_KEY] = indexes[min(1, len(indexes) - 1)]
    if st.session_state.get(BASELINE_KEY) not in indexes:
        st.session_state[BASELINE_KEY] = indexes[0]
    left, right = st.columns(2)
    shown = left.selectbox("Show the body of", indexes, key=BODY_KEY, format_func=names.__getitem__)
    baseline = right.selectbox("Diff against (baseline)", indexes, key=BASELINE_KEY, format_func=names.__getitem__)
    body = next(r for r in sent if r.index == shown).request or {}
    base = next(r for r in sent if r.index == baseline).request or {}
    if shown == baseline:
        st.caption("Pick another baseline column to see what differs.")
    else:
        moved = highlights(base, body)
        st.markdown(f"**What column {shown + 1} changes against column {baseline + 1}**")
        st.markdown("\n".join(f"- {note}" for note in moved) if moved else "- Same shape; only values differ.")
    body_tab, diff_tab = st.tabs(["Body", f"Diff against column {baseline + 1}"])
    with body_tab:
        st.code(pretty(body), language="json", wrap_lines=True)
    with diff_tab:
        diff = unified_diff(base, body, baseline_name=names[baseline], other_name=names[shown])
        st.code(diff or "The two bodies are identical.", language="diff", wrap_lines=True)


def show_earlier(earlier: Sequence[Mapping[str, Any]]) -> None:
    if not earlier:
        return
    with st.expander(f"Earlier comparisons in this session ({len(earlier)})"):
        for record in reversed(earlier):
            st.markdown("**Message:**")
            st.text(safe_title(record.get("new_message", ""), limit=120))
            rows = [{"column": f"{n + 1}. {c.get('label', '')}",
                     "status": "failed" if c.get("error") else "ok",
                     "total (s)": seconds_text(as_float(c.get("total"))),
                     "reply": safe_title(c.get("text") or c.get("error") or "", limit=120)}
                    for n, c in enumerate(record.get("columns") or []) if isinstance(c, Mapping)]
            plain_table(pd.DataFrame(rows))


def _plain(value: object) -> str:
    return markdown_literal(str(value))
