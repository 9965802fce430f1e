"""Prompt-cache figures and Anthropic cache breakpoints, through the real SDKs and the fake wire server."""

from __future__ import annotations

import json

from lib.providers import ProviderOptions
from tests.support.fake_llm import wire_provider as provider

SYSTEM = {"role": "system", "content": "Be brief."}
HISTORY = [SYSTEM, {"role": "user", "content": "one"}, {"role": "assistant", "content": "reply one"},
           {"role": "user", "content": "two"}, {"role": "assistant", "content": "reply two"},
           {"role": "user", "content": "three"}]




def test_chat_completions_usage_reads_cached_and_written_tokens_and_diagnostics(fake_llm):
    fake_llm.cache_diagnostics = {"type": "cache_miss", "reason": "input_changed", "cache_missed_tokens": 40}
    reply = provider("openai", fake_llm).stream(HISTORY, model="gpt-5.4-mini")
    "".join(reply)
    usage = reply.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (60, 5, 3, 2)
    assert usage.cache_in_input and usage.prompt_total == 60 and usage.uncached_input == 55
    assert json.loads(usage.diagnostics) == fake_llm.cache_diagnostics
    assert not usage.simulated


def test_responses_usage_reads_input_tokens_details_and_prompt_cache_diagnostics(fake_llm):
    fake_llm.cache_diagnostics = {"type": "cache_miss", "reason": "model_changed", "cache_missed_tokens": 9}
    reply = provider("openai-responses", fake_llm).stream(HISTORY, model="gpt-5.4-mini")
    "".join(reply)
    assert (reply.usage.input_tokens, reply.usage.cache_read_tokens, reply.usage.cache_write_tokens) == (55, 3, 0)
    assert json.loads(reply.usage.diagnostics)["reason"] == "model_changed"


def test_no_diagnostics_reads_as_none(fake_llm):
    reply = provider("openai", fake_llm).stream(HISTORY, model="gpt-5.4-mini")
    "".join(reply)
    assert reply.usage.diagnostics is None


def test_anthropic_usage_splits_cache_writes_by_ttl(fake_llm):
    reply = provider("anthropic", fake_llm).stream(HISTORY, model="claude-sonnet-5")
    "".join(reply)
    usage = reply.usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (50, 3, 7)
    assert (usage.cache_write_5m, usage.cache_write_1h) == (5, 2)
    assert not usage.cache_in_input and usage.prompt_total == 60 and usage.uncached_input == 50


def test_anthropic_prompt_caching_places_breakpoints_on_system_and_stable_history(fake_llm):
    options = ProviderOptions(prompt_caching=True, cache_ttl="1h")
    reply = provider("anthropic", fake_llm).stream(HISTORY, model="claude-sonnet-5", max_tokens=200, options=options)
    "".join(reply)
    body = fake_llm.bodies("/messages")[0]
    breakpoint_ = {"type": "ephemeral", "ttl": "1h"}
    assert body == {
        "model": "claude-sonnet-5", "max_tokens": 200,
        "messages": [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "reply one"},
            {"role": "user", "content": "two"},
            # The last message of the stable history: everything up to here is re-sent unchanged next turn.
            {"role": "assistant", "content": [{"type": "text", "text": "reply two", "cache_control": breakpoint_}]},
            {"role": "user", "content": "three"},
        ],
        "system": [{"type": "text", "text": "Be brief.", "cache_control": breakpoint_}],
        "stream": True,
    }
    assert reply.request == body


def test_anthropic_without_caching_sends_plain_strings(fake_llm):
    "".join(provider("anthropic", fake_llm).stream(HISTORY, model="claude-sonnet-5"))
    body = fake_llm.bodies("/messages")[0]
    assert body["system"] == "Be brief." and "cache_control" not in json.dumps(body)


def test_anthropic_asks_why_the_cache_missed_and_reports_it(fake_llm):
    options = ProviderOptions(prompt_caching=True, previous_response_id="msg_previous")
    reply = provider("anthropic", fake_llm).stream(HISTORY, model="claude-sonnet-5", options=options)
    "".join(reply)
    body = fake_llm.bodies("/messages")[0]
    assert body["diagnostics"] == {"previous_message_id": "msg_previous"}
    assert json.loads(reply.usage.diagnostics) == {
        "cache_miss_reason": {"type": "messages_changed", "cache_missed_input_tokens": 42}}


def test_a_single_new_message_gets_no_history_breakpoint(fake_llm):
    options = ProviderOptions(prompt_caching=True)
    "".join(provider("anthropic", fake_llm).stream([SYSTEM, {"role": "user", "content": "hi"}],
                                                  model="claude-sonnet-5", options=options))
    body = fake_llm.bodies("/messages")[0]
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
