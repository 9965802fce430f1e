"""The shared sidebar (trimming, session, provider and model, system prompt, store status) and the price table.

Every page starts with ``page_setup()``, which draws the sidebar and any queued notices and returns the
``SidebarChoices``. Widget keys owned here start with ``sb_``.

Trimming comes first and is compact, so the budget is visible without scrolling at 1440x900: it is the
control a class plays with. Provider-specific switches (strict validation, prompt caching, the model the
offline model is priced as) appear only when ``ProviderInfo.capabilities`` says they apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import pandas as pd
import streamlit as st

from lib.chat import CHAT_STRATEGIES, save_manual_choice
from lib.context import (
    MANUAL_HELP,
    MANUAL_LABEL,
    MANUAL_STRATEGIES,
    STRATEGIES,
    STRATEGY_HELP,
    STRATEGY_LABELS,
    ManualChoice,
)
from lib.core import (
    DEFAULT_PRICES,
    TOOL_SET,
    Price,
    SessionSettings,
    Settings,
    ToolDef,
    current_first,
    markdown_literal,
    model_label,
)
from lib.providers import ProviderInfo, default_provider_name
from lib.sessions import new_session_id
from pages.ui import style
from pages.ui.errors import describe_error, error_boundary
from pages.ui.services import (
    current_session_id,
    notice,
    provider_info,
    provider_infos,
    remember_deleted,
    set_session,
    settings,
    show_notices,
    store_handle,
)

PRICE_TABLE_KEY = "price_table"
BUDGET_PRESETS = (200, 500, 1_000, 2_000, 4_000, 16_000, 32_000, 80_000, 128_000, 200_000)
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
MAX_OUTPUT_TOKENS = 1024
# Without a configured TOKEN_BUDGET the chat starts small enough that a class sees turns trimmed within
# about ten offline turns; the library default (80,000) would never trim anything in a lesson.
TEACHING_BUDGET = 1_000
_LIBRARY_BUDGET = next(f.default for f in fields(Settings) if f.name == "default_budget")
KEPT_KEYS = ("sb_provider", "sb_system_prompt", "sb_strategy", "sb_budget", "sb_reserve", "sb_strict",
             "sb_prompt_caching", "sb_reference_model", "sb_tools")


@dataclass(frozen=True)
class SidebarChoices:
    """What the sidebar asks every page to use for the next request."""

    provider: str
    model: str
    system_prompt: str
    strategy: str
    budget: int
    reserve: int
    configured: bool = True
    hint: str | None = None
    strict: bool = True  # reject what a strict API would (offline: an assistant-first payload)
    prompt_caching: bool = False  # only ever True for a provider whose capabilities offer it
    reference_model: str | None = None  # the model a simulated-cache (offline) provider is priced as
    tools: tuple[ToolDef, ...] = ()  # tool definitions offered with every request (lib.core.TOOL_SET)

    @property
    def trim_strategy(self) -> str:
        """The strategy for pages that only trim (trim_history): "summary" needs a summariser, so "turns"."""
        return self.strategy if self.strategy in STRATEGIES else STRATEGIES[0]


# ---------------------------------------------------------------- services


def _budget_options(default_budget: int) -> list[int]:
    return sorted({*BUDGET_PRESETS, default_budget})


def starting_budget(cfg: Settings) -> int:
    """TOKEN_BUDGET when it is configured, else the teaching budget."""
    return TEACHING_BUDGET if cfg.default_budget == _LIBRARY_BUDGET else cfg.default_budget


def reference_models(cfg: Settings) -> list[str]:
    """Models with a price, current ones first (the configured reference model first among them), the ones
    shutting down or retired last."""
    return current_first([cfg.reference_model, *(price.model for price in DEFAULT_PRICES)])


def reference_model() -> str:
    """The one "price the offline model as" setting, read by every page: the sidebar's choice (kept in session
    state across pages), else the configured default. Offline turns are priced and cached as this model."""
    cfg = settings()
    _init_state(cfg, default_provider_name(cfg))
    return str(st.session_state["sb_reference_model"])


def _init_state(cfg: Settings, default_provider: str) -> None:
    # Guarded: widgets own these keys after the first run; setting them again would reset the user.
    st.session_state.setdefault("sb_provider", default_provider)
    st.session_state.setdefault("sb_system_prompt", DEFAULT_SYSTEM_PROMPT)
    st.session_state.setdefault("sb_strategy", STRATEGIES[0])
    st.session_state.setdefault("sb_budget", starting_budget(cfg))
    st.session_state.setdefault("sb_reserve", 0)
    st.session_state.setdefault("sb_strict", True)
    st.session_state.setdefault("sb_prompt_caching", False)
    st.session_state.setdefault("sb_reference_model", cfg.reference_model)
    st.session_state.setdefault("sb_tools", False)


def sidebar_choices() -> SidebarChoices:
    """The choices made in the sidebar on this run (defaults when the sidebar has not been drawn)."""
    cfg = settings()
    _init_state(cfg, default_provider_name(cfg))
    name = st.session_state["sb_provider"]
    info = provider_info(name)
    default_model = info.default_model if info else ""
    capabilities = info.capabilities if info else None
    return SidebarChoices(
        provider=name,
        model=str(st.session_state.get(f"sb_model__{name}") or default_model),
        system_prompt=st.session_state["sb_system_prompt"],
        strategy=st.session_state["sb_strategy"],
        budget=int(st.session_state["sb_budget"]),
        reserve=int(st.session_state["sb_reserve"]),
        configured=bool(info.configured) if info else False,
        hint=info.hint if info else f"Unknown provider {name!r}.",
        strict=bool(st.session_state["sb_strict"]),
        prompt_caching=bool(capabilities and capabilities.prompt_caching and st.session_state["sb_prompt_caching"]),
        reference_model=str(st.session_state["sb_reference_model"])
        if capabilities and capabilities.simulated_cache else None,
        tools=TOOL_SET if st.session_state["sb_tools"] else (),
    )


def page_setup(*, skip_to_chat_input: bool = False) -> SidebarChoices:
    """Every page starts with this: the shared sidebar and any queued notices. Stops the page when the
    sidebar itself fails (e.g. a bad setting), after showing why. ``skip_to_chat_input``: a page with a
    chat input gets a skip link to it, first in the sidebar."""
    style.apply()
    if skip_to_chat_input:
        with st.sidebar:
            style.skip_link()
    with error_boundary(stop=True):
        choices = render_sidebar()
    show_notices()
    return choices


def _keep_sidebar_state() -> None:
    # Each page draws its own copy of the sidebar widgets, and Streamlit resets a keyed widget that a page
    # draws for the first time. Writing the values back first makes them plain state the new widget adopts.
    for key in [k for k in st.session_state if k in KEPT_KEYS or str(k).startswith("sb_model__")]:
        st.session_state[key] = st.session_state[key]


def render_sidebar() -> SidebarChoices:
    """Draw the shared sidebar (session, provider and model, system prompt, trimming, store status)."""
    _keep_sidebar_state()
    cfg = settings()
    infos = provider_infos()
    names = [info.name for info in infos]
    _init_state(cfg, default_provider_name(cfg))
    meta = _session_meta(current_session_id())  # read once per run: the settings and the choice both live there
    stored = _restore_session_settings(names, meta)
    if st.session_state["sb_provider"] not in names:
        st.session_state["sb_provider"] = default_provider_name(cfg)
    with st.sidebar:
        _settings_changed_notice(stored)
        _trimming_section(cfg, None if meta is None else ManualChoice.from_meta(meta))
        _provider_section(infos, cfg)
        st.text_area("System prompt", key="sb_system_prompt", height=90,
                     help="Sent at the top of every payload. It is not stored as a history message.")
        tools_toggle("sb_tools")
        _session_section()
        _store_section()
    return sidebar_choices()


# -- the session's own settings ------------------------------------------------------------------------------

RESTORED_KEY = "sb_settings_of"  # the session whose stored settings the sidebar last adopted


def _session_meta(session_id: str) -> Mapping[str, str] | None:
    """The session's meta, or None when the store cannot be read (the store section below says why)."""
    with error_boundary(show=False):
        return store_handle().store.get_meta(session_id)
    return None


