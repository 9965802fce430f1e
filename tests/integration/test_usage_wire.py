"""The 2026 usage and cache surfaces on the wire: the real openai and anthropic SDKs against the fake server.

What each request asked for (prompt_cache_options, prompt_cache_key, cache diagnostics, Anthropic threads and
context edits) is read back from what the server received; what each reply reported (writes by TTL, the reason
a cache missed, a local server's missing cache figure) is read back from the usage, captions, badges and API.
"""

from __future__ import annotations

import pytest

from lib.chat import TurnRequest, prompt_cache_key, run_turn
from lib.core import NOT_REPORTED_HINT, ReplyMeta, Settings, cache_verdict, read_turns, usage_caption, usage_cost
from lib.providers import ProviderOptions, get_provider
from lib.sessions import MemoryStore
from lib.views import build_timeline, reply_caption
from tests.support.api_inprocess import inprocess_api
from tests.support.fake_llm import OMIT, FakeLLM
from tests.support.fake_llm_events import OPENAI_WRITES

KEY = "sk-test-usage"
HELLO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]


def provider(name: str, fake: FakeLLM, **options):
    url = fake.anthropic_url if name.startswith("anthropic") else fake.openai_url
    return get_provider(name, Settings(), api_key=KEY, base_url=url, max_retries=0, **options)


def drain(reply) -> None:
    for _ in reply:
        pass


# -- OpenAI gpt-5.6: prompt_cache_options, prompt_cache_key, writes by TTL --------------------------------------


@pytest.mark.parametrize("ttl", ["30m", "12h"])
def test_responses_asks_for_its_cache_ttl_and_prices_the_writes_it_reports(fake_llm, ttl):
    reply = provider("openai-responses", fake_llm).stream(
        HELLO, model="gpt-5.6-terra", options=ProviderOptions(cache_ttl=ttl, prompt_cache_key="history-lab-abc"))
    drain(reply)
    body = fake_llm.bodies("/responses")[-1]
    assert body["prompt_cache_options"] == {"mode": "implicit", "ttl": ttl}
    assert body["prompt_cache_key"] == "history-lab-abc"
    usage = reply.usage
    assert usage.cache_write_tokens == OPENAI_WRITES
    split = (OPENAI_WRITES, 0) if ttl == "30m" else (0, OPENAI_WRITES)
    assert (usage.cache_write_30m, usage.cache_write_12h) == split
    # input 15 = 8 uncached + 3 read + 4 written, at $2 / $0.20 / $2.50 (1.25x) per million, output 5 at $12.
    assert (usage.total_input, usage.uncached_input) == (15, 8)
    assert usage_cost(usage, "gpt-5.6-terra") == pytest.approx((8 * 2.0 + 3 * 0.2 + 4 * 2.5 + 5 * 12.0) / 1e6)
    assert f"4 cache write ({ttl} 4)" in usage_caption(usage)


def test_chat_completions_sends_cache_options_only_to_models_that_take_them(fake_llm):
    chat = provider("openai", fake_llm)
    drain(chat.stream(HELLO, model="gpt-5.6-luna", options=ProviderOptions(prompt_cache_key="history-lab-abc")))
    drain(chat.stream(HELLO, model="gpt-5.4-mini", options=ProviderOptions(prompt_cache_key="history-lab-abc")))
    new, old = fake_llm.bodies("/chat/completions")
    assert new["prompt_cache_options"] == {"mode": "implicit", "ttl": "30m"}  # the only TTL Chat Completions takes
    assert new["prompt_cache_key"] == "history-lab-abc"
    assert "prompt_cache_options" not in old and "prompt_cache_key" not in old  # gpt-5.4 would reject them


