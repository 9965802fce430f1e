"""Compare: one history plus one new message sent to 2-4 provider configurations at once, and the history
strategies (manual re-send, summary, server-side state) side by side for the same conversation.

Widget keys owned here start with ``cmp_``. The configurations outlive a visit to another page: Streamlit
forgets the state of widgets a run does not draw, so their values are also copied to a plain state key
(``KEPT_KEY``) and written back before the widgets are drawn again.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from lib.chat import MAX_COLUMNS, MIN_COLUMNS, CompareConfig, comparison_record, run_comparison
from lib.core import TOOL_SET, ColumnResult, Price, ToolDef, current_first, markdown_literal, model_label
from lib.providers import ProviderInfo
from lib.sessions import SessionStore
from pages.ui import compare_results, compare_strategies, errors, services, sidebar

KEPT_KEY = "cmp_kept"
KEPT_PREFIXES = ("cmp_count", "cmp_provider_", "cmp_model_", "cmp_cache_", "cmp_compact_", "cmp_truncate_",
                 "cmp_tools")
COUNT_KEY = "cmp_count"


def restore_configs() -> None:
    """Write the kept configuration values back, so the widgets drawn next adopt them."""
    for key, value in dict(st.session_state.get(KEPT_KEY) or {}).items():
        if key not in st.session_state:
            st.session_state[key] = value


def keep_configs() -> None:
    st.session_state[KEPT_KEY] = {key: st.session_state[key] for key in list(st.session_state)
                                  if str(key).startswith(KEPT_PREFIXES)}


def config_inputs(count: int, infos: list[ProviderInfo]) -> list[CompareConfig]:
    """One row per configuration (provider, model, options): readable at 800 px, unlike 4 narrow columns."""
    by_name = {info.name: info for info in infos}
    names = list(by_name)
    # Configured remote providers first; without keys, the offline model fills the columns.
    remote = [i.name for i in infos if i.configured and i.capabilities.needs_key]
    defaults = [*remote, *["offline"] * MAX_COLUMNS][:MAX_COLUMNS]
    configs = []
    for index in range(count):
        provider_key = f"cmp_provider_{index}"
        st.session_state.setdefault(provider_key, defaults[index] if defaults[index] in names else names[0])
        left, right = st.columns([3, 2])
        name = left.selectbox(f"Column {index + 1}: provider", names, key=provider_key,
                              format_func=lambda n: by_name[n].label)
        info = by_name[name]
        model = right.selectbox(f"Column {index + 1}: model", current_first([info.default_model, *info.models]),
                                key=f"cmp_model_{index}_{name}", accept_new_options=True, format_func=model_label)
        options: dict[str, Any] = {}
        if info.capabilities.prompt_caching:
            options["prompt_caching"] = st.toggle(f"Column {index + 1}: prompt caching", key=f"cmp_cache_{index}",
                                                  help=info.caching_note or "cache_control on the system prompt "
                                                  "and re-sent history")
        call = server_options(index, info)
        if not info.configured:
            st.warning(f"Column {index + 1} is not configured. {markdown_literal(info.hint)}")
        configs.append(CompareConfig(name, str(model), options, call))
    return configs


def server_options(index: int, info: ProviderInfo) -> dict[str, Any]:
    """Per-call options for providers that keep or compact the context on the server (from capabilities)."""
    call: dict[str, Any] = {}
    caps = info.capabilities
    if not (caps.server_compaction or caps.server_side_history):
        return call
    left, right = st.columns([3, 2])
    if caps.server_compaction:
        threshold = left.number_input(f"Column {index + 1}: server compaction threshold (tokens, 0 = off)",
                                      min_value=0, step=1_000, key=f"cmp_compact_{index}")
        if threshold:
            call["compaction_threshold"] = int(threshold)
    if caps.server_side_history and right.toggle(f"Column {index + 1}: truncation='auto'",
                                                 key=f"cmp_truncate_{index}"):
        call["truncation"] = "auto"
    return call


def show_live(slot: DeltaGenerator, results: dict[int, ColumnResult]) -> None:
    """While the columns stream: one line per column, stacked (plain text: the reply is untrusted)."""
    with slot.container():
        for index in sorted(results):
            result = results[index]
            state = "failed" if result.error else ("done" if result.done else "streaming…")
            st.markdown(f"**Column {index + 1}** ({state})")
            st.text((result.error or result.text)[-400:] or " ")


def run(store: SessionStore, session_id: str, message: str, configs: list[CompareConfig],
        choices: sidebar.SidebarChoices, prices: dict[str, Price], tools: tuple[ToolDef, ...] = ()) -> None:
    history = store.get_history(session_id)
    live = st.empty()
    latest: dict[int, ColumnResult] = {}
    with st.spinner(f"Sending to {len(configs)} configurations at once…"):
        for result in run_comparison(
            history, message, configs, provider_factory=lambda c: services.provider_for(c.provider, **c.options),
            system_prompt=choices.system_prompt, strategy=choices.trim_strategy, budget=choices.budget,
            timeout=services.settings().provider_timeout + 5, prices=prices,
            reference_model=sidebar.reference_model(), tools=tools,
        ):
            latest[result.index] = result
            show_live(live, latest)
    live.empty()
    results = [latest[i] for i in sorted(latest)]
    record = comparison_record(message, configs, results, system_prompt=choices.system_prompt,
                               strategy=choices.trim_strategy, budget=choices.budget, tools=tools)
    store.append_comparison(session_id, record)
    st.session_state[compare_results.RESULTS_KEY] = {"session": session_id, "record": record, "results": results}


def providers_tab(choices: sidebar.SidebarChoices) -> None:
    st.caption("The current session's history plus one new message, sent to every configuration at once. "
               "Trimming uses the sidebar's strategy and budget for each model.")
    if choices.trim_strategy != choices.strategy:
        st.info(f"The sidebar's strategy {markdown_literal(repr(choices.strategy))} needs a summary request per "
                f"column, so this tab trims with {markdown_literal(repr(choices.trim_strategy))}. The History "
                "strategies tab compares summary side by side.")
    st.session_state.setdefault(COUNT_KEY, MIN_COLUMNS)
    count = st.slider("Configurations", MIN_COLUMNS, MAX_COLUMNS, key=COUNT_KEY)
    configs = config_inputs(count, services.provider_infos())
    st.session_state.setdefault("cmp_tools", False)
    tools = TOOL_SET if sidebar.tools_toggle("cmp_tools") else ()
    keep_configs()
    prices = sidebar.price_table("cmp_prices")
    with st.form("cmp_form", clear_on_submit=False, border=False):
        message = st.text_area("New message", key="cmp_message", height=80,
                               placeholder="Ask every provider the same thing…")
        sent = st.form_submit_button("Send to all", type="primary")
    with errors.error_boundary():
        store = services.store_handle().store
        session_id = services.current_session_id()
        if sent:
            if not message.strip():
                st.warning("Type a message first.")
            else:
                run(store, session_id, message, configs, choices, prices, tools)
        compare_results.show_saved(store, session_id)
        compare_results.show_earlier(store.get_comparisons(session_id))


def main() -> None:
    choices = sidebar.page_setup()
    restore_configs()
    st.title("⚖️ Compare")
    providers, strategies = st.tabs(["Providers", "History strategies"])
    with providers:
        providers_tab(choices)
    with strategies:
        compare_strategies.strategies_tab(choices)


main()