def _restore_session_settings(provider_names: list[str], meta: Mapping[str, str] | None) -> SessionSettings | None:
    """Adopt the settings the current session's last turn ran with, once per session opened (a reload, a
    shared ?session= link, a pick on the Sessions page), so a conversation is never shown under settings
    that did not produce it. Returns them (None: no turn stored yet)."""
    sid = current_session_id()
    stored = None if meta is None else SessionSettings.from_meta(meta)
    if st.session_state.get(RESTORED_KEY) == sid:
        return stored
    st.session_state[RESTORED_KEY] = sid
    if stored is None:
        return None
    st.session_state["sb_strategy"] = stored.strategy if stored.strategy in CHAT_STRATEGIES else STRATEGIES[0]
    st.session_state["sb_budget"] = stored.budget
    st.session_state["sb_reserve"] = stored.reserve
    st.session_state["sb_system_prompt"] = stored.system_prompt
    if stored.provider in provider_names:
        st.session_state["sb_provider"] = stored.provider
        st.session_state[f"sb_model__{stored.provider}"] = stored.model
    else:
        notice("warning", f"This session's last turn used the provider {stored.provider!r}, which this server does "
                          "not offer; the sidebar keeps its own.")
    return stored


def _settings_changed_notice(stored: SessionSettings | None) -> None:
    """Say so when the sidebar no longer matches the settings the session's last turn ran with."""
    if stored is None:
        return
    now = sidebar_choices()
    current = SessionSettings(strategy=now.strategy, budget=now.budget, reserve=now.reserve, provider=now.provider,
                              model=now.model, system_prompt=now.system_prompt)
    changed = current.changes_from(stored)
    if changed:
        st.info(f"Changed since this session's last turn: {markdown_literal(', '.join(changed))}. The next turn "
                "uses the new settings; the turns so far keep the ones they ran with (each turn's record says "
                "which).", icon=":material/tune:")
