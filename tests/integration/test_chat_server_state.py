"""Chat turns on server-side history, through the real openai SDK against tests/support/fake_llm.py.

Exact request bodies: previous_response_id chaining, the Conversations API (created on first use, seeded when
the session began elsewhere), truncation and server-side compaction passed through, a broken chain (another
provider answered) and a lost one (the server forgot) falling back to a full re-send within the same turn.
"""

from __future__ import annotations

from typing import Any

import pytest

from lib.chat import META_CONVERSATION, META_CONVERSATION_MESSAGE, META_PREVIOUS_RESPONSE, TurnRequest, run_turn
from lib.core import Settings, TurnRecord
from lib.providers import get_provider

KEY = "sk-test-SECRET123"
MODEL = "gpt-5.4-mini"
SYSTEM = "Be brief."


@pytest.fixture
def responses(fake_llm):
    return get_provider("openai-responses", Settings(), api_key=KEY, base_url=fake_llm.openai_url, max_retries=0)


def turn(store, provider, text: str, sid: str | None = None, **options: Any):
    result = run_turn(store, provider, TurnRequest(user_text=text, session_id=sid, system_prompt=SYSTEM,
                                                   model=MODEL, **options))
    assert result.ok, result.error
    return result


def body(text: str, **fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "input": [{"role": "user", "content": text}], "instructions": SYSTEM, **fields,
            "max_output_tokens": 1024, "stream": True}


def stored(store, result) -> TurnRecord:
    return TurnRecord.from_json(store.get_turns(result.session_id)[-1])


def test_previous_response_chain_sends_only_the_new_input_and_records_the_billed_tokens(memory_store, fake_llm,
                                                                                       responses):
    first = turn(memory_store, responses, "Remember 7.")
    second = turn(memory_store, responses, "Which number?", first.session_id)
    assert fake_llm.bodies("/responses") == [body("Remember 7."),
                                             body("Which number?", previous_response_id="resp_1")]
    record = stored(memory_store, second)
    assert record.server_state == "previous_response" and record.previous_response_id == "resp_1"
    assert record.sent == ((second.user_message["id"],) * 2,) and record.sent_count == 2  # system + new input
    assert record.usage.input_tokens == 15 + 5 + 10 + 5  # the whole chain is billed, not just what was sent
    assert record.notes == () and first.record.server_state is None  # turn 1 had nothing to chain on
    assert memory_store.get_meta(first.session_id)[META_PREVIOUS_RESPONSE] == "resp_2"


def test_conversation_is_created_on_first_use_then_carries_the_history(memory_store, fake_llm, responses):
    first = turn(memory_store, responses, "Remember 7.", server_state="conversation")
    second = turn(memory_store, responses, "Which number?", first.session_id, server_state="conversation")
    assert [(r["path"], r["body"]) for r in fake_llm.requests] == [
        ("/v1/conversations", {}),
        ("/v1/responses", body("Remember 7.", conversation="conv_1")),
        ("/v1/responses", body("Which number?", conversation="conv_1")),
    ]
    meta = memory_store.get_meta(first.session_id)
    assert meta[META_CONVERSATION] == "conv_1" and meta[META_CONVERSATION_MESSAGE] == second.assistant_message["id"]
    record = stored(memory_store, second)
    assert record.server_state == "conversation" and record.conversation_id == "conv_1"
    assert record.previous_response_id is None and record.sent_count == 2
    assert record.usage.input_tokens == 15 + 5 + 15
    assert second.assistant_message["meta"]["conversation_id"] == "conv_1"


def test_truncation_and_compaction_threshold_pass_through_and_the_compaction_item_is_recorded(
        memory_store, fake_llm, responses):
    options = {"truncation": "auto", "compaction_threshold": 30}
    first = turn(memory_store, responses, "one", **options)
    second = turn(memory_store, responses, "two", first.session_id, **options)
    management = [{"type": "compaction", "compact_threshold": 30}]
    assert fake_llm.bodies("/responses") == [
        body("one", truncation="auto", context_management=management),
        body("two", previous_response_id="resp_1", truncation="auto", context_management=management)]
    assert first.record.server_context == ()
    record = stored(memory_store, second)
    assert record.server_context == ("compaction (id cmp_3, encrypted_bytes 13)",)
    assert record.usage.input_tokens == 35  # billed in full on the turn that compacts


def test_a_chain_broken_by_another_provider_is_noted_and_re_sent_in_full(memory_store, fake_llm, responses):
    sid = turn(memory_store, responses, "one").session_id
    turn(memory_store, get_provider("offline", delay=0), "two", sid)  # the server never saw this turn
    third = turn(memory_store, responses, "three", sid)
    history = memory_store.get_history(sid)
    assert fake_llm.bodies("/responses")[-1] == {
        "model": MODEL, "instructions": SYSTEM, "max_output_tokens": 1024, "stream": True,
        "input": [{"role": m["role"], "content": m["content"]} for m in history[:4]]
        + [{"role": "user", "content": "three"}]}
    record = stored(memory_store, third)
    assert record.server_state is None and record.previous_response_id is None and record.sent_count == 6
    assert record.notes == ("The server-side chain is broken (another provider answered after response resp_1): "
                            "the whole history was re-sent.",)
    fourth = turn(memory_store, responses, "four", sid)  # and the chain is whole again
    assert fake_llm.bodies("/responses")[-1] == body("four", previous_response_id="resp_2")
    assert fourth.record.notes == ()


