"""lib.chat: one turn end to end, on a MemoryStore and on a real Redis store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from lib.chat import (
    MAX_MESSAGE_CHARS,
    META_PREVIOUS_RESPONSE,
    EmptyMessage,
    MessageTooLarge,
    TurnInterrupted,
    TurnRequest,
    run_turn,
    start_turn,
)
from lib.providers import FORGOT_PHRASE, ProviderServerError, get_provider
from lib.sessions import InvalidSessionId
from lib.tokens import count_chat_tokens, estimate_chat_tokens
from lib.trimming import ContextOverflowError


@dataclass
class FakeUsage:
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def prompt_total(self) -> int:
        return self.input_tokens


@dataclass
class FakeTimings:
    first_token_s: float = 0.01
    total_s: float = 0.02


@dataclass
class FakeReply:
    chunks: list[str]
    request: dict[str, Any]
    fail_after: int | None = None
    response_id: str | None = None
    text: str = ""
    usage: FakeUsage | None = None
    timings: FakeTimings = field(default_factory=FakeTimings)

    def __iter__(self):
        for n, chunk in enumerate(self.chunks):
            if self.fail_after is not None and n == self.fail_after:
                raise ProviderServerError("The provider returned HTTP 500. Try again in a moment.")
            self.text += chunk
            yield chunk
        self.usage = FakeUsage(input_tokens=len(self.request["messages"]) * 10, output_tokens=len(self.chunks))


class FakeProvider:
    """Records every call, like simonw/llm's fakes; can fail mid-stream or act as server-side history."""

    name = "fake"
    default_model = "gpt-4o-mini"

    def __init__(self, *, fail_after: int | None = None, server_side_history: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_after = fail_after
        self.server_side_history = server_side_history

    def stream(self, messages, *, model, max_tokens=1024, previous_response_id=None, dropped=0):
        self.calls.append({"messages": [dict(m) for m in messages], "model": model,
                           "previous_response_id": previous_response_id, "dropped": dropped})
        request = {"model": model, "messages": list(messages)}
        return FakeReply(["Hello", " there"], request, fail_after=self.fail_after,
                         response_id=f"resp_{len(self.calls)}")


def turn(store, provider, text, session_id=None, **options) -> Any:
    return run_turn(store, provider, TurnRequest(user_text=text, session_id=session_id, **options))


def test_turns_store_messages_and_records_and_resend_the_history(memory_store):
    provider = FakeProvider()
    first = turn(memory_store, provider, "Hi", system_prompt="Be brief.")
    sid = first.session_id
    assert len(sid) == 32 and first.ok and first.text == "Hello there"
    second = turn(memory_store, provider, "And again?", sid, system_prompt="Be brief.")

    # Turn 2 re-sends the whole history after the system prompt.
    assert [m["content"] for m in provider.calls[1]["messages"]] == ["Be brief.", "Hi", "Hello there", "And again?"]
    assert all(set(m) <= {"role", "content"} for m in provider.calls[1]["messages"])
    history = memory_store.get_history(sid)
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    meta = history[-1]["meta"]
    assert meta["provider"] == "fake" and meta["usage"]["input_tokens"] == 40
    assert meta["timings"] == {"ttft": 0.01, "total": 0.02}

    records = memory_store.get_turns(sid)
    assert [r["turn"] for r in records] == [1, 2]
    record = records[1]
    assert record["sent_ids"] == [m["id"] for m in history[:3]]
    assert record["dropped_ids"] == []
    assert record["exact"] == count_chat_tokens(second.payload, "gpt-4o-mini")
    assert record["estimate"] == estimate_chat_tokens(second.payload)
    assert record["encoding"] == "o200k_base" and record["provider_input_tokens"] == 40
    assert record["user_id"] == history[2]["id"] and record["assistant_id"] == history[3]["id"]
    assert memory_store.get_meta(sid)["system_prompt"] == "Be brief."


def test_small_budget_drops_whole_old_turns_and_the_offline_model_forgets(memory_store):
    offline = get_provider("offline", delay=0)
    sid = turn(memory_store, offline, "My name is Ada and I like tea.", budget=100_000).session_id
    for n in range(4):
        result = turn(memory_store, offline, f"Question {n} about something fairly long to count", sid, budget=200)
    assert result.ok and result.record["dropped_ids"]
    assert FORGOT_PHRASE in result.text
    history = memory_store.get_history(sid)
    assert history[0]["id"] in result.record["dropped_ids"]
    assert result.payload[0]["role"] == "user"  # whole turns dropped: never an assistant first
    assert result.record["exact"] <= 200


def test_provider_failure_keeps_the_user_message_and_records_the_error(memory_store):
    result = turn(memory_store, FakeProvider(fail_after=1), "Will this fail?")
    assert not result.ok and isinstance(result.error, ProviderServerError)
    assert result.assistant_message is None
    history = memory_store.get_history(result.session_id)
    assert [(m["role"], m["content"]) for m in history] == [("user", "Will this fail?")]
    record = memory_store.get_turns(result.session_id)[0]
    assert record["error_type"] == "ProviderServerError" and record["assistant_id"] is None


def test_message_over_the_budget_is_kept_and_not_sent(memory_store):
    provider = FakeProvider()
    result = turn(memory_store, provider, "word " * 500, budget=50)
    assert isinstance(result.error, ContextOverflowError)
    assert provider.calls == []
    assert memory_store.get_history(result.session_id)[0]["content"] == "word " * 500


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_input_is_refused_and_nothing_is_stored(memory_store, text):
    with pytest.raises(EmptyMessage):
        turn(memory_store, FakeProvider(), text, "s1")
    assert not memory_store.exists("s1")


def test_huge_input_is_refused_with_the_limit(memory_store):
    with pytest.raises(MessageTooLarge, match=f"{MAX_MESSAGE_CHARS:,}"):
        turn(memory_store, FakeProvider(), "x" * (MAX_MESSAGE_CHARS + 1), "s1")
    assert not memory_store.exists("s1")


def test_invalid_session_id_is_refused(memory_store):
    with pytest.raises(InvalidSessionId):
        turn(memory_store, FakeProvider(), "hi", "../etc/passwd")


def test_stream_closed_half_way_is_recorded_as_interrupted(memory_store):
    prepared = start_turn(memory_store, FakeProvider(), TurnRequest(user_text="Hi"))
    deltas = prepared.deltas()
    assert next(deltas) == "Hello"
    deltas.close()  # what a Streamlit rerun does to a running generator
    result = prepared.finish()
    assert isinstance(result.error, TurnInterrupted)
    assert [m["role"] for m in memory_store.get_history(result.session_id)] == ["user"]


def test_server_side_history_sends_only_the_new_message_while_the_chain_is_intact(memory_store):
    provider = FakeProvider(server_side_history=True)
    sid = turn(memory_store, provider, "one").session_id
    turn(memory_store, provider, "two", sid)
    assert provider.calls[1]["previous_response_id"] == "resp_1"
    assert [m["content"] for m in provider.calls[1]["messages"]] == ["two"]
    assert memory_store.get_meta(sid)[META_PREVIOUS_RESPONSE] == "resp_2"
    # Another provider answers in between: the server's copy is stale, so everything is re-sent.
    turn(memory_store, FakeProvider(), "three", sid)
    turn(memory_store, provider, "four", sid)
    assert provider.calls[-1]["previous_response_id"] is None
    assert [m["content"] for m in provider.calls[-1]["messages"]][-1] == "four"
    assert len(provider.calls[-1]["messages"]) == 7


def test_turn_on_a_real_redis_store(redis_store):
    offline = get_provider("offline", delay=0)
    sid = turn(redis_store, offline, "Hello Redis").session_id
    turn(redis_store, offline, "Second message", sid)
    history = redis_store.get_history(sid)
    assert [m["role"] for m in history] == ["user", "assistant"] * 2
    assert "I received 3 messages" in history[-1]["content"]
    records = redis_store.get_turns(sid)
    assert [r["turn"] for r in records] == [1, 2]
    assert json.dumps(records)  # records are plain JSON
    assert 0 < redis_store.ttl(sid) <= redis_store.ttl_seconds

