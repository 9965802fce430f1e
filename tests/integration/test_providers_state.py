"""Server-side state through the real SDKs: previous_response_id, Conversations, truncation, compaction."""

from __future__ import annotations

import pytest

from lib.core import Settings
from lib.providers import ProviderOptions, ServerContext, ServerStateLost, get_provider
from tests.support.fake_llm import TEST_KEY as KEY

SYSTEM = {"role": "system", "content": "Be brief."}


def responses(fake):
    return get_provider("openai-responses", Settings(), api_key=KEY, base_url=fake.openai_url, max_retries=0)


def turn(provider, history, text, **options):
    history.append({"role": "user", "content": text})
    reply = provider.stream(history, model="gpt-5.4-mini", options=ProviderOptions(**options))
    "".join(reply)
    history.append({"role": "assistant", "content": reply.text})
    return reply


def test_a_chain_sends_one_item_but_every_earlier_input_token_is_billed(fake_llm):
    provider, history = responses(fake_llm), [SYSTEM]
    first = turn(provider, history, "Remember 7.")
    second = turn(provider, history, "Which number?", previous_response_id=first.response_id)
    assert fake_llm.bodies("/responses")[1] == {
        "model": "gpt-5.4-mini", "input": [{"role": "user", "content": "Which number?"}],
        "instructions": "Be brief.", "previous_response_id": first.response_id,
        "max_output_tokens": 1024, "stream": True}
    # turn 1 billed 10 (input) + 5 (instructions); turn 2 re-bills that context plus the 5 output tokens
    assert first.usage.input_tokens == 15
    assert second.usage.input_tokens == 15 + 5 + 10 + 5


def test_conversations_api_holds_the_history(fake_llm):
    provider, history = responses(fake_llm), [SYSTEM]
    conversation = provider.create_conversation()
    assert fake_llm.requests[0]["path"] == "/v1/conversations" and fake_llm.requests[0]["body"] == {}
    first = turn(provider, history, "Remember 7.", conversation_id=conversation)
    second = turn(provider, history, "Which number?", conversation_id=conversation,
                  previous_response_id=first.response_id)  # ignored: a conversation orders its own responses
    bodies = fake_llm.bodies("/responses")
    assert bodies[1] == {"model": "gpt-5.4-mini", "input": [{"role": "user", "content": "Which number?"}],
                         "instructions": "Be brief.", "conversation": conversation,
                         "max_output_tokens": 1024, "stream": True}
    assert first.conversation_id == second.conversation_id == conversation
    assert second.usage.input_tokens == 15 + 5 + 15


def test_truncation_auto_is_sent_as_asked(fake_llm):
    reply = turn(responses(fake_llm), [SYSTEM], "hi", truncation="auto")
    assert fake_llm.bodies("/responses")[0]["truncation"] == "auto" and reply.request["truncation"] == "auto"


def test_server_side_compaction_request_and_compaction_item(fake_llm):
    provider, history = responses(fake_llm), [SYSTEM]
    first = turn(provider, history, "one", compaction_threshold=30)
    assert first.server_context == []  # 15 tokens: under the threshold
    second = turn(provider, history, "two", previous_response_id=first.response_id, compaction_threshold=30)
    assert fake_llm.bodies("/responses")[1] == {
        "model": "gpt-5.4-mini", "input": [{"role": "user", "content": "two"}], "instructions": "Be brief.",
        "previous_response_id": first.response_id, "max_output_tokens": 1024, "stream": True,
        "context_management": [{"type": "compaction", "compact_threshold": 30}]}
    assert second.usage.input_tokens == 35  # billed in full on the turn that compacts
    assert [c.kind for c in second.server_context] == ["compaction"]
    assert second.server_context[0].detail["id"].startswith("cmp_")
    third = turn(provider, history, "three", previous_response_id=second.response_id, compaction_threshold=30)
    assert third.usage.input_tokens == 20 + 5 + 15  # the compacted context is what is billed afterwards


def test_a_forgotten_previous_response_is_server_state_lost(fake_llm):
    with pytest.raises(ServerStateLost, match="no longer holds the earlier conversation.*Send the whole history"):
        turn(responses(fake_llm), [SYSTEM], "hi", previous_response_id="resp_gone")


def test_capabilities_say_who_keeps_state():
    infos = {p.name: p.info.capabilities for p in
             (get_provider(n, Settings()) for n in ("openai", "openai-responses", "anthropic"))}
    assert infos["openai-responses"].server_side_history and infos["openai-responses"].server_compaction
    assert not infos["openai"].server_side_history and not infos["anthropic"].server_side_history
    assert infos["anthropic"].prompt_caching and infos["anthropic"].server_compaction


def test_anthropic_context_management_beta_request_and_applied_edits(fake_llm):
    anthropic = get_provider("anthropic", Settings(), api_key=KEY, base_url=fake_llm.anthropic_url, max_retries=0)
    messages = [SYSTEM, {"role": "user", "content": "one"}, {"role": "assistant", "content": "reply"},
                {"role": "user", "content": "two"}]
    reply = anthropic.stream(messages, model="claude-sonnet-5", options=ProviderOptions(compaction_threshold=30))
    assert "".join(reply) == "Fake reply to 3 messages."
    request = fake_llm.requests[0]
    assert request["path"] == "/v1/messages"  # the installed SDK marks the beta by its header only
    assert request["headers"]["anthropic-beta"] == "context-management-2025-06-27,compact-2026-01-12"
    trigger = {"type": "input_tokens", "value": 30}
    assert request["body"] == {
        "model": "claude-sonnet-5", "max_tokens": 1024, "messages": messages[1:], "system": "Be brief.",
        "stream": True, "context_management": {"edits": [
            {"type": "clear_tool_uses_20250919", "trigger": trigger, "keep": {"type": "tool_uses", "value": 3}},
            {"type": "compact_20260112", "trigger": trigger}]}}
    assert reply.server_context == [
        ServerContext("compaction", {"content": "Summary of 2 earlier messages."}),
        ServerContext("clear_tool_uses_20250919", {"cleared_input_tokens": 0, "cleared_tool_uses": 0}),
    ]


def test_anthropic_without_a_threshold_uses_the_stable_api(fake_llm):
    anthropic = get_provider("anthropic", Settings(), api_key=KEY, base_url=fake_llm.anthropic_url, max_retries=0)
    "".join(anthropic.stream([{"role": "user", "content": "hi"}], model="claude-sonnet-5"))
    request = fake_llm.requests[0]
    assert "anthropic-beta" not in request["headers"]
    assert "context_management" not in request["body"]
