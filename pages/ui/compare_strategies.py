"""The Compare page's "History strategies" tab: one conversation's next request under manual re-send
("turns", "cache-aware", "summary") and server-side state (previous_response_id, compaction), side by side.

Works with no key: the figures come from lib.chat.strategies (tiktoken counts, simulated cache, prices
from the shared table). Keys start with ``cmp_st_``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from lib.chat import (
    DEMO_BUDGET,
    SIMULATED_SERVER,
    StrategyComparison,
    chain_messages,
    compare_strategies,
    conversation_payloads,
    demo_data,
    micro_dollars,
    tokens_text,
    with_counted_billing,
)
from lib.context import pretty
from lib.core import Message, Price, current_first, default_table, markdown_literal, model_label, prices_from_rows
from lib.costs import CacheComparison, compare_explicit_implicit
from pages.ui import compare_results, errors, services, sidebar

SOURCES = ("demo", "session")
DEFAULT_QUESTION = "What did I say in my first message?"


def strategies_tab(choices: sidebar.SidebarChoices) -> None:
    st.caption("The same conversation and next message under each way of keeping history. Manual strategies "
               "re-send (part of) the history from the store; server-side state sends only the new message, "
               "and the server bills the context it keeps.")
    with errors.error_boundary():
        history, system_prompt, default_budget = _conversation(choices)
        left, right = st.columns(2)
        message = left.text_input("Next message", value=DEFAULT_QUESTION, key="cmp_st_message")
        models = current_first(m for m in default_table() if m.startswith("gpt"))
        reference = sidebar.reference_model()
        model = right.selectbox("Counted, priced and cached as", models, key="cmp_st_model", format_func=model_label,
                                index=models.index(reference) if reference in models else 0)
        budget = int(st.number_input("Budget and compaction threshold (tokens)", min_value=100, step=500,
                                     value=default_budget, key=f"cmp_st_budget_{st.session_state['cmp_st_source']}"))
        if not message.strip():
            st.info("Type the next message to compare the strategies.")
            return
        prices = _prices()
        result = _compare(history, message, model=model, budget=budget, system_prompt=system_prompt,
                          prices=prices)
        chain = chain_messages(history, message, system_prompt=system_prompt)
        show_comparison(_counted(result, chain, prices=prices))
        gemini_caches(history, message, system_prompt=system_prompt, budget=budget, prices=prices)


def _conversation(choices: sidebar.SidebarChoices) -> tuple[list[dict[str, Any]], str, int]:
    """The conversation to compare on: the bundled demo, or this session's stored history."""
    history = services.store_handle().store.get_history(services.current_session_id())
    labels = {"demo": "The bundled demo conversation",
              "session": f"This session's history ({len(history):,} messages)"}
    st.session_state.setdefault("cmp_st_source", "session" if history else "demo")
    source = st.radio("Conversation", SOURCES, key="cmp_st_source", format_func=labels.__getitem__, horizontal=True)
    if source == "demo":
        data = demo_data()
        return list(data["messages"]), str(data["system_prompt"]), DEMO_BUDGET
    return list(history), choices.system_prompt, max(100, choices.budget - choices.reserve)


def _prices() -> Mapping[str, Price]:
    rows = st.session_state.get(sidebar.PRICE_TABLE_KEY)
    try:
        return prices_from_rows(rows) if rows else default_table()
    except ValueError:
        return default_table()


@st.cache_data(max_entries=16, show_spinner="Replaying the conversation under every strategy…")
def _cached(_history: Sequence[Mapping[str, Any]], key: tuple[Any, ...], message: str, model: str, budget: int,
            system_prompt: str, _prices: Mapping[str, Price]) -> StrategyComparison:
    # ``key`` stands for the history and prices (ids, length, price rows) so they need not be hashed whole.
    return compare_strategies(_history, message, model=model, budget=budget, system_prompt=system_prompt,
                              prices=_prices)


def _compare(history: Sequence[Mapping[str, Any]], message: str, *, model: str, budget: int, system_prompt: str,
             prices: Mapping[str, Price]) -> StrategyComparison:
    key = (len(history), history[-1].get("id") if history else None, history[0].get("id") if history else None,
           repr(sorted((k, repr(v)) for k, v in prices.items())))
    return _cached(history, key, message, model, budget, system_prompt, prices)


def _counted(result: StrategyComparison, chain: list[dict[str, Any]], *,
             prices: Mapping[str, Price]) -> StrategyComparison:
    """With a configured server-side provider, offer the exact billed input of the chain row from its count
    endpoint; without one, say what to set. The count is kept for the same chain, model and prices."""
    counter = next((i for i in services.provider_infos() if i.capabilities.server_side_history
                    and i.capabilities.count_endpoint and i.configured), None)
    if counter is None:
        st.caption("Server-side rows are simulated. Set OPENAI_API_KEY to count the chain's billed input "
                   "with the Responses API's count endpoint.")
        return result
    fingerprint = hashlib.sha256(json.dumps([chain, result.model], sort_keys=True).encode()).hexdigest()
    if st.button(f"Count the chain's billed input with {markdown_literal(counter.label)} (one count request, no "
                 "reply)",
                 key="cmp_st_count"):
        tokens = services.provider_for(counter.name).count_tokens(chain, result.model)
        st.session_state["cmp_st_counted"] = {"fingerprint": fingerprint, "tokens": tokens}
    counted = st.session_state.get("cmp_st_counted") or {}
    if counted.get("fingerprint") != fingerprint:
        return result
    rows = [with_counted_billing(r, int(counted["tokens"]), model=result.model, prices=prices)
            if r.key == "server-chain" else r for r in result.rows]
    return replace(result, rows=rows)