def tools_toggle(key: str) -> bool:
    """"Send tool definitions" with the definitions as JSON; the chat's and Compare's switch."""
    on = st.toggle("Send tool definitions", key=key,
                   help="Offer three small tools (get_weather, search_web, calculator) with every request, in "
                        "each provider's own shape, with tool_choice none: the lab shows what the definitions "
                        "cost (counted, cached, never trimmed), it does not run tools.")
    if on:
        with st.expander(f"The {len(TOOL_SET)} tool definitions (JSON)"):
            st.json([t.to_json() for t in TOOL_SET], expanded=2)
    return bool(on)


def _session_section() -> None:
    sid = current_session_id()
    st.subheader("Session")
    # st.text, not st.code: a code block makes every page fetch and run the syntax highlighter's bundle
    # (1.2-1.7 s of browser CPU on each cold load, in the profiles of the chat and the inspector).
    st.text(sid)
    st.caption("Kept in the URL as `?session=`: reload or share the link to reopen this conversation.")
    left, right = st.columns(2)
    left.button("New chat", key="sb_new_chat", on_click=_new_chat, width="stretch")
    right.button("Delete session", key="sb_delete", on_click=_ask_delete, width="stretch")
    if st.session_state.get("sb_confirm_delete"):
        st.warning("Delete this session and all its messages from the store? This cannot be undone.")
        yes, no = st.columns(2)
        yes.button("Yes, delete", key="sb_delete_yes", type="primary", on_click=_delete_session, args=(sid,),
                   width="stretch")
        no.button("Cancel", key="sb_delete_cancel", on_click=_cancel_delete, width="stretch")