def test_a_conversation_broken_by_another_provider_starts_a_new_one_holding_the_history(
        memory_store, fake_llm, responses):
    sid = turn(memory_store, responses, "one", server_state="conversation").session_id
    turn(memory_store, get_provider("offline", delay=0), "two", sid)
    third = turn(memory_store, responses, "three", sid, server_state="conversation")
    history = memory_store.get_history(sid)
    seeded = fake_llm.requests[-2]
    assert seeded["path"] == "/v1/conversations"
    assert seeded["body"] == {"items": [{"role": m["role"], "content": m["content"]} for m in history[:4]]}
    assert fake_llm.bodies("/responses")[-1] == body("three", conversation="conv_3")
    record = stored(memory_store, third)
    # The history went out once, into the new conversation; the request itself sent the new message.
    assert record.conversation_id == "conv_3" and record.sent_count == 2
    assert record.server_held_ids(history) == [m["id"] for m in history[:4]]
    assert "conversation conv_1 no longer matches the stored history" in record.notes[0]
    assert memory_store.get_meta(sid)[META_CONVERSATION] == "conv_3"


def test_a_forgotten_response_is_noted_and_re_sent_in_full_within_the_turn(memory_store, fake_llm, responses):
    first = turn(memory_store, responses, "one")
    fake_llm.contexts.pop("resp_1")  # the server expired it
    second = turn(memory_store, responses, "two", first.session_id)
    assert fake_llm.bodies("/responses")[1:] == [
        body("two", previous_response_id="resp_1"),
        {"model": MODEL, "instructions": SYSTEM, "max_output_tokens": 1024, "stream": True,
         "input": [{"role": "user", "content": "one"}, {"role": "assistant", "content": first.text},
                   {"role": "user", "content": "two"}]}]
    record = stored(memory_store, second)
    assert second.text == "Fake reply to 3 messages." and record.previous_response_id is None
    assert record.server_state is None and record.sent_count == 4
    assert record.notes[0].startswith("The server no longer holds the response resp_1 (")
    assert "re-sent in this turn" in record.notes[0]
    assert second.request["input"][0] == {"role": "user", "content": "one"}  # the request that answered
    assert memory_store.get_meta(first.session_id)[META_PREVIOUS_RESPONSE] == "resp_2"  # the re-send


def test_an_expired_conversation_is_replaced_within_the_turn(memory_store, fake_llm, responses):
    first = turn(memory_store, responses, "one", server_state="conversation")
    fake_llm.contexts.pop("conv_1")
    second = turn(memory_store, responses, "two", first.session_id, server_state="conversation")
    paths = [r["path"] for r in fake_llm.requests]
    assert paths == ["/v1/conversations", "/v1/responses", "/v1/responses", "/v1/conversations", "/v1/responses"]
    assert fake_llm.requests[3]["body"] == {"items": [{"role": "user", "content": "one"},
                                                      {"role": "assistant", "content": first.text}]}
    assert fake_llm.bodies("/responses")[-1] == body("two", conversation="conv_3")
    record = stored(memory_store, second)
    assert record.conversation_id == "conv_3" and record.sent_count == 2
    history = memory_store.get_history(first.session_id)
    assert record.server_held_ids(history) == [m["id"] for m in history[:2]]
    assert record.notes[0].startswith("The server no longer holds the conversation conv_1 (")


def test_server_state_none_re_sends_everything(memory_store, fake_llm, responses):
    sid = turn(memory_store, responses, "one", server_state=None).session_id
    turn(memory_store, responses, "two", sid, server_state=None)
    assert "previous_response_id" not in fake_llm.bodies("/responses")[1]
    assert len(fake_llm.bodies("/responses")[1]["input"]) == 3


def test_server_state_on_a_real_valkey(redis_store, fake_llm, responses):
    sid = turn(redis_store, responses, "one", server_state="conversation").session_id
    second = turn(redis_store, responses, "two", sid, server_state="conversation")
    assert fake_llm.bodies("/responses")[-1] == body("two", conversation="conv_1")
    assert stored(redis_store, second).conversation_id == "conv_1"


def test_anthropic_context_management_edits_are_recorded(memory_store, fake_llm):
    anthropic = get_provider("anthropic", Settings(), api_key=KEY, base_url=fake_llm.anthropic_url, max_retries=0)
    sid = None
    for text in ("one", "two"):
        result = run_turn(memory_store, anthropic, TurnRequest(user_text=text, session_id=sid, system_prompt=SYSTEM,
                                                               model="claude-sonnet-5", compaction_threshold=30))
        assert result.ok, result.error
        sid = result.session_id
    trigger = {"type": "input_tokens", "value": 30}
    assert fake_llm.bodies("/messages")[-1]["context_management"] == {"edits": [
        {"type": "clear_tool_uses_20250919", "trigger": trigger, "keep": {"type": "tool_uses", "value": 3}},
        {"type": "compact_20260112", "trigger": trigger}]}
    record = stored(memory_store, result)
    assert record.server_state is None  # Anthropic keeps no history: everything was re-sent
    assert record.server_context == ("compaction (content Summary of 2 earlier messages.)",
                                     "clear_tool_uses_20250919 (cleared_input_tokens 0, cleared_tool_uses 0)")
