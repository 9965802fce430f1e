"""lib.chat.conversation: one turn end to end, on a MemoryStore and on a real Redis store."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from typing import Any

import pytest

import lib.chat.conversation as chat_module
from lib.chat import (
    MAX_MESSAGE_CHARS,
    META_PREVIOUS_RESPONSE,
    EmptyMessage,
    MessageNotSent,
    MessageTooLarge,
    ReplyNotSaved,
    TurnInterrupted,
    TurnRequest,
    run_turn,
    save_reply_again,
    start_turn,
    turn_payload,
)
from lib.context import ContextOverflowError
from lib.core import TurnRecord, Usage, register_secrets
from lib.providers import (
    AuthenticationFailed,
    Capabilities,
    Provider,
    ProviderOptions,
    ProviderServerError,
    Reply,
    get_provider,
)
from lib.sessions import InvalidSessionId, MemoryStore, RedisStore, StoreUnavailable
from lib.tokens import count_chat_tokens, estimate_chat_tokens
from tests.support.redis_fixtures import start_valkey


class FakeProvider(Provider):
    """A real Provider subclass that records every call (like simonw/llm's fakes); can fail mid-stream."""

    name = "fake"
    default_model = "gpt-4o-mini"

    def __init__(self, *, fail_after: int | None = None, server_side_history: bool = False,
                 chunks: tuple[str, ...] = ("Hello", " there"), error: Exception | None = None) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []
        self.fail_after, self.chunks, self.error = fail_after, chunks, error
        self.capabilities = Capabilities(server_side_history=server_side_history, prompt_caching=True)

    def build_request(self, messages, *, model, max_tokens, options: ProviderOptions) -> dict[str, Any]:
        self.calls.append({"messages": [dict(m) for m in messages], "model": model, "options": options,
                           "previous_response_id": options.previous_response_id})
        return {"model": model, "max_tokens": max_tokens, "messages": [dict(m) for m in messages]}

    def open_stream(self, request):
        for n, chunk in enumerate(self.chunks):
            if self.fail_after is not None and n == self.fail_after:
                raise self.error or ProviderServerError("The provider returned HTTP 500. Try again in a moment.")
            yield chunk

    def handle_event(self, event, reply: Reply) -> str:
        return event

    def finish(self, reply: Reply) -> None:
        reply.usage = Usage(input_tokens=len(reply.request["messages"]) * 10, output_tokens=len(self.chunks))
        reply.response_id = f"resp_{len(self.calls)}"


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
    assert meta["timings"]["ttft"] >= 0 and meta["timings"]["total"] >= meta["timings"]["ttft"]
    assert meta["cost"] > 0 and meta["cost_source"] == "price of gpt-4o-mini"

    records = [TurnRecord.from_json(r) for r in memory_store.get_turns(sid)]
    assert [r.turn for r in records] == [1, 2]
    record = records[1]
    assert record == second.record
    assert record.sent_ids(history) == [m["id"] for m in history[:3]]
    assert record.sent_count == 4 and record.system_sent  # the system prompt counts as sent
    assert record.dropped_ids(history) == [] and record.dropped_count == 0
    assert record.exact == count_chat_tokens(second.payload, "gpt-4o-mini")
    assert record.estimate == estimate_chat_tokens(second.payload)
    assert record.encoding == "o200k_base" and record.usage.input_tokens == 40
    assert record.user_id == history[2]["id"] and record.assistant_id == history[3]["id"]
    assert record.max_tokens == 1024 and record.problems == ()
    meta = memory_store.get_meta(sid)
    assert meta["system_prompt"] == "Be brief." and record.system_text(meta) == "Be brief."
    assert "Be brief." not in json.dumps(memory_store.get_turns(sid))  # kept once, in the meta
    assert turn_payload(record, history, meta) == (second.request["messages"], ())


def test_small_budget_drops_whole_old_turns_and_tells_the_provider_which_turns_it_sees(memory_store):
    provider = FakeProvider(chunks=("A fairly long reply that takes up a good share of the budget. " * 3,))
    sid = turn(memory_store, provider, "My name is Ada and I like tea.", budget=100_000).session_id
    for n in range(4):
        result = turn(memory_store, provider, f"Question {n} about something fairly long to count", sid,
                      budget=200, system_prompt="Be brief.")
    history = memory_store.get_history(sid)
    record = result.record
    assert result.ok and record.dropped_count > 0 and history[0]["id"] in record.dropped_ids(history)
    assert len(record.sent) == 2 and len(record.dropped) == 1  # a suffix, and the user message: compact
    assert result.payload[1]["role"] == "user"  # whole turns dropped: never an assistant first
    assert record.exact <= 200 and record.problems == ()
    options = provider.calls[-1]["options"]
    assert options.current_turn == 5 and options.context_window == 200 and options.strict
    assert options.turn_numbers[0] == 0 and options.turn_numbers[-1] == 5  # system prompt, then turns
    assert list(options.turn_numbers[1:]) == sorted(options.turn_numbers[1:]) and options.turn_numbers[1] > 1


def test_provider_failure_keeps_the_user_message_and_records_the_error(memory_store):
    result = turn(memory_store, FakeProvider(fail_after=1), "Will this fail?")
    assert not result.ok and isinstance(result.error, ProviderServerError)
    assert result.assistant_message is None
    history = memory_store.get_history(result.session_id)
    assert [(m["role"], m["content"]) for m in history] == [("user", "Will this fail?")]
    record = TurnRecord.from_json(memory_store.get_turns(result.session_id)[0])
    assert record.error_type == "ProviderServerError" and record.assistant_id is None and record.failed


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
    records = redis_store.get_turns(sid)
    assert [r["turn"] for r in records] == [1, 2]
    assert json.dumps(records)  # records are plain JSON
    assert 0 < redis_store.ttl(sid) <= redis_store.ttl_seconds



@pytest.mark.parametrize("store_kind", ["memory", "redis"])
def test_two_writers_get_distinct_turn_numbers(request, store_kind):
    store = request.getfixturevalue(f"{store_kind}_store")
    sid = turn(store, FakeProvider(), "first").session_id

    def chat(n: int) -> None:
        for k in range(8):
            turn(store, FakeProvider(), f"writer {n} message {k}", sid)

    threads = [threading.Thread(target=chat, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    numbers = [TurnRecord.from_json(r).turn for r in store.get_turns(sid)]
    assert sorted(numbers) == list(range(1, 18))


def test_seed_faults_are_recorded_as_problems_with_both_numbers(memory_store):
    provider = FakeProvider(chunks=("Ok.",))
    sid = None
    records = []
    # Removing one long user message is enough to fit, so the seed leaves a reply first; then a message
    # longer than the budget on its own goes out anyway (the seed never drops below four messages).
    for padding in (30, 30, 30, 30, 150):
        result = turn(memory_store, provider, "Question " + "padding " * padding, sid, budget=200, strategy="seed",
                      system_prompt="Be brief.")
        sid = result.session_id
        records.append(result.record)
    assert records[2].problems == () and "starts with an assistant message" in records[3].problems[0]
    assert any(re.fullmatch(r"Over budget: [\d,]+ tokens sent against a budget of 200\.", p)
               for p in records[4].problems)
    stored = [TurnRecord.from_json(r) for r in memory_store.get_turns(sid)]
    assert [r.problems for r in stored] == [r.problems for r in records]


def test_cache_aware_passes_the_previous_cut_back_to_the_trimmer(memory_store, monkeypatch):
    seen: list[Any] = []
    real = chat_module.trim_history

    def spy(*args: Any, **kwargs: Any):
        seen.append(kwargs.get("cut"))
        return real(*args, **kwargs)

    monkeypatch.setattr(chat_module, "trim_history", spy)
    provider = FakeProvider(chunks=("A reply of a reasonable length for the budget. " * 3,))
    sid = None
    for n in range(6):
        result = turn(memory_store, provider, f"Question {n} about caches", sid, budget=260,
                      strategy="cache-aware")
        sid = result.session_id
    cuts = [TurnRecord.from_json(r).cut for r in memory_store.get_turns(sid)]
    assert seen[0] is None and seen[1:] == cuts[:-1]
    assert cuts[-1] is not None


def test_error_text_stored_in_the_record_has_secrets_masked(memory_store):
    secret = "vllm-token-0123456789abcdef"
    register_secrets([secret])
    provider = FakeProvider(fail_after=0, error=AuthenticationFailed(f"401: invalid key {secret}", status=401))
    result = turn(memory_store, provider, "Hi")
    assert isinstance(result.error, AuthenticationFailed)
    raw = json.dumps(memory_store.get_turns(result.session_id))
    assert secret not in raw and "***" in raw


def test_a_bug_in_a_provider_is_logged_with_its_traceback(memory_store, caplog):
    provider = FakeProvider(fail_after=1, error=KeyError("choices"))
    with caplog.at_level(logging.ERROR, logger="lib.chat.conversation"):
        result = turn(memory_store, provider, "Hi")
    assert isinstance(result.error, KeyError)
    assert any(r.exc_info and "Unexpected error from provider fake" in r.message for r in caplog.records)
    assert TurnRecord.from_json(memory_store.get_turns(result.session_id)[0]).error_type == "KeyError"


@pytest.fixture
def own_valkey(tmp_path):
    server = start_valkey(tmp_path / "valkey", "--appendonly", "yes", "--appendfsync", "always")
    yield server
    server.stop()


def _restart(server, delay: float = 0.0):
    time.sleep(delay)
    return start_valkey(server.directory, "--appendonly", "yes", "--appendfsync", "always", port=server.port)


def test_a_reply_survives_a_short_store_outage_by_retrying(own_valkey):
    store = RedisStore(own_valkey.url, prefix="outage")
    prepared = start_turn(store, FakeProvider(), TurnRequest(user_text="Hello"))
    deltas = prepared.deltas()
    assert next(deltas) == "Hello"
    own_valkey.stop()  # the server dies while the reply streams
    assert list(deltas) == [" there"]
    restarted: list[Any] = []
    helper = threading.Thread(target=lambda: restarted.append(_restart(own_valkey, 1.0)))
    helper.start()
    try:
        result = prepared.finish()
    finally:
        helper.join(timeout=30)
    try:
        assert result.ok and not result.unsaved, result.error
        assert [m["role"] for m in store.get_history(result.session_id)] == ["user", "assistant"]
        assert TurnRecord.from_json(store.get_turns(result.session_id)[0]).assistant_id == \
            result.assistant_message["id"]
    finally:
        restarted[0].stop()


def test_a_reply_kept_through_a_long_outage_can_be_saved_again(own_valkey):
    store = RedisStore(own_valkey.url, prefix="outage")
    prepared = start_turn(store, FakeProvider(), TurnRequest(user_text="Hello"))
    prepared.save_retry_s = 0.5
    deltas = prepared.deltas()
    assert next(deltas) == "Hello"
    own_valkey.stop()
    assert list(deltas) == [" there"]
    started = time.monotonic()
    result = prepared.finish()
    assert time.monotonic() - started < 15  # bounded: the retries give up
    assert isinstance(result.error, ReplyNotSaved) and result.unsaved
    assert result.text == "Hello there" and result.assistant_message is None
    with pytest.raises(ReplyNotSaved, match="Save again"):
        save_reply_again(store, result)
    server = _restart(own_valkey)
    try:
        # The user message was acknowledged before the outage and survived it; the reply is not there yet.
        assert [m["role"] for m in store.get_history(result.session_id)] == ["user"]
        saved = save_reply_again(store, result)
        assert saved.ok and not saved.unsaved
        save_reply_again(store, saved)  # a second click writes nothing twice
        history = store.get_history(result.session_id)
        assert [(m["role"], m["content"]) for m in history] == [("user", "Hello"), ("assistant", "Hello there")]
        (record,) = [TurnRecord.from_json(r) for r in store.get_turns(result.session_id)]
        assert record.reply_saved_late and record.assistant_id == history[1]["id"] and not record.failed
    finally:
        server.stop()


class FlakyStore(MemoryStore):
    """A MemoryStore whose turn-record writes fail ``failures`` times, like a store restarting."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def append_turn(self, session_id: str, record: Any) -> int:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("Redis at test is not reachable. Start the server; nothing was written.")
        return super().append_turn(session_id, record)


def test_a_failed_record_write_is_retried_then_kept_for_save_again():
    store = FlakyStore(failures=2)
    result = turn(store, FakeProvider(), "Hi")
    assert result.ok and len(store.get_turns(result.session_id)) == 1  # two failures, then the retry landed

    store.failures = 10_000
    prepared = start_turn(store, FakeProvider(), TurnRequest(user_text="Again", session_id=result.session_id))
    prepared.save_retry_s = 0.3
    failed = prepared.finish()
    assert isinstance(failed.error, ReplyNotSaved) and failed.unsaved_reply is None and failed.unsaved_record
    assert failed.assistant_message is not None  # the reply itself was stored
    store.failures = 0
    saved = save_reply_again(store, failed)
    assert saved.ok and [TurnRecord.from_json(r).turn for r in store.get_turns(result.session_id)] == [1, 2]


class MetaFlakyStore(MemoryStore):
    """A MemoryStore whose meta writes fail ``failures`` times, as when the server dies right after begin_turn."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def set_meta(self, session_id: str, **fields: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("Redis at test is not reachable (refused). Start the server; nothing was written.",
                                   reason="Redis at test is not reachable (refused).")
        super().set_meta(session_id, **fields)


def test_a_store_restart_right_after_the_message_is_stored_is_ridden_out():
    store = MetaFlakyStore(failures=2)
    result = turn(store, FakeProvider(), "Hi", system_prompt="Be brief.")
    assert result.ok and result.turn == 1
    assert [m["role"] for m in store.get_history(result.session_id)] == ["user", "assistant"]
    assert store.get_meta(result.session_id)["system_prompt"] == "Be brief."


def test_a_turn_whose_message_is_stored_never_fails_as_if_nothing_was_written(monkeypatch):
    monkeypatch.setattr(chat_module, "SAVE_RETRY_SECONDS", 0.2)
    store = MetaFlakyStore(failures=10_000)
    with pytest.raises(MessageNotSent) as raised:
        start_turn(store, FakeProvider(), TurnRequest(user_text="Hi", session_id="s1"))
    error = raised.value
    assert isinstance(error, StoreUnavailable)  # still a store outage for callers that only know that
    assert error.extra == {"sessionId": "s1", "turn": 1}
    assert "saved as turn 1" in str(error) and "Redis at test" in str(error)
    assert "nothing was written" not in str(error)
    assert [m["content"] for m in store.get_history("s1")] == ["Hi"]  # what the error says is true


class LostAnswerStore(MemoryStore):
    """A MemoryStore whose first ``lost`` begin_turn calls store the message but lose the answer (kill -9)."""

    def __init__(self, lost: int) -> None:
        super().__init__()
        self.lost = lost

    def begin_turn(self, session_id: str, message: Any) -> tuple[dict[str, Any], int]:
        result = super().begin_turn(session_id, message)
        if self.lost:
            self.lost -= 1
            raise StoreUnavailable("Redis at test is not reachable (closed).", reason="Redis at test closed.")
        return result


def test_a_message_stored_with_its_answer_lost_is_resent_and_stored_once():
    store = LostAnswerStore(lost=2)
    result = turn(store, FakeProvider(), "Hi")
    assert result.ok and result.turn == 1
    assert [m["content"] for m in store.get_history(result.session_id)] == ["Hi", "Hello there"]


def test_a_message_that_may_be_stored_is_never_reported_as_nothing_written(monkeypatch):
    monkeypatch.setattr(chat_module, "SAVE_RETRY_SECONDS", 0.2)
    with pytest.raises(MessageNotSent) as raised:
        start_turn(LostAnswerStore(lost=10_000), FakeProvider(), TurnRequest(user_text="Hi", session_id="s1"))
    assert raised.value.extra == {"sessionId": "s1"}
    assert "may be saved" in str(raised.value) and "Reload the session" in str(raised.value)