def test_a_chat_turn_keys_its_cache_by_session_and_asks_why_the_cache_missed(fake_llm):
    store = MemoryStore()
    responses = provider("openai-responses", fake_llm)
    sid = run_turn(store, responses, TurnRequest(user_text="one", model="gpt-5.6-sol")).session_id
    second = run_turn(store, responses, TurnRequest(user_text="two", session_id=sid, model="gpt-5.6-sol"))
    first_body, second_body = fake_llm.bodies("/responses")
    first_id = ReplyMeta.from_json(store.get_history(sid)[1]["meta"]).response_id
    assert "comparison_response_id" not in first_body["prompt_cache_options"]
    assert second_body["prompt_cache_options"]["comparison_response_id"] == first_id
    assert first_body["prompt_cache_key"] == second_body["prompt_cache_key"] == prompt_cache_key(sid)
    assert sid not in second_body["prompt_cache_key"]
    usage = second.record.usage
    assert usage.cache_miss == "the input changed (about 42 tokens not read from the cache)"
    row = build_timeline(store.get_history(sid), read_turns(store.get_turns(sid)), meta=store.get_meta(sid)).row(2)
    assert any("why the cache missed: the input changed" in b.text and b.source == "provider-reported"
               for b in row.badges)


# -- Anthropic: diagnostics requested, threads, clear_thinking ---------------------------------------------------


def test_anthropic_with_caching_asks_for_diagnostics_against_the_previous_reply(fake_llm):
    store = MemoryStore()
    anthropic = provider("anthropic", fake_llm)
    request = TurnRequest(user_text="one", model="claude-sonnet-4-6", prompt_caching=True, system_prompt="Be brief.")
    sid = run_turn(store, anthropic, request).session_id
    second = run_turn(store, anthropic, TurnRequest(user_text="two", session_id=sid, model="claude-sonnet-4-6",
                                                    prompt_caching=True, system_prompt="Be brief."))
    first_body, second_body = fake_llm.bodies("/messages")
    first_id = ReplyMeta.from_json(store.get_history(sid)[1]["meta"]).response_id
    assert "diagnostics" not in first_body
    assert second_body["diagnostics"] == {"previous_message_id": first_id}
    verdict = cache_verdict(second.record.usage, simulated_status="kept", simulated_label="cache kept")
    assert verdict.text.startswith("cache hit: 3 of ")  # the reported figure wins over the simulated "kept"
    assert "why the cache missed: an earlier message changed (not only new ones appended) (about 42 tokens" in \
        verdict.text


def test_anthropic_threads_send_only_the_new_message_and_bill_the_thread(fake_llm):
    store = MemoryStore()
    threads = provider("anthropic-threads", fake_llm)
    sid = None
    for text in ("one", "two", "three"):
        result = run_turn(store, threads, TurnRequest(user_text=text, session_id=sid, model="claude-sonnet-4-6",
                                                      system_prompt="Be brief."))
        assert result.ok, result.error
        sid = result.session_id
    requests = [r for r in fake_llm.requests if r["path"].endswith("/messages")]
    bodies = [r["body"] for r in requests]
    ids = [ReplyMeta.from_json(m["meta"]).response_id for m in store.get_history(sid) if m["role"] == "assistant"]
    assert bodies[0]["thread"] == {"type": "create"}
    assert bodies[1]["thread"] == {"type": "continue", "previous_message_id": ids[0]}
    assert bodies[2]["thread"] == {"type": "continue", "previous_message_id": ids[1]}
    assert [len(b["messages"]) for b in bodies] == [1, 1, 1]
    assert bodies[2]["messages"] == [{"role": "user", "content": "three"}] and bodies[2]["system"] == "Be brief."
    assert all("message-threads-2026-08-12" in r["headers"].get("anthropic-beta", "") for r in requests)
    records = read_turns(store.get_turns(sid))
    # The first turn created the thread and sent everything; the next ones sent only the new message.
    assert [r.server_state for r in records] == [None, "thread", "thread"]
    # One message sent, but the server re-read the thread: 10 + (10 + 5 held) ... billed as input.
    assert [r.usage.input_tokens for r in records] == [10, 25, 40]


def test_a_thread_is_not_continued_after_another_provider_answered(fake_llm):
    store = MemoryStore()
    threads, openai = provider("anthropic-threads", fake_llm), provider("openai", fake_llm)
    sid = run_turn(store, threads, TurnRequest(user_text="one", model="claude-sonnet-4-6")).session_id
    run_turn(store, openai, TurnRequest(user_text="two", session_id=sid, model="gpt-5.4-mini"))
    third = run_turn(store, threads, TurnRequest(user_text="three", session_id=sid, model="claude-sonnet-4-6"))
    body = fake_llm.bodies("/messages")[-1]
    assert body["thread"] == {"type": "create"} and len(body["messages"]) == 5  # the whole history, re-sent
    assert any("another provider answered" in n for n in third.record.notes)


