"""The token inspector's lower sections: the messages table, the what-if, prompt caching, provider counts.

Widget keys start with ``ins_``. Provider count endpoints are network calls, so they run only when their
button is clicked, never on a rerun; their figures are kept in session state per payload.

Long sessions: the tables show PAGE_ROWS rows at a time (a 10,000-row styled table took the server and the
browser several seconds each), and the prompt-caching replay, several seconds at 10,000 messages, runs by
itself only up to CACHING_AUTO_MESSAGES messages; above that, when its expander is opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd
import streamlit as st

from lib.chat import turn_body
from lib.context import seed_breaking_budgets
from lib.core import Message, Price, TurnRecord, markdown_literal, signed, wire_payload
from lib.costs import PROFILES, get_profile
from lib.tokens import count_chat_tokens, count_label
from lib.views import (
    Inspection,
    Page,
    WhatIf,
    cache_stack_frame,
    comparison_frame,
    cumulative_cost_frame,
    page_count,
    page_of,
    strategy_label,
)
from lib.views import strategy_totals as _strategy_totals
from pages.ui import errors, services
from pages.ui.inspector_charts import Figure, cache_stack_chart, cost_chart
from pages.ui.timeline import render_body

TABLE_HEIGHT = 520
COUNTS_KEY = "ins_provider_counts"
PAGE_ROWS = 200
CACHING_AUTO_MESSAGES = 1_000
CACHING_KEY = "ins_caching_open"
BODY_TURN_KEY = "ins_body_turn"


def show_chart(figure: Figure) -> None:
    """A chart of pages.ui.inspector_charts, and its sampling note when it was thinned."""
    spec, note = figure
    st.vega_lite_chart(spec, width="stretch")
    if note:
        st.caption(note)


def paged(frame: pd.DataFrame, *, key: str) -> Page:
    """The page of ``frame`` picked in a pagination widget under ``key`` (no widget when one page holds all)."""
    count = page_count(len(frame), size=PAGE_ROWS)
    if count == 1:
        return page_of(frame, 1, size=PAGE_ROWS)
    if st.session_state.get(key, 1) > count:  # a shorter session opened since: its last page instead
        st.session_state[key] = count
    number = st.pagination(count, key=key, max_visible_pages=9)
    return page_of(frame, number, size=PAGE_ROWS)


def message_columns(encoding: str) -> dict[str, Any]:
    """Plain column names for lib.views.inspection's message frame (its ``id`` column is not shown)."""
    col = st.column_config
    return {
        "#": col.NumberColumn("#", help="Position in the stored history", width="small"),
        "left_out": col.CheckboxColumn("Left out", help="Left out of at least one payload", width="small"),
        "role": col.TextColumn("Role", width="small"),
        "kind": col.TextColumn("Kind", help="prose, CJK, code, JSON / tool call or emoji"),
        "preview": col.TextColumn("Message", width="large"),
        "chars": col.NumberColumn("Characters"),
        "estimate": col.NumberColumn("Estimate", help=count_label("estimate") + " of the content, as the seed "
                                     "counts it (a tool call's arguments count as nothing)."),
        "text_tokens": col.NumberColumn("Exact", help=f"{count_label('tiktoken', encoding=encoding)}: the "
                                        "message's text, without the per-message framing."),
        "error_pct": col.NumberColumn("Error %", format="%+.1f", help="(estimate − exact) / exact"),
        "chars_per_token": col.NumberColumn("Chars per token", format="%.2f"),
        "exact": col.NumberColumn("In payload", help="Exact tokens this message adds to a payload, framing "
                                  "included (3 per message plus the role)."),
        "dropped_at_turn": col.NumberColumn("First dropped at turn"),
        "times_dropped": col.NumberColumn("Times dropped"),
    }


def messages_table(data: Inspection, *, key: str = "ins_messages") -> None:
    st.header("Messages")
    page = paged(data.messages, key=f"{key}_page")
    sort = "Click a column to sort this page. " if page.count > 1 else "Click a column to sort. "
    st.caption(f"{page.caption()} Each stored message: the chars/4 estimate against its exact tokens. {sort}"
               "Ticked under *Left out*: left out of at least one payload.")
    frame = page.rows.drop(columns=["id"])
    frame.insert(1, "left_out", frame["dropped_at_turn"].notna())
    # No pandas Styler (it used to shade these rows): styling 200 rows cost the server ~0.2 s and the browser
    # a regex per cell. placeholder: a message never dropped (or an unavailable count) reads as a dash.
    st.dataframe(frame, hide_index=True, width="stretch", height=TABLE_HEIGHT, placeholder="—",
                 column_config=message_columns(data.encoding), key=key)


def payload_messages(history: Sequence[Message], result: WhatIf, system_prompt: str) -> list[dict[str, Any]]:
    """The what-if's payload as wire messages (system prompt first), for a provider's count endpoint."""
    by_id = {m.get("id"): m for m in history}
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    return wire_payload([*system, *(by_id[i] for i in result.kept_ids if i in by_id)])[0]