def _new_chat() -> None:
    set_session(new_session_id())


def _ask_delete() -> None:
    st.session_state["sb_confirm_delete"] = True


def _cancel_delete() -> None:
    st.session_state.pop("sb_confirm_delete", None)


def _delete_session(session_id: str) -> None:
    # Callbacks run before the script, where an exception would be shown as a traceback; queue a notice.
    with error_boundary(show=False) as caught:
        store_handle().store.clear_history(session_id)
    if caught.error:
        notice("error", f"Could not delete the session: {describe_error(caught.error)}")
        return
    st.session_state.pop(f"hl_last_turn__{session_id}", None)
    remember_deleted(session_id)
    set_session(new_session_id())
    notice("success", f"Deleted session {session_id}. This is a new chat.")


def _provider_section(infos: list[ProviderInfo], cfg: Settings) -> None:
    st.subheader("Provider")
    by_name = {info.name: info for info in infos}

    def label(name: str) -> str:
        info = by_name[name]
        return info.label if info.configured else f"{info.label} (not configured)"

    name = st.selectbox("Provider", list(by_name), key="sb_provider", format_func=label)
    info = by_name[name]
    if not info.configured:
        st.warning(f"{markdown_literal(info.label)} is not configured. {markdown_literal(info.hint)}")
    key = f"sb_model__{name}"
    st.session_state.setdefault(key, info.default_model)
    # The current model is always an option: a restored session may name one the list does not.
    models = current_first(list(dict.fromkeys([info.default_model, *(info.models or []), str(st.session_state[key])])))
    st.selectbox("Model", models, key=key, accept_new_options=True, format_func=model_label,
                 help="Pick a listed model or type another name. Current models come first; a model that is "
                      "being shut down says when.")
    _capability_switches(info, cfg)


def _capability_switches(info: ProviderInfo, cfg: Settings) -> None:
    """Switches that only mean something for some providers, shown from capabilities, never from names."""
    capabilities = info.capabilities
    if capabilities.simulated_cache:
        models = reference_models(cfg)
        if st.session_state["sb_reference_model"] not in models:
            st.session_state["sb_reference_model"] = cfg.reference_model
        st.selectbox("Price the offline model as", models, key="sb_reference_model", format_func=model_label,
                     help="Nobody bills the offline model: its costs and its simulated prompt cache are those "
                          "of this model, from the price table.")
    if capabilities.strict_validation:
        st.toggle("Strict validation", key="sb_strict",
                  help="Reject what the strictest API would: a payload that starts with an assistant message "
                       "(Anthropic rejects it, OpenAI accepts it).")
    if capabilities.prompt_caching:
        st.toggle("Prompt caching", key="sb_prompt_caching",
                  help=info.caching_note or "Mark the system prompt and the stable history as cacheable "
                       "(cache_control): re-sent history is then read from the cache at a fraction of the price.")


def _trimming_section(cfg: Settings, choice: ManualChoice | None) -> None:
    st.subheader("Trimming")
    if st.session_state["sb_strategy"] not in CHAT_STRATEGIES:
        st.session_state["sb_strategy"] = STRATEGIES[0]
    st.selectbox("Strategy", CHAT_STRATEGIES, key="sb_strategy", format_func=strategy_label,
                 help="\n\n".join(f"**{strategy_label(k)}**: {STRATEGY_HELP.get(k, '')}" for k in CHAT_STRATEGIES))
    _manual_layer(choice)
    options = sorted({*_budget_options(starting_budget(cfg)), int(st.session_state["sb_budget"])})
    st.select_slider("Token budget (context window)", options=options,
                     key="sb_budget", format_func=lambda n: f"{n:,}",
                     help="Pick 200 or 500 to see old turns dropped within a few messages.")
    st.number_input("Reserve for the reply (tokens)", min_value=0, step=50, key="sb_reserve",
                    help="Kept free inside the budget for the model's answer.")
    if st.session_state["sb_reserve"] >= st.session_state["sb_budget"]:
        st.warning("The reserve is as large as the budget, so nothing can be sent. Lower the reserve.")