def test_anthropic_clears_old_thinking_only_for_models_that_think(fake_llm):
    anthropic = provider("anthropic", fake_llm)
    for model in ("claude-opus-5", "claude-sonnet-4-6"):
        drain(anthropic.stream(HELLO, model=model, options=ProviderOptions(compaction_threshold=100)))
    thinking, plain = (b["context_management"]["edits"] for b in fake_llm.bodies("/messages"))
    assert thinking[0] == {"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 1}}
    assert [e["type"] for e in plain] == ["clear_tool_uses_20250919", "compact_20260112"]


# -- local servers: a missing cache figure is "not reported", never 0 -------------------------------------------


def test_a_local_server_without_cached_tokens_reads_not_reported_and_names_the_flag(fake_llm):
    fake_llm.fail_next("usage", usage={"prompt_tokens_details": OMIT})
    local = get_provider("openai-compatible", Settings(), base_url=fake_llm.openai_url, max_retries=0)
    reply = local.stream(HELLO, model="llama3.2")
    drain(reply)
    usage = reply.usage
    assert usage.cache_reported is False and usage.total_input == 20
    caption = usage_caption(usage)
    assert caption == "in 20 (cached tokens not reported by this server) · out 5 tokens (provider-reported)"
    verdict = cache_verdict(usage, simulated_status="kept", simulated_label="cache kept", simulated_tokens=1024)
    assert verdict.text == "cache: cached tokens not reported by this server" and "0" not in verdict.text
    assert "--enable-prompt-tokens-details" in verdict.hint and "prompt_eval_cached_count" in verdict.hint
    assert verdict.hint == NOT_REPORTED_HINT


def test_a_local_server_that_reports_cached_tokens_is_shown_as_reported(fake_llm):
    fake_llm.fail_next("usage", usage={"prompt_tokens_details": {"cached_tokens": 12}})  # llama.cpp's shape
    local = get_provider("openai-compatible", Settings(), base_url=fake_llm.openai_url, max_retries=0)
    reply = local.stream(HELLO, model="llama3.2")
    drain(reply)
    assert reply.usage.cache_reported and reply.usage.cache_read_tokens == 12
    assert usage_caption(reply.usage).startswith("in 20 = 8 uncached + 12 cache read · out 5 tokens")


# -- the HTTP API keeps its usage fields and adds the four numbers ----------------------------------------------


def test_the_api_usage_keeps_its_fields_and_adds_the_four_numbers(monkeypatch, fake_llm):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.anthropic_url)
    monkeypatch.setenv("PROVIDER_MAX_RETRIES", "0")
    post = inprocess_api(monkeypatch)
    response = post("/chat", {"message": "Hello", "provider": "anthropic", "model": "claude-sonnet-4-6"})
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    # The fields clients already read, with their meaning unchanged (Anthropic's own input_tokens) ...
    assert {k: usage[k] for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                                  "cache_in_input", "prompt_total")} == {
        "input_tokens": 10, "output_tokens": 5, "cache_read_tokens": 3, "cache_write_tokens": 7,
        "cache_in_input": False, "prompt_total": 20}
    # ... and the four numbers, the same for every provider.
    assert (usage["uncached_input_tokens"], usage["total_input_tokens"]) == (10, 20)
    assert usage["cache_write_ttl"] == {"5m": 5, "1h": 2} and usage["source"] == "provider-reported"
    assert response.json()["cost"] == pytest.approx(136.65e-6)


def test_reply_caption_reads_an_old_stored_usage_without_the_new_fields():
    meta = {"usage": {"input_tokens": 55, "output_tokens": 20, "cache_read_tokens": 3, "cache_in_input": True},
            "timings": {"ttft": 0.2, "total": 1.0}, "cost": 1e-5, "cost_source": "price of gpt-4o"}
    assert reply_caption(meta).startswith("in 55 = 52 uncached + 3 cache read · out 20 tokens (provider-reported)")