def what_if_table(data: Inspection, result: WhatIf) -> None:
    page = paged(data.messages, key="ins_what_if_page")
    if page.count > 1:
        st.caption(f"{page.caption()} The counts above cover every message.")
    table = page.rows.assign(send=~page.rows["id"].isin(set(result.dropped_ids)))
    col = st.column_config
    st.dataframe(table[["#", "role", "preview", "exact", "estimate", "send"]], hide_index=True, width="stretch",
                 height=300, placeholder="—", column_config={
                     "role": col.TextColumn("Role"), "preview": col.TextColumn("Message", width="large"),
                     "exact": col.NumberColumn("Exact (in payload)"), "estimate": col.NumberColumn("Estimate"),
                     "send": col.CheckboxColumn("Would be sent")})


@st.cache_data(show_spinner="Finding where the seed strategy breaks…", max_entries=16)
def seed_breaks(session_id: str, size: int, model: str, system_prompt: str, _history: list) -> list:
    # Exact and O(n log n) (lib.context.seed); cached only so a rerun does not even do that.
    return seed_breaking_budgets(_history, model=model, system_prompt=system_prompt)


def seed_verdict(session_id: str, history: list, model: str, system_prompt: str) -> None:
    breaks = seed_breaks(session_id, len(history), model, system_prompt, history)
    if breaks:
        budget_at, problems = breaks[0]
        st.warning(f"**Where the seed strategy breaks:** at a budget of {budget_at:,} tokens (and "
                   f"{len(breaks) - 1} other budgets tried) it builds an invalid payload: "
                   f"{markdown_literal(problems[0])} The turns strategy never does, because it drops whole turns.")
    else:
        st.info("On this history the seed strategy stays valid at every budget tried.")


# ---------------------------------------------------------------- provider count endpoints


def _short_name(label: str) -> str:
    return label.split(" (")[0]


def provider_counts(payload: list[dict[str, Any]], model: str) -> None:
    """"Count with <provider>" buttons for the providers with a count endpoint and a key (never automatic)."""
    # A local server's tokenizer is offered only when that server is the provider chosen in the sidebar.
    chosen = st.session_state.get("sb_provider")
    infos = [i for i in services.provider_infos() if i.capabilities.count_endpoint and i.configured
             and (i.capabilities.count_source != "server" or i.name == chosen)]
    if not infos:
        st.caption("Exact counts from a provider: add an Anthropic, OpenAI or Gemini key to get \"Count with …\" "
                   "buttons (their count endpoints are called only when you click), or choose a local "
                   "OpenAI-compatible llama.cpp server in the sidebar to count with its own tokenizer. Until then, "
                   "counts for Claude and Gemini models are tiktoken's, labelled approximate.")
        return
    signature = hash(repr(payload))
    results: dict[str, tuple[int, str, int]] = st.session_state.setdefault(COUNTS_KEY, {})
    cols = st.columns(len(infos))
    for col, info in zip(cols, infos, strict=True):
        server = info.capabilities.count_source == "server"
        if col.button("Count with this server" if server else f"Count with {_short_name(info.label)}",
                      key=f"ins_count_{info.name}",
                      help="Asks the local server (llama.cpp's /apply-template and /tokenize) for its own count of "
                           "this payload." if server else
                           "Calls the provider's token-count endpoint for this payload (a network call)."):
            count_model = model if model in info.models else info.default_model
            with errors.error_boundary() as caught:
                figure = services.provider_for(info.name).count_tokens(payload, count_model)
            if caught.error:
                continue
            results[info.name] = (signature, count_model, figure)
    for info in infos:
        saved = results.get(info.name)
        if saved and saved[0] == signature:
            _count_row(_short_name(info.label), saved[1], saved[2], payload, source=info.capabilities.count_source)


def _count_row(name: str, model: str, figure: int, payload: list[dict[str, Any]], *,
               source: Literal["endpoint", "server"] = "endpoint") -> None:
    local = count_chat_tokens(payload, model)
    diff = (local - figure) / figure * 100 if figure else None
    left, right = st.columns(2)
    left.metric(markdown_literal(f"{name}: {count_label(source)}"), f"{figure:,}")
    right.metric(markdown_literal(count_label("tiktoken", model=model)), f"{local:,}",
                 delta=None if diff is None else f"{signed(diff, '.1f')}% against {name}", delta_color="off",
                 delta_arrow="off")


# ---------------------------------------------------------------- prompt caching

TEACHING = (
    "A provider's prompt cache only reuses the longest **prefix** it has seen before. Dropping the oldest "
    "turn on every request (what *Whole turns* and the tutorial's trimHistory do once the window is full) "
    "changes the payload right after the system prompt, so almost every token is new again and paid in full. "
    "Trimming in larger, rarer steps (*cache-friendly*: cut down to 70% of the budget once, then keep that "
    "cut while the payload grows) leaves the prefix unchanged for many turns, so most of it is read from the "
    "cache at a fraction of the price."
)


