"""A provider that is slow, endless, silent or huge cannot starve the server, hold a connection after its client
left, run for ever, or fill the store: the real SDK against tests/support/hostile_llm.py, through the API served by
uvicorn on a real socket (clients that hang up), and the chat page."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import httpx2 as httpx
import pytest

from lib.chat import TurnRequest, run_turn
from lib.core import ReplyMeta, Settings, TurnRecord
from lib.providers import (
    Provider,
    ProviderOptions,
    Reply,
    StreamGuard,
    StreamStopped,
    StreamTimeLimit,
    get_provider,
)
from lib.services import store_handle
from lib.sessions import MemoryStore
from tests.support.api_inprocess import served_api
from tests.support.apptest_helpers import open_app, use_memory_store
from tests.support.hostile_llm import HostileLLM

# Every wait here is bounded; a test that fails does so within these many seconds, never hangs.
PATIENCE = 10.0


@pytest.fixture
def hostile() -> Iterator[HostileLLM]:
    server = HostileLLM().start()
    yield server
    server.stop()


@pytest.fixture
def api(monkeypatch, hostile) -> Iterator[str]:
    """The API on a real loopback socket, a fresh MemoryStore, the openai-compatible provider at the hostile
    server. The limits are small so that the tests are quick; each test may lower them further."""
    monkeypatch.delenv("HISTORY_LAB_API_TOKEN", raising=False)
    use_memory_store(monkeypatch, OPENAI_COMPATIBLE_BASE_URL=hostile.openai_url, DEFAULT_PROVIDER="openai-compatible",
                     PROVIDER_MAX_RETRIES="0", PROVIDER_TIMEOUT="60", MAX_CONCURRENT_TURNS="2",
                     STREAM_TIME_LIMIT="60")
    with served_api() as url:
        yield url


def stored(session_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    store = store_handle(Settings.from_env()).store
    return store.get_history(session_id), store.get_turns(session_id)


def wait_for(condition, timeout: float = PATIENCE) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextlib.contextmanager
def sse(url: str, body: dict[str, Any]) -> Iterator[tuple[httpx.Response, Iterator[tuple[str, Any]]]]:
    """An SSE turn: the response and an iterator of its (event, data); leaving the block hangs up."""
    with httpx.Client(timeout=httpx.Timeout(PATIENCE)) as client, \
            client.stream("POST", f"{url}/chat", json={**body, "stream": True}) as response:
        yield response, _events(response)


def _events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    event = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: ") and event:
            yield event, json.loads(line[len("data: "):])


# ---------------------------------------------------------------- item 1: a bounded pool, a 503 when full


def test_a_full_pool_is_a_503_server_busy_and_nothing_is_stored_or_sent(api, hostile):
    sessions = [uuid.uuid4().hex for _ in range(2)]
    with contextlib.ExitStack() as held:
        streams = [held.enter_context(sse(api, {"message": "Hi", "model": "slow", "sessionId": sid}))
                   for sid in sessions]  # MAX_CONCURRENT_TURNS=2: two slow streams take both slots
        for response, events in streams:  # (kept referenced: a dropped event iterator would hang up)
            assert response.status_code == 200 and next(events)[0] == "delta"
        refused = uuid.uuid4().hex
        for stream in (False, True):
            answer = httpx.post(f"{api}/chat", json={"message": "Hi", "model": "slow", "sessionId": refused,
                                                     "stream": stream}, timeout=PATIENCE)
            assert answer.status_code == 503, answer.text
            error = answer.json()["error"]
            assert error["type"] == "server_busy" and "MAX_CONCURRENT_TURNS" in error["message"]
            assert answer.headers["retry-after"] == str(error["retryAfter"])
        assert hostile.requests == 2  # the refused turns sent nothing to the provider...
        assert stored(refused) == ([], [])  # ...and stored nothing
    # The clients left: their slots are freed once their workers have ended, and the next turn is served.
    assert wait_for(lambda: hostile.open_connections == 0)
    response = httpx.post(f"{api}/chat", json={"message": "Hi", "model": "normal"}, timeout=PATIENCE)
    assert response.status_code == 200 and response.json()["reply"] == "Hostile server says hi."
    for sid in sessions:
        history, turns = stored(sid)
        assert [m["role"] for m in history] == ["user"]
        assert [t["error_type"] for t in turns] == ["TurnInterrupted"]


# ---------------------------------------------------------------- item 1: a client that leaves stops the provider


@pytest.mark.parametrize("mode", ["empty", "silent", "slow", "endless"])
def test_a_client_that_leaves_a_stream_closes_the_provider_connection_at_once(api, hostile, mode):
    """Empty deltas never reach the client, and a silent provider sends no event at all: neither may keep
    its provider connection (and a worker thread) once the client is gone."""
    sid = uuid.uuid4().hex
    with sse(api, {"message": "Hi", "model": mode, "sessionId": sid}) as (response, events):
        assert response.status_code == 200
        assert wait_for(lambda: hostile.open_streams == 1)
        if mode in ("slow", "endless"):
            assert next(events)[0] == "delta"
        time.sleep(0.3)
    left = time.monotonic()
    assert hostile.wait_closed(5.0), f"{hostile.open_connections} provider connection(s) still open"
    print(f"{mode}: provider connection closed {time.monotonic() - left:.2f} s after the client left")
    assert wait_for(lambda: len(stored(sid)[1]) == 1)
    history, (record,) = stored(sid)
    assert [m["role"] for m in history] == ["user"] and record["error_type"] == "TurnInterrupted"


def test_a_json_client_that_leaves_stops_the_provider_too(api, hostile):
    sid = uuid.uuid4().hex
    with pytest.raises(httpx.ReadTimeout):  # the client gives up after 1 s
        httpx.post(f"{api}/chat", json={"message": "Hi", "model": "slow", "sessionId": sid}, timeout=1.0)
    assert hostile.wait_closed(5.0), "the provider stream went on after the JSON client left"
    assert wait_for(lambda: len(stored(sid)[1]) == 1)
    history, (record,) = stored(sid)
    assert [m["role"] for m in history] == ["user"] and record["error_type"] == "TurnInterrupted"


def test_a_guard_stopped_before_the_request_sends_nothing(hostile):
    provider = get_provider("openai-compatible", Settings(), base_url=hostile.openai_url, max_retries=0)
    guard = StreamGuard()
    guard.stop()  # the client left while its turn waited
    reply = provider.stream([{"role": "user", "content": "Hi"}], model="normal", guard=guard)
    with pytest.raises(StreamStopped):
        list(reply)
    assert hostile.requests == 0


# ---------------------------------------------------------------- item 1: a total time limit


@pytest.mark.parametrize("mode", ["slow", "silent", "empty"])
def test_a_stream_past_its_time_limit_is_a_clear_502_and_nothing_is_lost(api, hostile, monkeypatch, mode):
    monkeypatch.setenv("STREAM_TIME_LIMIT", "2")
    for stream in (False, True):
        sid = uuid.uuid4().hex
        started = time.monotonic()
        if stream:
            with sse(api, {"message": "Hi", "model": mode, "sessionId": sid}) as (_, events):
                kind, error = next((k, d) for k, d in events if k != "delta")
            assert kind == "error" and error["status"] == 502
            error = error["error"]
        else:
            response = httpx.post(f"{api}/chat", json={"message": "Hi", "model": mode, "sessionId": sid},
                                  timeout=PATIENCE)
            assert response.status_code == 502, response.text
            error = response.json()["error"]
        took = time.monotonic() - started
        assert error["type"] == "stream_time_limit" and "STREAM_TIME_LIMIT" in error["message"]
        assert error["sessionId"] == sid and error["turn"] == 1
        print(f"{mode}, {'SSE' if stream else 'JSON'}: time limit 2 s, answered after {took:.2f} s")
        history, (record,) = stored(sid)
        assert [(m["role"], m["content"]) for m in history] == [("user", "Hi")]  # the message is kept
        assert record["error_type"] == "StreamTimeLimit" and record["turn"] == 1
        assert hostile.wait_closed(5.0)


def test_the_time_limit_is_a_setting_with_bounds():
    assert Settings.from_env({}).stream_time_limit == 300
    assert Settings.from_env({"STREAM_TIME_LIMIT": "30", "MAX_CONCURRENT_TURNS": "8"}).max_concurrent_turns == 8
    with pytest.raises(ValueError, match="STREAM_TIME_LIMIT"):
        Settings.from_env({"STREAM_TIME_LIMIT": "0"})


def test_the_guard_cuts_a_blocked_read_by_itself(hostile):
    """The timer fires while the worker is blocked reading a provider that sends nothing."""
    provider = get_provider("openai-compatible", Settings(), base_url=hostile.openai_url, max_retries=0)
    guard = StreamGuard(time_limit=1.0)
    guard.arm()
    started = time.monotonic()
    with pytest.raises(StreamTimeLimit):
        list(provider.stream([{"role": "user", "content": "Hi"}], model="silent", guard=guard))
    assert time.monotonic() - started < PATIENCE
    guard.disarm()
    assert hostile.wait_closed(5.0)


# ---------------------------------------------------------------- item 3: huge replies


def test_a_huge_reply_is_cut_at_the_cap_stored_marked_truncated_and_the_stream_closed(api, hostile, monkeypatch):
    monkeypatch.setenv("MAX_REPLY_CHARS", "100000")
    hostile.huge_chars = 50_000_000  # far more than the client may read: it must stop early
    for stream in (False, True):
        sid = uuid.uuid4().hex
        if stream:
            with sse(api, {"message": "Hi", "model": "huge", "sessionId": sid}) as (_, events):
                body = next(data for kind, data in events if kind != "delta")
        else:
            response = httpx.post(f"{api}/chat", json={"message": "Hi", "model": "huge", "sessionId": sid},
                                  timeout=PATIENCE)
            assert response.status_code == 200, response.text[:500]
            body = response.json()
        assert len(body["reply"]) == 100_000
        assert body["truncated"]["atChars"] == 100_000 and "MAX_REPLY_CHARS" in body["truncated"]["note"]
        history, (record,) = stored(sid)
        reply = history[1]
        assert len(reply["content"]) == 100_000
        meta = ReplyMeta.from_json(reply["meta"])
        assert meta.truncated_at == 100_000 and meta.truncated and "Truncated" in meta.truncated
        assert "error_type" not in record  # a whole turn, not a failure
        assert any("Truncated" in note for note in TurnRecord.from_json(record).notes)
        assert hostile.wait_closed(5.0)  # the provider stream was closed, not read to its end


class ChunkProvider(Provider):
    """``count`` deltas of ``size`` characters, from memory, so only the accumulation is measured."""

    name = "chunks"
    default_model = "m"

    def __init__(self, *, count: int, size: int) -> None:
        super().__init__()
        self.count, self.size = count, size

    def build_request(self, messages, *, model: str, max_tokens: int, options: ProviderOptions) -> dict[str, Any]:
        return {"model": model}

    def open_stream(self, request: dict[str, Any]) -> Iterable[Any]:
        block = "y" * self.size
        return (block for _ in range(self.count))

    def handle_event(self, event: Any, reply: Reply) -> str:
        reply.stop_reason = "stop"
        return str(event)


def _joins_while(action) -> int:
    """How many times ``str.join`` is called (from Python code, in this thread) while ``action`` runs."""
    joins = 0

    def profile(frame, event, arg):
        nonlocal joins
        if event == "c_call" and getattr(arg, "__name__", "") == "join" and isinstance(getattr(arg, "__self__", None),
                                                                                       str):
            joins += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return joins


def test_the_reply_text_is_joined_once_not_on_every_delta():
    reply = ChunkProvider(count=200, size=1024).stream([{"role": "user", "content": "Hi"}], model="m")
    assert _joins_while(lambda: sum(1 for _ in reply)) == 0  # was one join of the whole text per delta
    assert _joins_while(lambda: (reply.text, reply.text)) == 1
    assert len(reply.text) == 200 * 1024


def test_a_truncated_reply_shows_a_caption_in_the_chat_page(monkeypatch):
    use_memory_store(monkeypatch)
    store = store_handle(Settings.from_env()).store
    request = TurnRequest(user_text="Hi", model="m", max_reply_chars=5_000)
    result = run_turn(store, ChunkProvider(count=100, size=1024), request)
    assert result.error is None and len(result.text) == 5_000
    at = open_app(session=result.session_id)
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert any("Truncated" in c and "5,000 characters" in c for c in captions), captions


def test_the_chat_page_passes_the_limits_from_the_settings(monkeypatch):
    from pages.ui import chat_live, sidebar

    use_memory_store(monkeypatch, STREAM_TIME_LIMIT="42", MAX_REPLY_CHARS="7000")
    choices = sidebar.SidebarChoices(provider="offline", model="", system_prompt="", strategy="turns", budget=1000,
                                     reserve=0)
    request = chat_live.turn_request("Hi", "s1", choices)
    assert (request.stream_time_limit, request.max_reply_chars) == (42, 7000)


def test_a_memory_store_keeps_a_truncated_reply_readable():
    store = MemoryStore()
    result = run_turn(store, ChunkProvider(count=10, size=1000), TurnRequest(user_text="Hi", model="m",
                                                                            max_reply_chars=2_500))
    (_, reply) = store.get_history(result.session_id)
    assert len(reply["content"]) == 2_500 and reply["meta"]["truncated_at"] == 2_500
