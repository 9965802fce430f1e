"""Token inspector: how many tokens are really re-sent, how wrong chars/4 is, what the trimmer dropped, and
what prompt caching makes of it. Charts live in pages/ui/inspector_charts.py, the lower sections in
pages/ui/inspector_sections.py, the token view in pages/ui/token_view.py. Widget keys start with ``ins_``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.chat import load_demo
from lib.context import STRATEGIES, STRATEGY_LABELS
from lib.core import DEFAULT_REFERENCE_MODEL, Price, find_price, markdown_literal, priced_as
from lib.sessions import SessionStore
from lib.tokens import count_label
from lib.views import Inspection, WhatIf, inspect, latest_settings, models_used, what_if
from pages.ui import errors, services, sidebar
from pages.ui.inspector_charts import cumulative_chart, error_chart, kind_chart, per_turn_chart
from pages.ui.inspector_sections import (
    caching_section,
    messages_table,
    payload_messages,
    provider_counts,
    request_body_section,
    seed_verdict,
    show_chart,
    what_if_table,
)
from pages.ui.token_view import token_view_section

DEFAULT_MODEL = DEFAULT_REFERENCE_MODEL
PICKER_KEY = "ins_session"
ERROR_KEY = "ins_callback_error"
TAB_KEY = "ins_tab"
TABS = ("This session", "Token view")


@st.cache_data(show_spinner="Counting tokens…", max_entries=16)
def build(session_id: str, size: tuple[int, int], model: str, system_prompt: str, _history: list, _turns: list,
          prices: tuple, reference_model: str) -> Inspection:
    # Cached by (session, lengths, model, prompt, prices, reference): a rerun of an unchanged session is free.
    return inspect(_history, _turns, model=model, system_prompt=system_prompt, prices=dict(prices) or None,
                   reference_model=reference_model)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_what_if(session_id: str, size: int, budget: int, strategy: str, model: str, system_prompt: str,
                   _history: list) -> WhatIf:
    # Whole-turn trimming walks all 10,000 messages of a long session (about 0.3 s): a reload, or any other
    # widget on the page, should not pay that again for the same budget and strategy.
    return what_if(_history, budget=budget, strategy=strategy, model=model, system_prompt=system_prompt)


def _load_demo() -> None:
    # A callback: it runs before the page is drawn, so the picker is created already showing the demo.
    with errors.error_boundary(show=False) as caught:  # a callback: main() shows it on this run
        demo_id = load_demo(services.store_handle().store)
    if caught.error:
        st.session_state[ERROR_KEY] = caught.error
        return
    services.set_session(demo_id)


def _follow_picker() -> None:
    services.set_session(st.session_state[PICKER_KEY])


def session_picker(store: SessionStore) -> str:
    current = services.current_session_id()
    ids = [current, *[row.id for row in store.list_sessions() if row.id != current]]
    # The picker always shows the open session: picking one opens it (_follow_picker), and "Load demo",
    # "New chat" or a ?session= link change the open session elsewhere.
    st.session_state[PICKER_KEY] = current
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.selectbox("Session", ids, key=PICKER_KEY, on_change=_follow_picker,
                   help="Picking a session here opens it in the chat too.")
    right.button("Load demo conversation", key="ins_demo", width="stretch", on_click=_load_demo,
                 help="31 turns of English, Chinese, Japanese, code, emoji, a long report and a tool call.")
    return str(st.session_state[PICKER_KEY])


def summary_metrics(data: Inspection, turns: list, history: list, model: str) -> None:
    cols = st.columns(4)
    cols[0].metric("Turns", len(turns))
    cols[1].metric("Messages stored", len(history))
    total = data.cumulative["cumulative_sent"].iloc[-1] if len(data.cumulative) else 0
    cols[2].metric("Tokens re-sent in all", f"{total:,.0f}")
    saved = data.cumulative["saved"].iloc[-1] if len(data.cumulative) else 0
    cols[3].metric("Saved by trimming", f"{saved:,.0f}")
    kept = data.turns[data.turns["server_kept"].astype(bool)] if len(data.turns) else data.turns
    if len(kept):
        reread = data.cumulative["read"].sum() - data.cumulative["sent"].sum()
        st.caption(f"{len(kept):,} turn{'s' * (len(kept) != 1)} used server-side history: the server re-read "
                   f"{reread:,.0f} tokens it held. They were not re-sent, but they are billed as input, so they "
                   "are not counted as saved; the input cost follows the provider's billed figure.")
    used = models_used(data.turns)
    if not used:  # no turn records: the messages are counted as the fallback model
        exact = count_label("tiktoken", encoding=data.encoding, model=model)
        st.caption(markdown_literal(f"No turns yet · messages counted as {model}: {exact}; {count_label('estimate')}"))
        return
    # Each turn is counted, labelled and priced by its own model: one entry per run of turns on one model.
    st.caption(markdown_literal(f"{len(turns)} turns · {' · '.join(used)} · {count_label('estimate')}"))


def per_turn_section(data: Inspection, model: str, *, demo: bool, prices: dict[str, Price]) -> None:
    st.header("Per turn: estimate, exact and provider-reported")
    if data.turns["provider"].isna().all():
        st.caption("No provider-reported counts: " + ("the demo was never sent to a provider, so that series "
                   "is left out." if demo else "no turn of this session reported usage."))
    show_chart(per_turn_chart(data, model))
    show_chart(error_chart(data))
    st.header("Cumulative tokens re-sent")
    st.caption("Every turn re-sends the history, so the total grows roughly with the square of the "
               "conversation's length. Trimming bends the curve.")
    show_chart(cumulative_chart(data))
    last = data.cumulative.iloc[-1]
    bases = list(dict.fromkeys(str(b) for b in data.turns["priced_as"]))
    if pd.notna(last["cost"]):
        st.caption(markdown_literal(f"Input cost so far: ${last['cost']:.4f} sent, ${last['cost_untrimmed']:.4f} "
                                    f"without trimming (each turn at the input price of {', '.join(bases)})."))
    else:
        unpriced = [b for b in bases if find_price(b, prices) is None] if prices else bases
        st.caption(f"No price for {markdown_literal(', '.join(unpriced))}: add it to the price table to see the "
                   "cost.")


def what_if_section(session_id: str, history: list, data: Inspection, *, model: str, replay_model: str,
                    system_prompt: str, default_budget: int, prices: dict[str, Price]) -> None:
    st.header("What if?")
    st.caption("Re-runs the trimmer on the stored history right now. The stored history never changes.")
    untrimmed = int(data.turns["untrimmed_exact"].iloc[-1] if data.exact_available and len(data.turns)
                    else data.messages["estimate"].sum() + 10)
    top = max(100, untrimmed + 100)
    left, middle = st.columns(2)
    budget = left.slider("Budget (tokens)", min_value=50, max_value=top, step=10, key="ins_budget",
                         value=min(top, default_budget) if default_budget >= 50 else max(50, untrimmed // 2))
    strategy = middle.selectbox("Strategy", STRATEGIES, key="ins_strategy",
                                format_func=lambda s: STRATEGY_LABELS.get(s, s))
    result = cached_what_if(session_id, len(history), budget, strategy, model, system_prompt, history)
    if result.error:
        st.error(markdown_literal(result.error))
    else:
        cols = st.columns(4)
        cols[0].metric("Kept", len(result.kept_ids))
        cols[1].metric("Dropped", len(result.dropped_ids))
        cols[2].metric("Tokens before", f"{result.tokens_before:,}")
        counter = count_label("estimate") if result.counter == "chars/4" else \
            count_label("tiktoken", encoding=data.encoding, model=model)
        cols[3].metric("Tokens after", f"{result.tokens_after:,}", help=f"Counted as {markdown_literal(counter)}.")
        if result.problems:
            st.error("An API would reject this payload: " + markdown_literal(" ".join(result.problems)))
        else:
            st.success("Valid payload: it starts with a user message after the system prompt, and no tool "
                       "call is separated from its result.")
        what_if_table(data, result)
        provider_counts(payload_messages(history, result, system_prompt), model)
    seed_verdict(session_id, history, model, system_prompt)
    # The replay prices and caches as a billed model: the offline model as the "priced as" choice.
    caching_section(session_id, history, model=replay_model, budget=budget, system_prompt=system_prompt,
                    prices=prices)


def main() -> None:
    sidebar.page_setup()
    st.title("🔍 Token inspector")
    st.caption("How many tokens are really re-sent each turn, how wrong the chars/4 rule is, what the "
               "trimmer dropped, and what prompt caching makes of it.")
    if ERROR_KEY in st.session_state:
        errors.show_error(st.session_state.pop(ERROR_KEY))
    with errors.error_boundary() as caught:
        store = services.store_handle().store
        session_id = session_picker(store)
        history, turns, meta = store.get_history(session_id), store.get_turns(session_id), store.get_meta(session_id)
    if caught.error:
        return
    # on_change="rerun": only the open tab runs and is sent. Streamlit otherwise sends a hidden tab's whole
    # content, and the session tab of a 10,000-message session is what made the page slow to load.
    tab_session, tab_tokens = st.tabs(TABS, key=TAB_KEY, on_change="rerun")
    if tab_tokens.open:
        with tab_tokens:
            st.caption("Tokens are what a model reads and what you pay for. Pick a preset or paste any text.")
            token_view_section(key="ins_tv", messages=history)
    if tab_session.open:
        with tab_session:
            session_tab(session_id, history, turns, meta)


def session_tab(session_id: str, history: list, turns: list, meta: dict[str, str]) -> None:
    if not history:
        st.info("This session is empty. Chat a few turns on the **Chat** page (pick a small budget to see "
                "trimming), or click **Load demo conversation**.")
        return
    # Typed newest first: a stored record whose fields have odd types reads with those fields missing.
    latest_model, budget = latest_settings(turns)
    model = latest_model or DEFAULT_MODEL
    system_prompt = meta.get("system_prompt", "")
    prices = sidebar.price_table("ins_prices")
    reference = sidebar.reference_model()
    data = build(session_id, (len(history), len(turns)), model, system_prompt, history, turns,
                 tuple(sorted(prices.items())), reference)
    if not data.exact_available:
        st.warning("Exact token counts are unavailable (the tiktoken encoding could not be loaded; set "
                   "TIKTOKEN_CACHE_DIR). Showing the chars/4 estimate only.")
    summary_metrics(data, turns, history, model)
    if len(turns):
        per_turn_section(data, model, demo=meta.get("demo") == "1", prices=prices)
        request_body_section(history, turns, meta)
    else:
        st.info("No turn records yet: this session was imported or never sent.")
    st.header("chars/4 by kind of text")
    st.caption("Close for English prose, far off for Chinese, Japanese, code, JSON and emoji: tokenizers are "
               "trained mostly on English, so other text takes more tokens per character.")
    if data.exact_available:
        show_chart(kind_chart(data))
    messages_table(data)
    what_if_section(session_id, history, data, model=model, replay_model=priced_as(model, reference),
                    system_prompt=system_prompt, default_budget=budget,
                    prices=prices)


main()