@st.cache_data(show_spinner="Replaying the session under each strategy…", max_entries=32)
def strategy_totals(session_id: str, size: int, model: str, budget: int, system_prompt: str, profile: str,
                    prices: tuple, _history: list) -> list:
    return _strategy_totals(_history, model=model, budget=budget, system_prompt=system_prompt, profile=profile,
                            prices=dict(prices) or None)


def caching_section(session_id: str, history: list, *, model: str, budget: int, system_prompt: str,
                    prices: Mapping[str, Price]) -> None:
    st.header("Prompt caching: what re-sent history really costs")
    st.markdown(TEACHING)
    auto = len(history) <= CACHING_AUTO_MESSAGES
    # on_change="rerun": the replay runs only while the expander is open (a closed expander's content is
    # otherwise still run and sent). Open by default when the session is short enough to replay quickly.
    if not auto:
        st.caption(f"Replaying {len(history):,} messages under four strategies, caching on and off, takes a few "
                   "seconds, so it runs only when you open it below.")
    box = st.expander("Replay this session under each strategy, caching on and off", expanded=auto,
                      key=CACHING_KEY, on_change="rerun")
    if box.open:
        with box:
            _caching_replay(session_id, history, model=model, budget=budget, system_prompt=system_prompt,
                            prices=prices)


def _caching_replay(session_id: str, history: list, *, model: str, budget: int, system_prompt: str,
                    prices: Mapping[str, Price]) -> None:
    ids = list(PROFILES)
    profile = st.selectbox("Cache rules", ids, format_func=lambda p: PROFILES[p].label, key="ins_cache_profile")
    chosen = st.selectbox("Strategy shown per turn", ["turns", "cache-aware", "seed", "none"],
                          format_func=strategy_label, key="ins_cache_strategy")
    # The eight replays take about 0.5 s at 2,000 messages and 5 s or more at 10,000 on two cores: the
    # cache simulation re-reads each payload that changed right after the system prompt.
    with errors.error_boundary() as caught:
        totals = strategy_totals(session_id, len(history), model, budget, system_prompt, profile,
                                 tuple(sorted(prices.items())), history)
    if caught.error:
        return
    rules = get_profile(profile)
    minimum = rules.min_prefix_for(model) if rules else 0
    cached = next(t for t in totals if t.strategy == chosen and t.profile is not None)
    if cached.max_payload < minimum:
        st.info(f"At a budget of {budget:,} tokens no payload reaches the {minimum:,}-token minimum these rules "
                "need before anything is cached, so caching changes nothing here. Raise the budget above it to "
                "see the effect.")
    show_chart(cache_stack_chart(cache_stack_frame(cached), f"{strategy_label(chosen)}: input tokens per turn at "
                                 f"a budget of {budget:,}"))
    comparison = comparison_frame(totals)
    col = st.column_config
    st.dataframe(comparison, hide_index=True, width="stretch", column_config={
        "strategy": col.TextColumn("Strategy"), "caching": col.TextColumn("Caching"),
        "tokens_sent": col.NumberColumn("Tokens sent", format="localized"),
        "hit_rate": col.NumberColumn("Cache hit rate", format="%.1f%%"),
        "cost": col.NumberColumn("Total input cost", format="$%.5f"),
        "largest_payload": col.NumberColumn("Largest payload", format="localized"),
        "overflowed": col.NumberColumn("Turns that did not fit")})
    costs = cumulative_cost_frame(totals)
    if costs.empty:
        st.caption(f"No price for {markdown_literal(model)}: add one in the price table to compare costs.")
    else:
        show_chart(cost_chart(costs))
    st.caption(f"{count_label('simulated')}: {PROFILES[profile].label} rules applied to this history replayed "
               f"under each strategy at the same budget ({budget:,} tokens), prices for {markdown_literal(model)}. "
               f"Source: {PROFILES[profile].source}")



def request_body_section(history: Sequence[Message], turns: Sequence[Any], meta: Mapping[str, str]) -> None:
    """The exact body of one turn's request, as the chat's timeline shows it (the same adapter rebuilds it)."""
    # Only the chosen record is typed: typing all 5,000 records of a long session costs half a second.
    raw = {t["turn"]: t for t in turns if isinstance(t, Mapping) and isinstance(t.get("turn"), int)}
    if not raw:
        return
    st.header("Request body of a turn")
    numbers = sorted(raw, reverse=True)
    chosen = st.selectbox("Turn", numbers, key=BODY_TURN_KEY, format_func=lambda n: f"Turn {n}")
    record = TurnRecord.from_json(raw[chosen])
    render_body(turn_body(record, history, meta), key=f"{BODY_TURN_KEY}_body_{chosen}",
                title=f"Built by the {markdown_literal(record.provider or '?')} adapter from turn {chosen}'s record: "
                      "what the provider received, whole (no key is ever stored).")