def _manual_layer(choice: ManualChoice | None) -> None:
    """"You choose" over the strategy: how many turns of this session are pinned or left out, and Clear.
    ``choice`` is None when the store could not be read (the store section reports it once)."""
    if not choice:
        st.caption(f"**{MANUAL_LABEL}**: pin or leave out a turn with the buttons under your messages in the chat.",
                   help=MANUAL_HELP)
        return
    applies = st.session_state["sb_strategy"] in MANUAL_STRATEGIES
    where = "" if applies else f" Not applied with this strategy: choose {' or '.join(MANUAL_STRATEGIES)}."
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.caption(f"**{MANUAL_LABEL}** over this strategy: 📌 {len(choice.pinned)} pinned · ⊘ {len(choice.left_out)} "
                 f"left out.{where}", help=MANUAL_HELP)
    right.button("Clear", key="sb_manual_clear", on_click=_clear_manual, type="tertiary",
                 help="Hand every turn back to the strategy.")


def _clear_manual() -> None:
    with error_boundary(show=False) as caught:
        save_manual_choice(store_handle().store, current_session_id(), ManualChoice())
    if caught.error:
        notice("error", f"Could not clear your choice: {describe_error(caught.error)}")


def strategy_label(strategy: str) -> str:
    """The name a newcomer understands, with the internal id (what the API and the records use)."""
    return f"{STRATEGY_LABELS.get(strategy, strategy)} ({strategy})"


def _store_section() -> None:
    st.subheader("Store")
    with error_boundary() as caught:
        handle = store_handle()
        sid = current_session_id()
        ttl = handle.store.ttl(sid)
    if caught.error:
        return
    if handle.kind == "memory":
        st.warning(f"**Memory**: lost on restart. {markdown_literal(handle.notice or '')}".strip())
    elif handle.kind == "embedded":
        st.success(f"**Embedded Valkey**: {markdown_literal(handle.label)}")
    else:
        st.info(f"**Redis ({markdown_literal(handle.kind)})**: {markdown_literal(handle.label)}")
    if handle.notice and handle.kind != "memory":
        st.caption(markdown_literal(handle.notice))
    st.caption(f"TTL left for this session: {format_ttl(ttl)}")


def format_ttl(seconds: int | None) -> str:
    if seconds is None or seconds < 0:
        return "not stored yet (send a message)"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def current_prices() -> dict[str, Price] | None:
    """The price table as edited on any page this session (None: the defaults)."""
    from lib.core import prices_from_rows

    rows = st.session_state.get(PRICE_TABLE_KEY)
    if not rows:
        return None
    try:
        return prices_from_rows(rows)
    except ValueError:
        return None  # the page with the editor says what is wrong with it


def price_table(key: str) -> dict[str, Price]:
    """The editable price table (US$ per million tokens), shared by the pages via session state."""
    from lib.core import DEFAULT_PRICES, price_rows, prices_from_rows

    st.session_state.setdefault(PRICE_TABLE_KEY, price_rows(DEFAULT_PRICES))
    with st.expander("Prices (US$ per million tokens, editable, shared by the pages)"):
        edited = st.data_editor(pd.DataFrame(st.session_state[PRICE_TABLE_KEY]), key=key, num_rows="dynamic",
                                width="stretch")
    rows = [{str(k): v for k, v in row.items()} for row in edited.to_dict("records")]
    try:
        table = prices_from_rows(rows)
    except ValueError as exc:
        st.error(f"The price table has a bad row: {markdown_literal(str(exc))}. Fix it to see costs.")
        return {}
    st.session_state[PRICE_TABLE_KEY] = rows
    return table
