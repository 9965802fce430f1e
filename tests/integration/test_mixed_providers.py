"""One session, three providers: each turn is counted, labelled and priced by its own model, on every page.

Turns go through the real SDKs to the fake wire server (Anthropic Messages, OpenAI Chat Completions) and
through the offline model; the inspector (AppTest), the timeline and the API's usage fields are then read back.
"""

from __future__ import annotations

import pytest

from lib.chat import TurnRequest, run_turn
from lib.core import ReplyMeta, default_table, read_turns, usage_cost
from lib.providers import get_provider
from lib.sessions import MemoryStore
from lib.views import build_timeline, inspect, models_used, reply_caption
from tests.support.apptest_helpers import open_app, shown, use_memory_store
from tests.support.fake_llm import FakeLLM

PAGE = "pages/inspector.py"
CLAUDE, GPT = "claude-sonnet-4-6", "gpt-5.4-mini"


def mixed_session(store, fake: FakeLLM, *, reference_model: str = "gpt-5.4-nano") -> str:
    anthropic = get_provider("anthropic", api_key="sk-ant-test", base_url=fake.anthropic_url, max_retries=0)
    openai = get_provider("openai", api_key="sk-test", base_url=fake.openai_url, max_retries=0)
    offline = get_provider("offline", delay=0, reference_model=reference_model)
    sid = run_turn(store, anthropic, TurnRequest(user_text="Hello Claude", model=CLAUDE)).session_id
    run_turn(store, openai, TurnRequest(user_text="Hello GPT", session_id=sid, model=GPT))
    run_turn(store, offline, TurnRequest(user_text="Hello offline", session_id=sid, reference_model=reference_model))
    return sid


def test_each_turn_is_counted_labelled_and_priced_by_its_own_model(fake_llm):
    store = MemoryStore()
    sid = mixed_session(store, fake_llm)
    records = read_turns(store.get_turns(sid))
    assert [(r.provider, r.model, r.priced_as) for r in records] == [
        ("anthropic", CLAUDE, None), ("openai", GPT, None), ("offline", "offline-teacher", "gpt-5.4-nano")]
    data = inspect(store.get_history(sid), records, model=GPT, prices=default_table(), reference_model="gpt-5.4-mini")
    lines = models_used(data.turns)
    assert lines[0] == f"turn 1: {CLAUDE} (anthropic), approximate (o200k_base stands in for {CLAUDE})"
    assert lines[1] == f"turn 2: {GPT} (openai), exact (tiktoken, o200k_base)"
    # The offline turn keeps the model it was priced as when it was sent, whatever the setting is now.
    assert lines[2].startswith("turn 3: offline-teacher (offline)") and lines[2].endswith("priced as gpt-5.4-nano")
    assert data.cumulative["cost"].notna().all()  # before: "No price for offline-teacher"
    # The Claude turn is priced at Claude's input price, not the page's model's.
    claude_tokens = data.cumulative["sent"].iloc[0]
    assert data.cumulative["cost"].iloc[0] == pytest.approx(claude_tokens * 3.0 / 1e6)


def test_the_timeline_prices_and_labels_each_turn_by_its_own_model(fake_llm):
    store = MemoryStore()
    sid = mixed_session(store, fake_llm)
    history, records = store.get_history(sid), read_turns(store.get_turns(sid))
    timeline = build_timeline(history, records, meta=store.get_meta(sid), reference_model="gpt-5.4-mini")
    claude, gpt, offline = timeline.rows
    assert claude.count_source == f"approximate (o200k_base stands in for {CLAUDE})"
    assert gpt.count_source == "exact (tiktoken, o200k_base)"
    meta = ReplyMeta.from_json(history[1]["meta"])
    assert claude.cost == pytest.approx(usage_cost(meta.usage, CLAUDE))
    assert "priced as gpt-5.4-nano" in offline.cost_source


def test_anthropic_and_openai_captions_mean_the_same_by_in(fake_llm):
    """Anthropic's input_tokens exclude cache reads and writes, OpenAI's include them: "in" is their sum in
    both, and Anthropic's cache writes are shown with their TTL split."""
    store = MemoryStore()
    sid = mixed_session(store, fake_llm)
    replies = [ReplyMeta.from_json(m["meta"]) for m in store.get_history(sid) if m["role"] == "assistant"]
    claude, gpt = reply_caption(replies[0]), reply_caption(replies[1])
    # The fake server: Anthropic input_tokens 10, plus 3 read and 7 written (5 for 5 minutes, 2 for an hour).
    assert claude.startswith("in 20 = 10 uncached + 3 cache read + 7 cache write (5m 5, 1h 2) · out 5 tokens "
                             "(provider-reported)")
    # 10×3 + 5×3.75 + 2×6 + 3×0.30 + 5×15 µ$: the hour-long writes at their own rate, and shown.
    assert "cost 136.7 µ$ (price of claude-sonnet-4-6)" in claude
    # OpenAI prompt_tokens 30 already include its 3 cached and 2 written tokens.
    assert gpt.startswith("in 30 = 25 uncached + 3 cache read + 2 cache write · out 5 tokens (provider-reported)")
    assert "price of claude-sonnet-4-6" in claude and "price of gpt-5.4-mini" in gpt


def test_inspector_page_labels_a_mixed_session_turn_by_turn(monkeypatch):
    use_memory_store(monkeypatch)
    from pages.ui import services

    fake = FakeLLM().start()
    try:
        sid = mixed_session(services.store_handle().store, fake)
    finally:
        fake.stop()
    at = open_app(PAGE, session=sid)
    assert not at.exception and not at.error
    text = "\n".join(shown(c.value) for c in at.caption)
    assert f"turn 1: {CLAUDE} (anthropic), approximate (o200k_base stands in for {CLAUDE})" in text
    assert f"turn 2: {GPT} (openai), exact (tiktoken, o200k_base)" in text
    assert "priced as gpt-5.4-nano" in text
    assert "No price for offline-teacher" not in text
    assert "Input cost so far" in text and f"input price of {CLAUDE}, {GPT}, gpt-5.4-nano" in text


def test_model_pickers_offer_current_models_first_and_say_when_one_shuts_down(monkeypatch):
    use_memory_store(monkeypatch, OPENAI_API_KEY="sk-test")
    at = open_app()
    at.selectbox(key="sb_provider").set_value("openai").run()
    options = at.selectbox(key="sb_model__openai").options
    shutting = [o for o in options if "shuts down on" in o or "retired on" in o]
    # "shuts down on" until that day, "retired on" after it: the label follows the calendar.
    assert any(o.startswith("gpt-4o-mini (") and o.endswith(" on 2027-01-14)") for o in shutting)
    assert options.index(shutting[0]) > options.index("gpt-5.6-luna")  # current models first
    assert all("(" not in o for o in options[: options.index(shutting[0])])
    at.selectbox(key="sb_provider").set_value("offline").run()
    reference = at.selectbox(key="sb_reference_model")
    assert reference.value == "gpt-5.4-mini"  # the default is not being shut down
    assert "claude-sonnet-4-5 (retired on 2026-11-30)" == reference.options[-1]
