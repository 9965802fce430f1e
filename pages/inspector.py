"""Token inspector: how many tokens are really re-sent, how wrong chars/4 is, and what the trimmer dropped."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from lib.demo import load_demo
from lib.inspection import Inspection, inspect, seed_breaking_budgets, typed_turns, what_if
from lib.trimming import STRATEGIES
from pages import errors, services, sidebar

SERIES = {"estimate": "Estimate (chars/4)", "exact": "Exact (tiktoken)", "provider": "Provider reported"}
DEFAULT_MODEL = "gpt-4o-mini"


@st.cache_data(show_spinner="Counting tokens…", max_entries=16)
def build(session_id: str, size: tuple[int, int], model: str, system_prompt: str, _history: list, _turns: list,
          prices: tuple) -> Inspection:
    # Cached by (session, lengths, model, prompt, prices): a rerun of an unchanged session costs nothing.
    return inspect(_history, _turns, model=model, system_prompt=system_prompt, prices=dict(prices) or None)


@st.cache_data(show_spinner="Trying the seed strategy at 24 budgets…", max_entries=16)
def seed_breaks(session_id: str, size: int, model: str, system_prompt: str, _history: list) -> list:
    # The seed is quadratic: on a 1,000-turn session this takes seconds, so it runs once per history.
    return seed_breaking_budgets(_history, model=model, system_prompt=system_prompt)


def per_turn_chart(data: Inspection) -> alt.Chart:
    long = data.turns.melt(id_vars=["turn"], value_vars=list(SERIES), var_name="series", value_name="tokens")
    long = long.dropna(subset=["tokens"])
    long["series"] = long["series"].map(SERIES)
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("turn:Q", title="Turn", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("tokens:Q", title="Tokens in the payload"),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom")),
        # Exact and provider-reported often coincide; dashes keep both lines visible.
        strokeDash=alt.StrokeDash("series:N", legend=None),
        tooltip=["turn:Q", "series:N", "tokens:Q"],
    ).properties(height=300)


def error_chart(data: Inspection) -> alt.Chart:
    frame = data.turns.dropna(subset=["error_pct"])
    frame = frame.assign(direction=frame["error_pct"].map(lambda e: "over" if e > 0 else "under"))
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("turn:O", title="Turn"),
        y=alt.Y("error_pct:Q", title="chars/4 error vs exact (%)"),
        color=alt.Color("direction:N", scale=alt.Scale(domain=["over", "under"], range=["#d8893b", "#3b6fd8"]),
                        legend=alt.Legend(title="estimate is", orient="bottom")),
        tooltip=["turn:O", "error_pct:Q", "estimate:Q", "exact:Q"],
    ).properties(height=220)


def cumulative_chart(data: Inspection) -> alt.Chart:
    frame = data.cumulative.rename(columns={"cumulative_sent": "Sent (with trimming)",
                                            "cumulative_untrimmed": "Without trimming"})
    long = frame.melt(id_vars=["turn"], value_vars=["Sent (with trimming)", "Without trimming"],
                      var_name="series", value_name="tokens")
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("turn:Q", title="Turn", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("tokens:Q", title="Tokens re-sent so far"),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["turn:Q", "series:N", "tokens:Q"],
    ).properties(height=300)


def highlight_dropped(row: pd.Series) -> list[str]:
    style = "background-color: rgba(216, 137, 59, 0.25)" if pd.notna(row["dropped_at_turn"]) else ""
    return [style] * len(row)


def session_picker(store: Any) -> str:
    current = services.current_session_id()
    ids = [current, *[row.id for row in store.list_sessions() if row.id != current]]
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox("Session", ids, key="ins_session",
                            format_func=lambda sid: f"{sid} (open in chat)" if sid == current else sid)
    if right.button("Load demo conversation", key="ins_demo", width="stretch",
                    help="31 turns of English, Chinese, Japanese, code, emoji, a long report and a tool call."):
        with st.spinner("Replaying the demo through the trimmer…"):
            demo_id = load_demo(store)
        services.set_session(demo_id)
        st.session_state.pop("ins_session", None)
        st.rerun()
    return chosen


def what_if_section(session_id: str, history: list, data: Inspection, model: str, system_prompt: str) -> None:
    st.subheader("What if?")
    st.caption("Re-runs the trimmer on the stored history right now. The stored history never changes.")
    untrimmed = int(data.turns["untrimmed_exact"].iloc[-1] if data.exact_available and len(data.turns)
                    else data.messages["estimate"].sum() + 10)
    left, middle = st.columns(2)
    budget = left.slider("Budget (tokens)", min_value=50, max_value=max(100, untrimmed + 100),
                         value=max(50, untrimmed // 2), step=10, key="ins_budget")
    strategy = middle.selectbox("Strategy", STRATEGIES, key="ins_strategy")
    result = what_if(history, budget=budget, strategy=strategy, model=model, system_prompt=system_prompt)
    if result.error:
        st.error(result.error)
        return
    cols = st.columns(4)
    cols[0].metric("Kept", len(result.kept_ids))
    cols[1].metric("Dropped", len(result.dropped_ids))
    cols[2].metric("Tokens before", f"{result.tokens_before:,}")
    cols[3].metric("Tokens after", f"{result.tokens_after:,}", help=f"Counted with {result.counter}.")
    if result.problems:
        st.error("An API would reject this payload: " + " ".join(result.problems))
    else:
        st.success("Valid payload: it starts with a user message after the system prompt, and no tool "
                   "call is separated from its result.")
    dropped = set(result.dropped_ids)
    table = data.messages.assign(**{"would send": ~data.messages["id"].isin(dropped)})
    st.dataframe(table[["#", "role", "preview", "exact", "estimate", "would send"]], hide_index=True,
                 width="stretch", height=240)
    breaks = seed_breaks(session_id, len(history), model, system_prompt, history)
    if breaks:
        budget_at, problems = breaks[0]
        st.warning(f"**Where the seed strategy breaks:** at a budget of {budget_at:,} tokens (and "
                   f"{len(breaks) - 1} other budgets tried) it builds an invalid payload: {problems[0]} "
                   "The turns strategy never does, because it drops whole turns.")
    else:
        st.info("On this history the seed strategy stays valid at every budget tried.")


def main() -> None:
    sidebar.page_setup()
    st.title("🔍 Token inspector")
    st.caption("How many tokens are really re-sent each turn, how wrong the chars/4 rule is, and what the "
               "trimmer dropped.")
    try:
        store = services.store_handle().store
        session_id = session_picker(store)
        history, turns, meta = store.get_history(session_id), store.get_turns(session_id), store.get_meta(session_id)
    except Exception as exc:  # noqa: BLE001 - the one error boundary
        errors.show_error(exc)
        return
    if not history:
        st.info("This session is empty. Chat a few turns on the **Chat** page (pick a small budget to see "
                "trimming), or click **Load demo conversation**.")
        return
    # Typed: a stored record whose fields have odd types reads with those fields missing.
    model = next((t.model for t in reversed(typed_turns(turns)) if t.model), DEFAULT_MODEL)
    system_prompt = meta.get("system_prompt", "")
    prices = sidebar.price_table("ins_prices")
    data = build(session_id, (len(history), len(turns)), model, system_prompt, history, turns,
                 tuple(sorted(prices.items())))
    if not data.exact_available:
        st.warning("Exact token counts are unavailable (the tiktoken encoding could not be loaded; set "
                   "TIKTOKEN_CACHE_DIR). Showing the chars/4 estimate only.")
    counted = f"{data.encoding} (approximate for this provider)" if model.startswith(("claude", "llama", "offline")) \
        else data.encoding
    cols = st.columns(4)
    cols[0].metric("Turns", len(turns))
    cols[1].metric("Messages stored", len(history))
    total = data.cumulative["cumulative_sent"].iloc[-1] if len(data.cumulative) else 0
    cols[2].metric("Tokens re-sent in all", f"{total:,.0f}")
    saved = data.cumulative["saved"].iloc[-1] if len(data.cumulative) else 0
    cols[3].metric("Saved by trimming", f"{saved:,.0f}")
    st.caption(f"{len(turns)} turns · model {model} · exact counts with {counted}")

    if len(turns):
        st.subheader("Per turn: estimate, exact and provider-reported")
        st.altair_chart(per_turn_chart(data), width="stretch")
        st.altair_chart(error_chart(data), width="stretch")
        st.subheader("Cumulative tokens re-sent")
        st.caption("Every turn re-sends the history, so the total grows roughly with the square of the "
                   "conversation's length. Trimming bends the curve.")
        st.altair_chart(cumulative_chart(data), width="stretch")
        last = data.cumulative.iloc[-1]
        if pd.notna(last["cost"]):
            st.caption(f"Input cost so far: ${last['cost']:.4f} sent, ${last['cost_untrimmed']:.4f} without "
                       f"trimming (prices for {model}).")
        else:
            st.caption(f"No price for {model}: add one in the price table to see the cost.")
    else:
        st.info("No turn records yet: this session was imported or never sent.")

    st.subheader("Messages")
    st.caption("Highlighted rows were left out of at least one payload; *dropped at turn* is the first one.")
    st.dataframe(data.messages.drop(columns=["id"]).style.apply(highlight_dropped, axis=1), hide_index=True,
                 width="stretch", height=320)
    what_if_section(session_id, history, data, model, system_prompt)


main()
