"""Compare providers: one history plus one new message, sent to 2-4 configurations at once."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from lib.compare import (
    MAX_COLUMNS,
    MIN_COLUMNS,
    ColumnResult,
    CompareConfig,
    comparison_record,
    continue_with,
    request_differences,
    run_comparison,
)
from pages import errors, services, sidebar

RESULTS_KEY = "cmp_last"


def config_inputs(count: int, infos: list[Any]) -> list[CompareConfig]:
    by_name = {info.name: info for info in infos}
    names = list(by_name)
    # Configured remote providers first; without keys, the offline model fills the columns.
    remote = [i.name for i in infos if i.configured and i.name not in ("offline", "openai-compatible")]
    defaults = [*remote, *["offline"] * MAX_COLUMNS][:MAX_COLUMNS]
    configs = []
    for index, column in enumerate(st.columns(count)):
        with column:
            default = defaults[index] if defaults[index] in names else names[0]
            name = st.selectbox(f"Provider {index + 1}", names, index=names.index(default), key=f"cmp_provider_{index}",
                                format_func=lambda n: by_name[n].label)
            info = by_name[name]
            model = st.selectbox("Model", list(dict.fromkeys([info.default_model, *info.models])),
                                 key=f"cmp_model_{index}_{name}", accept_new_options=True)
            options: dict[str, Any] = {}
            if name == "anthropic":
                options["prompt_caching"] = st.toggle("Prompt caching", key=f"cmp_cache_{index}",
                                                      help="cache_control on the system prompt and re-sent history")
            if not info.configured:
                st.warning(f"Not configured. {info.hint}")
            configs.append(CompareConfig(name, model, options))
    return configs


def show_column(slot: Any, result: ColumnResult) -> None:
    with slot.container():
        st.markdown(f"**{result.label}**")
        if result.error:
            st.error(result.error)
        elif not result.done:
            st.markdown(result.text + " ▌")
            return
        else:
            st.markdown(result.text)
        usage = result.usage or {}
        cols = st.columns(2)
        cols[0].metric("First token", _seconds(result.ttft))
        cols[1].metric("Total", _seconds(result.total))
        cost = f"${result.cost:.5f}" if result.cost is not None else "no price"
        st.caption(f"input {usage.get('input_tokens', '?')} · output {usage.get('output_tokens', '?')} · cache read "
                   f"{usage.get('cache_read_tokens', 0)} / write {usage.get('cache_write_tokens', 0)} · exact "
                   f"(tiktoken) {result.exact if result.exact is not None else '?'} · est. cost {cost}")
        if result.request is not None:
            with st.expander("Exact request body"):
                st.json(result.request)


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def summary(results: list[ColumnResult]) -> pd.DataFrame:
    return pd.DataFrame([{
        "configuration": r.label, "ok": not r.error, "first token (s)": r.ttft, "total (s)": r.total,
        "input tokens": (r.usage or {}).get("input_tokens"), "output tokens": (r.usage or {}).get("output_tokens"),
        "exact count": r.exact, "messages sent": r.sent_messages, "cost (US$)": r.cost,
    } for r in sorted(results, key=lambda r: r.index)])


def run(store: Any, session_id: str, message: str, configs: list[CompareConfig], choices: Any,
        prices: dict[str, Any]) -> None:
    history = store.get_history(session_id)
    slots = [column.empty() for column in st.columns(len(configs))]
    finished: dict[int, ColumnResult] = {}
    with st.spinner(f"Sending to {len(configs)} configurations at once…"):
        for result in run_comparison(
            history, message, configs, provider_factory=lambda c: services.provider_for(c.provider, **c.options),
            system_prompt=choices.system_prompt, strategy=choices.strategy, budget=choices.budget,
            timeout=services.settings().provider_timeout + 5, prices=prices,
        ):
            show_column(slots[result.index], result)
            if result.done:
                finished[result.index] = result
    results = [finished[i] for i in sorted(finished)]
    record = comparison_record(message, configs, results, system_prompt=choices.system_prompt,
                               strategy=choices.strategy, budget=choices.budget)
    store.append_comparison(session_id, record)
    st.session_state[RESULTS_KEY] = {"session": session_id, "record": record, "results": results}


def show_saved(store: Any, session_id: str) -> None:
    saved = st.session_state.get(RESULTS_KEY)
    if not saved or saved["session"] != session_id:
        return
    results, record = saved["results"], saved["record"]
    st.subheader("Summary")
    st.dataframe(summary(results), hide_index=True, width="stretch")
    st.subheader("How the requests differ")
    st.markdown("\n".join(f"- {note}" for note in request_differences(results)) or "No request was sent.")
    st.caption("Saved with the session as a comparison. It is not part of the chat history unless you continue "
               "with one reply.")
    cols = st.columns(len(results))
    for result, column in zip(results, cols, strict=True):
        if not result.error and column.button("Continue with this reply", key=f"cmp_continue_{result.index}",
                                              width="stretch"):
            continue_with(store, session_id, record, result.index)
            st.session_state.pop(RESULTS_KEY, None)
            st.success(f"Added the message and the reply from {result.label} to the chat history.")


def main() -> None:
    choices = sidebar.page_setup()
    st.title("⚖️ Compare providers")
    st.caption("The current session's history plus one new message, sent to every configuration at once. "
               "Trimming uses the sidebar's strategy and budget for each model.")
    count = st.slider("Configurations", MIN_COLUMNS, MAX_COLUMNS, 2, key="cmp_count")
    configs = config_inputs(count, services.provider_infos())
    prices = sidebar.price_table("cmp_prices")
    with st.form("cmp_form", clear_on_submit=False, border=False):
        message = st.text_area("New message", key="cmp_message", height=80,
                               placeholder="Ask every provider the same thing…")
        sent = st.form_submit_button("Send to all", type="primary")
    try:
        store = services.store_handle().store
        session_id = services.current_session_id()
        if sent:
            if not message.strip():
                st.warning("Type a message first.")
            else:
                run(store, session_id, message, configs, choices, prices)
        show_saved(store, session_id)
        earlier = store.get_comparisons(session_id)
        if earlier:
            with st.expander(f"Earlier comparisons in this session ({len(earlier)})"):
                for record in reversed(earlier):
                    st.markdown(f"**{record.get('new_message', '')[:80]}**")
                    st.dataframe(pd.DataFrame(record.get("columns", []))[["label", "text", "ttft", "total", "error"]],
                                 hide_index=True, width="stretch")
    except Exception as exc:  # noqa: BLE001 - the one error boundary
        errors.show_error(exc)


main()