def strategy_table(result: StrategyComparison) -> pd.DataFrame:
    """One row per strategy; every cell a string with its unit in the header ("—" when there is none)."""
    rows = [{
        "strategy": row.short_label,
        "bytes sent": tokens_text(row.bytes_sent),
        "tokens sent": tokens_text(row.tokens_sent),
        "tokens billed (input)": tokens_text(row.tokens_billed),
        "cached tokens": f"{tokens_text(row.cached_tokens)} ({_origin(row.cached_source)})",
        "input cost (µ$)": micro_dollars(row.cost),
    } for row in result.rows]
    return pd.DataFrame(rows).set_index("strategy")


def visibility_table(result: StrategyComparison) -> pd.DataFrame:
    """What the model could see under each strategy (its own table: the text is too long for a column)."""
    return pd.DataFrame([{"strategy": row.short_label, "what the model could see": row.visibility.text()}
                         for row in result.rows]).set_index("strategy")


def _origin(source: str) -> str:
    return "simulated" if "simulated" in source else "provider-reported"


def show_comparison(result: StrategyComparison) -> None:
    compare_results.plain_table(strategy_table(result))
    compare_results.plain_table(visibility_table(result))
    chain = result.row("server-chain")
    billed = "" if chain.source == SIMULATED_SERVER else f" (previous_response_id row billed: {chain.source})"
    st.caption(markdown_literal(
        f"{result.turns:,} turns, the next message included; budget and compaction threshold {result.budget:,} "
        f"tokens; counts {result.count_label}. Server-side rows: {SIMULATED_SERVER}{billed}. "
        + " ".join(result.notes) + " Costs are input-side: the reply's output costs the same whichever strategy "
        "sent the history."))
    st.info("Server-side state makes the request small, not cheap: every earlier input token is still billed "
            "on every turn, as the 'tokens billed' column shows.")
    for row in result.rows:
        with st.expander(f"{markdown_literal(row.label)}: notes and request body"):
            st.markdown("\n".join(f"- {markdown_literal(note)}" for note in row.notes) or "- No notes.")
            st.caption(f"Tokens billed: {markdown_literal(row.source)}. Cached tokens: "
                       f"{markdown_literal(row.cached_source)}.")
            st.code(pretty(row.request), language="json", wrap_lines=True)


# ---------------------------------------------------------------- Gemini: explicit against implicit caches

GEMINI_TTLS = {"5 minutes": 5 / 60, "1 hour": 1.0}


def gemini_caches(history: Sequence[Message], message: str, *, system_prompt: str, budget: int,
                  prices: Mapping[str, Price]) -> None:
    """The same conversation sent to Gemini turn by turn: an explicit context cache (created, reused, stored
    for its TTL) against Gemini's implicit cache and no cache. SIMULATED, from the price table."""
    st.header("Gemini: explicit context cache against implicit caching")
    st.caption("Gemini caches a repeated prefix by itself (implicit: no fee, no guarantee). An explicit cache "
               "(caches.create) holds the system prompt and the stable history for a TTL: its tokens are billed "
               "once at the input price, read at the cached price, and stored at a price per hour of the TTL. "
               "Each turn of this conversation (cache-aware trimming, one minute apart) is replayed under the "
               "three modes; counts are tiktoken's (approximate for Gemini).")
    models = [m for m in prices if m.startswith("gemini")]
    if not models:
        st.info("The price table has no Gemini row; add one (with cache_storage) to compare the caches.")
        return
    left, right = st.columns(2)
    # 2.5 Flash first: its 2,048-token minimum lets the bundled demo reach a cache; the 3.x models need 4,096.
    st.session_state.setdefault("cmp_st_gemini_model", "gemini-2.5-flash" if "gemini-2.5-flash" in models
                                else models[0])
    model = left.selectbox("Gemini model", models, key="cmp_st_gemini_model")
    ttl = right.radio("Explicit cache TTL", list(GEMINI_TTLS), key="cmp_st_gemini_ttl", horizontal=True)
    payloads = conversation_payloads(history, message, model=model, budget=budget, system_prompt=system_prompt)
    result = compare_explicit_implicit(payloads, model=model, ttl_hours=GEMINI_TTLS[ttl], prices=prices)
    compare_results.plain_table(gemini_table(result))
    totals = {name: CacheComparison.total(turns) for name, turns in
              (("explicit", result.explicit), ("implicit", result.implicit), ("none", result.uncached))}
    st.caption(markdown_literal(
        f"Input-side totals over {len(payloads)} turns, simulated: explicit cache {micro_dollars(totals['explicit'])} "
        f"µ$, implicit {micro_dollars(totals['implicit'])} µ$, no cache {micro_dollars(totals['none'])} µ$. "
        f"Nothing under {result.min_tokens:,} tokens is cached ({model}'s minimum): a short conversation costs "
        "the same three ways, and an explicit cache only pays off when its prefix is read often enough within "
        "the TTL to cover its storage."))


def gemini_table(result: CacheComparison) -> pd.DataFrame:
    rows = [{
        "turn": str(n),
        "input tokens": tokens_text(explicit.input_tokens),
        "explicit: cached": tokens_text(explicit.cached_tokens),
        "explicit: created": tokens_text(explicit.created_tokens),
        "explicit: storage (µ$)": micro_dollars(explicit.storage_cost),
        "explicit (µ$)": micro_dollars(explicit.cost),
        "implicit: cached": tokens_text(implicit.cached_tokens),
        "implicit (µ$)": micro_dollars(implicit.cost),
        "no cache (µ$)": micro_dollars(none.cost),
    } for n, (explicit, implicit, none) in enumerate(zip(result.explicit, result.implicit, result.uncached,
                                                          strict=True), start=1)]
    return pd.DataFrame(rows).set_index("turn")
