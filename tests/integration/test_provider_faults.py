"""A misbehaving provider: a key quoted near a cut, usage of the wrong type or size, a web page where a stream
belongs, and a server killed mid-stream. Through the real SDK against tests/support/fake_llm.py, the HTTP API and
the chat page."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx2 as httpx
import pytest

from lib.api import api_app
from lib.chat import META_RUNNER, STALE_TURN_SECONDS, STATUS, TurnRequest, interrupted_turns, run_turn, runner_token
from lib.core import Settings, TurnRecord, Usage, mask_then_cut, register_secrets
from lib.providers import (
    DETAIL_CHARS,
    MalformedStream,
    Provider,
    ProviderOptions,
    Reply,
    anthropic_usage,
    get_provider,
    openai_usage,
)
from lib.services import store_handle
from lib.sessions import MemoryStore
from lib.transfer import export_json
from tests.support.app_server import AppServer
from tests.support.apptest_helpers import open_app, use_memory_store
from tests.support.fake_llm import FakeLLM

pytestmark = pytest.mark.server

# Not an sk- key: only its registration can mask it, and a cut half of it matches nothing.
KEY = "localtoken-0123456789abcdef"
PREFIX = "Incorrect API key provided: "


# ---------------------------------------------------------------- a key quoted near the cut


def test_mask_then_cut_never_shows_part_of_a_registered_key():
    register_secrets([KEY])
    for offset in range(-len(KEY), 3):
        text = "x" * (DETAIL_CHARS + offset) + KEY + " and more"
        shown = mask_then_cut(text, DETAIL_CHARS)
        assert len(shown) <= DETAIL_CHARS and KEY[:6] not in shown, offset


@pytest.fixture
def api(monkeypatch) -> Iterator[tuple[Any, FakeLLM]]:
    """The API in process on a fresh MemoryStore, the OpenAI-compatible provider pointed at the fake server."""
    fake = FakeLLM().start()
    monkeypatch.delenv("HISTORY_LAB_API_TOKEN", raising=False)
    use_memory_store(monkeypatch, OPENAI_COMPATIBLE_API_KEY=KEY, OPENAI_COMPATIBLE_BASE_URL=fake.openai_url,
                     PROVIDER_MAX_RETRIES="0")
    yield api_app(), fake
    fake.stop()


def post(app: Any, body: dict[str, Any]) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=60) as http:
            return await http.post("/chat", json=body)
    return asyncio.run(send())


def get(app: Any, path: str) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=60) as http:
            return await http.get(path)
    return asyncio.run(send())


def sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


@pytest.mark.parametrize("offset", [1, 6, 13, 20, 26])  # how many characters of the key fall before the cut
def test_a_provider_error_cut_in_the_middle_of_a_key_shows_none_of_it(api, offset):
    app, fake = api
    padding = "x" * (DETAIL_CHARS - len(PREFIX) - offset)
    shown: list[str] = []
    for stream in (False, True):
        fake.fail_next(401, message=f"{PREFIX}{padding}{KEY}. You can find your key in your account.")
        response = post(app, {"message": "Hello", "provider": "openai-compatible", "stream": stream})
        if stream:
            (kind, data), = [e for e in sse_events(response.text) if e[0] != "delta"]
            assert kind == "error" and data["status"] == 502
            error = data["error"]
        else:
            assert response.status_code == 502
            error = response.json()["error"]
        assert "rejected the API key" in error["message"]
        sid = error["sessionId"]
        store = store_handle(Settings.from_env()).store
        record = store.get_turns(sid)[-1]
        assert record["error_type"] == "AuthenticationFailed"
        shown += [response.text, json.dumps(record), get(app, f"/chat/{sid}").text, export_json(store, sid)]
    for text in shown:
        assert KEY[:6] not in text, text


# ---------------------------------------------------------------- usage of the wrong type or size


@pytest.mark.parametrize("value", ["lots", -1_000_000, 10**18, True, 1.5, None, [3]])
def test_usage_that_is_not_a_plausible_count_reads_as_not_reported(value):
    chat = openai_usage(SimpleNamespace(prompt_tokens=value, completion_tokens=value,
                                        prompt_tokens_details=SimpleNamespace(cached_tokens=value)))
    assert (chat.input_tokens, chat.output_tokens, chat.cache_read_tokens) == (None, None, 0)
    anthropic = anthropic_usage({"input_tokens": value, "output_tokens": value, "cache_read_input_tokens": value,
                                 "cache_creation": SimpleNamespace(ephemeral_5m_input_tokens=value)})
    assert anthropic is not None
    assert (anthropic.input_tokens, anthropic.output_tokens, anthropic.cache_read_tokens,
            anthropic.cache_write_5m) == (None, None, 0, None)


def test_plausible_usage_is_read_as_it_is():
    usage = openai_usage(SimpleNamespace(prompt_tokens=120, completion_tokens=7.0,
                                         prompt_tokens_details=SimpleNamespace(cached_tokens=64)))
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (120, 7, 64)


@pytest.mark.parametrize("usage", [{"prompt_tokens": "lots"}, {"prompt_tokens": -1_000_000},
                                   {"prompt_tokens": 10**18, "completion_tokens": 10**18}])
def test_odd_usage_from_the_wire_keeps_the_reply_and_prices_nothing(api, usage):
    app, fake = api
    fake.fail_next("usage", usage=usage)
    response = post(app, {"message": "Hello", "provider": "openai-compatible", "model": "gpt-4o-mini"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reply"].startswith("Fake reply to 1 messages")
    assert (body["usage"] or {}).get("input_tokens") is None
    assert body["cost"] is None
    stored = get(app, f"/chat/{body['sessionId']}").json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]
    (record,) = stored["turns"]
    assert record["turn"] == 1 and record["assistant_id"] and "cost" not in record
    assert all(v is None or 0 <= v <= 10**8 for v in record.get("usage", {}).values() if isinstance(v, int))


class OddUsageProvider(Provider):
    """Sets a usage no reader checked (as a buggy adapter could): building the metadata fails."""

    name = "odd"
    default_model = "gpt-4o-mini"

    def build_request(self, messages, *, model: str, max_tokens: int, options: ProviderOptions) -> dict[str, Any]:
        return {"model": model}

    def open_stream(self, request: dict[str, Any]) -> Iterable[Any]:
        return ["Hello", " there"]

    def handle_event(self, event: Any, reply: Reply) -> str:
        reply.usage = Usage(input_tokens="lots", output_tokens=2)  # type: ignore[arg-type]
        return str(event)


def test_a_failure_while_building_the_metadata_still_stores_the_reply_and_a_record(caplog):
    store = MemoryStore()
    result = run_turn(store, OddUsageProvider(), TurnRequest(user_text="Hi", model="gpt-4o-mini"))
    assert result.error is None and result.text == "Hello there"
    history = store.get_history(result.session_id)
    assert [(m["role"], m["content"]) for m in history] == [("user", "Hi"), ("assistant", "Hello there")]
    assert "usage" not in history[1]["meta"]
    (record,) = [TurnRecord.from_json(r) for r in store.get_turns(result.session_id)]
    assert record.turn == 1 and record.assistant_id == history[1]["id"] and record.usage is None
    assert any("could not be read" in note for note in record.notes)
    assert "could not be read" in caplog.text  # logged with its traceback: it is a bug to fix


# ---------------------------------------------------------------- a web page where the stream belongs


def test_a_200_with_a_web_page_is_a_malformed_stream_that_names_the_url(fake_llm):
    provider = get_provider("openai-compatible", Settings(), base_url=fake_llm.openai_url, max_retries=0)
    fake_llm.fail_next("html")
    with pytest.raises(MalformedStream) as raised:
        "".join(provider.stream([{"role": "user", "content": "Hi"}], model="m"))
    message = str(raised.value)
    assert fake_llm.openai_url in message and "text/html" in message and "base URL" in message


def test_a_web_page_is_recorded_as_a_failed_turn_over_the_api(api):
    app, fake = api
    fake.fail_next("html")
    response = post(app, {"message": "Hello", "provider": "openai-compatible"})
    assert response.status_code == 502
    error = response.json()["error"]
    assert fake.openai_url in error["message"] and "text/html" in error["message"]
    stored = get(app, f"/chat/{error['sessionId']}").json()
    assert [m["role"] for m in stored["messages"]] == ["user"]
    assert stored["turns"][0]["error_type"] == "MalformedStream"


# ---------------------------------------------------------------- a server killed mid-stream


def _user(text: str, *, runner: str | None, ts: float) -> dict[str, Any]:
    meta = {META_RUNNER: runner} if runner else {}
    return {"id": uuid.uuid4().hex, "role": "user", "content": text, "ts": ts, "meta": meta}


def test_an_unanswered_turn_is_interrupted_only_once_its_runner_is_gone():
    now = time.time()
    gone = f"{runner_token().rsplit(':', 2)[0]}:{2**22 + 1}:1"  # this machine, a pid that cannot exist
    elsewhere = "another-machine:12:34"
    first, reply = _user("one", runner=gone, ts=now), {"id": "a1", "role": "assistant", "content": "ok"}
    second = _user("two", runner=gone, ts=now)
    recorded = TurnRecord(turn=2, user_id=second["id"], error="HTTP 500")
    assert interrupted_turns([first, reply, second], [TurnRecord(turn=1, user_id=first["id"]), recorded]) == []
    # The server that ran turn 3 is gone: interrupted, numbered after the last recorded turn.
    third = _user("three", runner=gone, ts=now)
    (found,) = interrupted_turns([first, reply, second, third], [recorded])
    assert (found.turn, found.user_id) == (3, third["id"])
    # This process is running it: live, not interrupted.
    assert interrupted_turns([_user("live", runner=runner_token(), ts=now - 10 * STALE_TURN_SECONDS)], []) == []
    # Run on another machine: live while it is the newest turn and young, stopped once older than any stream.
    assert interrupted_turns([_user("far", runner=elsewhere, ts=now)], []) == []
    assert len(interrupted_turns([_user("far", runner=elsewhere, ts=now - STALE_TURN_SECONDS - 1)], [])) == 1
    assert len(interrupted_turns([_user("far", runner=elsewhere, ts=now), _user("next", runner=None, ts=now)],
                                 [])) == 1


def test_kill_9_mid_stream_shows_the_turn_as_interrupted_in_the_api_and_the_chat_page(tmp_path, monkeypatch):
    fake = FakeLLM().start()
    env = {"OPENAI_COMPATIBLE_BASE_URL": fake.openai_url, "DEFAULT_PROVIDER": "openai-compatible",
           "PROVIDER_MAX_RETRIES": "0"}
    server = AppServer(tmp_path / "data", tmp_path / "app.log", **env)
    server.start()
    try:
        fake.fail_next("slow", delay=60)  # the first delta at once, then a minute of nothing
        sid = uuid.uuid4().hex
        with httpx.Client(base_url=server.url, timeout=30) as client, client.stream(
                "POST", "/api/chat", json={"message": "Hello", "sessionId": sid, "stream": True}) as response:
            first = next(response.iter_lines())
            assert first.startswith("event: delta"), first
            assert server.process is not None
            server.process.kill()  # SIGKILL: nothing runs after it
            server.process.wait(timeout=30)
        server.process = None
        server.start()  # the same data dir: the embedded store kept what was written before the kill
        with httpx.Client(base_url=server.url, timeout=30) as client:
            stored = client.get(f"/api/chat/{sid}").json()
        assert [m["role"] for m in stored["messages"]] == ["user"]
        (turn,) = stored["turns"]
        assert turn["turn"] == 1 and turn["status"] == STATUS and turn["derived"] is True
        assert turn["user_id"] == stored["messages"][0]["id"]

        use_data_dir(monkeypatch, tmp_path / "data")  # the chat page in this process, on the same store
        at = open_app(session=sid)
        assert not at.exception
        captions = [c.value for c in at.caption]
        assert any(STATUS in c for c in captions), captions
    finally:
        server.stop()
        fake.stop()



def use_data_dir(monkeypatch, data_dir) -> None:
    """Point the app in this process at the embedded store in ``data_dir``, with the instant offline model."""
    for name in ("HISTORY_LAB_STORE", "REDIS_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEFAULT_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HISTORY_LAB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("OFFLINE_DELAY", "0")
