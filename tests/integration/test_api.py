"""The HTTP API against a live `streamlit run app.py`: real Valkey, the offline model, and the real OpenAI SDK
talking to the fake wire server (tests/support/fake_llm.py) for one real provider path."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from lib.api import MODEL_MAX_CHARS, ROUTES, api_app, error_body, same_origin
from lib.chat import MessageNotSent
from lib.sessions import RedisStore, StoreUnavailable
from lib.tokens import count_chat_tokens, estimate_chat_tokens
from tests.support.app_server import ROOT, AppServer
from tests.support.apptest_helpers import open_app
from tests.support.redis_fixtures import ValkeyProcess, start_valkey

pytestmark = pytest.mark.server

OPENAI_KEY = "sk-apitest-0123456789abcdefghij"
API_TOKEN = "lab-token-0123456789abcdefghij"


@dataclass
class Live:
    url: str
    prefix: str
    store: RedisStore
    redis_url: str

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, headers=headers)


def _start(tmp: Path, redis_url: str, **env: str) -> tuple[AppServer, str]:
    prefix = f"api-{uuid.uuid4().hex[:8]}"
    server = AppServer(tmp / "data", tmp / "app.log", REDIS_URL=redis_url, REDIS_PREFIX=prefix, **env)
    server.start()
    return server, prefix



@pytest.fixture(scope="module")
def live(tmp_path_factory, valkey_server, fake) -> Iterator[Live]:
    """The app with a real Valkey, the offline model as default, and OpenAI pointed at the fake server."""
    server, prefix = _start(tmp_path_factory.mktemp("api"), valkey_server.url, OPENAI_API_KEY=OPENAI_KEY,
                            OPENAI_BASE_URL=fake.openai_url, PROVIDER_MAX_RETRIES="0")
    store = RedisStore(valkey_server.url, prefix=prefix)
    yield Live(server.url, prefix, store, valkey_server.url)
    server.stop()
    for key in store.client.scan_iter(match=f"{prefix}:*"):
        store.client.delete(key)


@pytest.fixture
def api(live) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


def chat(api: httpx.Client, message: str, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/chat", json={"message": message, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error"} and {"type", "message"} <= set(body["error"]), body
    assert body["error"]["type"] == kind, body
    assert len(body["error"]["message"]) > 20  # a sentence that says what to do, not a bare code
    return body["error"]


def sse_events(response: httpx.Response) -> list[tuple[str, Any]]:
    events = []
    for block in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


# ---------------------------------------------------------------- the routes


def test_chat_starts_a_session_and_continues_it_with_the_full_history(api, live):
    first = chat(api, "Hello")
    sid = first["sessionId"]
    assert first["turn"] == 1 and first["reply"] == "Hi!"
    assert first["sent"] == [first["userMessageId"]] and first["dropped"] == []
    assert first["tokens"]["encoding"] and first["tokens"]["estimate"] >= 1 and first["tokens"]["exact"] >= 1
    assert {"usage", "cost"} <= set(first)
    second = chat(api, "What's 2+2?", sessionId=sid)
    assert second["sessionId"] == sid and second["turn"] == 2
    assert len(second["sent"]) == 3  # user, assistant, user: the whole history is re-sent

    stored = api.get(f"/api/chat/{sid}").json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"] * 2
    assert [t["turn"] for t in stored["turns"]] == [1, 2]
    assert stored["ttl"] > 0
    assert live.store.get_history(sid)[2]["content"] == "What's 2+2?"


def test_a_session_keeps_its_settings_and_goes_on_with_them(api, live):
    first = chat(api, "Hello", strategy="seed", budget=300, reserve=20, system="Be brief.")
    sid = first["sessionId"]
    settings = api.get(f"/api/chat/{sid}").json()["settings"]
    assert settings == {"strategy": "seed", "budget": 300, "reserve": 20, "provider": "offline",
                        "model": first["model"], "system": "Be brief."}
    second = chat(api, "What's 2+2?", sessionId=sid)  # no settings named: the session's own
    assert second["strategy"] == "seed"
    record = api.get(f"/api/chat/{sid}").json()["turns"][-1]
    assert record["budget"] == 300 and record["strategy"] == "seed"
    assert live.store.get_meta(sid)["system_prompt"] == "Be brief."
    third = chat(api, "And 4+4?", sessionId=sid, strategy="turns", budget=1_000, system="")  # named: they win
    assert third["strategy"] == "turns"
    assert api.get(f"/api/chat/{sid}").json()["settings"] | {"model": None} == {
        "strategy": "turns", "budget": 1_000, "reserve": 20, "provider": "offline", "model": None, "system": ""}
    assert chat(api, "Hi")["sessionId"] != sid  # a new session takes the server's defaults
    assert_error(api.post("/api/chat", json={"message": "x", "sessionId": sid, "budget": 20}), 400, "invalid_field")


def test_the_seeds_three_turns_give_the_seeds_listing(api, live):
    """The offline model answers like a model, so turn 3 re-sends exactly the seed's five messages; its report
    of what it could see is kept in the reply's meta and returned beside the reply, never re-sent."""
    replies, sid, third = [], None, {}
    for message in ("Hello", "What's 2+2?", "And 4+4?"):
        third = chat(api, message, **({"sessionId": sid} if sid else {}))
        sid = third["sessionId"]
        replies.append(third["reply"])
    assert replies == ["Hi!", "4", "8"]
    stored = api.get(f"/api/chat/{sid}").json()
    by_id = {m["id"]: m for m in stored["messages"]}
    assert [by_id[i]["content"] for i in third["sent"]] == ["Hello", "Hi!", "What's 2+2?", "4", "And 4+4?"]
    assert third["tokens"]["exact"] == count_chat_tokens([{"role": by_id[i]["role"], "content": by_id[i]["content"]}
                                                          for i in third["sent"]], "offline-teacher")
    assert third["report"][0].startswith("I received 5 messages") and "Nothing was trimmed" in " ".join(third["report"])
    reply = stored["messages"][-1]
    assert reply["content"] == "8" and reply["meta"]["report"] == third["report"]


def test_recall_is_honest_both_ways_at_a_small_budget(api):
    """Named while a message holding the fact is sent (the model's own replies included); never once none is."""
    budget = 150

    def turn(message: str) -> tuple[dict[str, Any], bool]:
        """The turn's response, and whether a message it sent before the question holds the fact."""
        body = chat(api, message, sessionId=sid, budget=budget)
        contents = {m["id"]: m["content"] for m in api.get(f"/api/chat/{sid}").json()["messages"]}
        return body, any("teal" in contents[i] for i in body["sent"][:-1])

    first = chat(api, "Remember this: my favourite colour is teal.", budget=budget)
    sid = first["sessionId"]
    assert first["reply"] == "Noted: your favourite colour is teal."
    asked, holds = turn("What is my favourite colour?")
    assert holds and asked["reply"] == "Your favourite colour is teal."  # named while visible
    for n in range(1, 16):
        _, holds = turn(f"Tell me something about the number {n}.")
        if not holds:
            break
    assert not holds, "the fact must be trimmed within 15 fillers at this budget"
    asked, holds = turn("What is my favourite colour?")
    assert not holds
    assert asked["reply"].startswith("I can't see that any more") and "teal" not in asked["reply"].lower()
    assert any("I can no longer see your first message" in line for line in asked["report"])


def test_stream_sends_one_event_per_delta_then_the_full_response(api):
    response = api.post("/api/chat", json={"message": "Remember this: my favourite colour is teal.", "stream": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"delta"} and len(kinds) > 3
    done = events[-1][1]
    assert "".join(data["text"] for _, data in events[:-1]) == done["reply"]
    plain = chat(api, "Hello again", sessionId=done["sessionId"])
    assert set(done) == set(plain) and done["turn"] == 1 and plain["turn"] == 2


def test_summary_strategy_compacts_over_http_and_keeps_the_history(api, live):
    sid, replies = None, []
    for n in range(8):
        body = chat(api, f"Fact {n}: the locker code is {1000 + n}. Please note it down for later.",
                    strategy="summary", budget=260, **({"sessionId": sid} if sid else {}))
        sid = body["sessionId"]
        replies.append(body["reply"])
        if body["dropped"]:
            break
    assert body["dropped"], "a 260-token budget must compact within 8 turns"
    # The offline model sees the summary it was sent, and says so in its report beside the reply.
    assert any("summary of turns" in line.lower() for line in body["report"])
    assert len(live.store.get_history(sid)) == 2 * len(replies)  # the stored history is never changed


def test_delete_clears_the_session_and_get_then_404s(api):
    sid = chat(api, "Hello")["sessionId"]
    response = api.delete(f"/api/chat/{sid}")
    assert response.status_code == 200 and response.json()["message"] == "Session cleared"
    assert_error(api.get(f"/api/chat/{sid}"), 404, "not_found")
    assert_error(api.get(f"/api/chat/{uuid.uuid4().hex}"), 404, "not_found")


def test_tokens_counts_each_message_and_the_total(api):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "你好, world! 👋"},
                {"role": "assistant", "content": "def f(x):\n    return x * 2"}]
    body = api.post("/api/tokens", json={"messages": messages, "model": "gpt-4o"}).json()
    assert body["encoding"] == "o200k_base" and body["approximate"] is False
    assert body["total"] == {"estimate": estimate_chat_tokens(messages), "exact": count_chat_tokens(messages, "gpt-4o")}
    assert [row["index"] for row in body["messages"]] == [0, 1, 2]
    assert all(row["exact"] >= 1 and row["estimate"] >= 1 for row in body["messages"])


def test_trim_reports_kept_and_dropped_as_a_partition(api):
    messages = [{"role": "system", "content": "Be brief."}]
    for turn in range(12):
        messages += [{"role": "user", "content": f"question {turn} " * 20, "id": f"u{turn}"},
                     {"role": "assistant", "content": f"answer {turn} " * 20}]
    body = api.post("/api/trim", json={"messages": messages, "budget": 400, "strategy": "turns",
                                       "model": "gpt-4o"}).json()
    kept = [item["index"] for item in body["kept"]]
    dropped = [item["index"] for item in body["dropped"]]
    assert sorted(kept + dropped) == list(range(len(messages))) and kept == sorted(kept)
    assert dropped and kept[0] == 0 and body["tokensAfter"] <= 400 < body["tokensBefore"]
    assert {"u11"} <= {item["id"] for item in body["kept"]} and body["problems"] == []
    assert body["dropped"][0] == {"index": 1, "id": "u0"}
    seed = api.post("/api/trim", json={"messages": messages, "budget": 400, "strategy": "seed"}).json()
    assert seed["strategy"] == "seed" and "cut" in seed


def test_health_reports_the_store(api):
    body = api.get("/api/health").json()
    assert body["status"] == "ok" and body["store"]["kind"] == "redis" and body["store"]["answers"] is True


def test_openapi_document_lists_exactly_the_mounted_routes(api):
    document = api.get("/api/openapi.json").json()
    described = {(path, method.upper()) for path, item in document["paths"].items()
                 for method in item if method != "parameters"}
    assert described == {(f"/api{path}", method) for path, method, _ in ROUTES}
    mounted = {(f"/api{route.path}", method) for route in api_app().routes for method in route.methods - {"HEAD"}}
    assert mounted == described


# ---------------------------------------------------------------- errors


BAD_CHATS = [
    ("not json", "invalid_json"),
    ("[1, 2]", "invalid_json"),
    ('{"message": NaN}', "invalid_json"),
    ("{}", "missing_field"),
    ('{"message": "   "}', "empty_message"),
    ('{"message": 5}', "invalid_field"),
    ('{"message": "hi", "sessionId": "../../etc"}', "invalid_session_id"),
    ('{"message": "hi", "provider": "gpt-9000"}', "unknown_provider"),
    ('{"message": "hi", "strategy": "newest-only"}', "unknown_strategy"),
    ('{"message": "hi", "session_id": "abc"}', "unknown_field"),
    ('{"message": "hi", "budget": 0}', "invalid_field"),
    ('{"message": "hi", "budget": 100, "reserve": 100}', "invalid_field"),
    ('{"message": "hi", "model": "![m](http://127.0.0.1:9/p.png)"}', "invalid_field"),
    ('{"message": "hi", "model": "gpt-4o\\n![m](x)"}', "invalid_field"),
    (json.dumps({"message": "hi", "model": "m" * (MODEL_MAX_CHARS + 1)}), "invalid_field"),
]


@pytest.mark.parametrize(("raw", "kind"), BAD_CHATS)
def test_bad_chat_requests_are_400_and_store_nothing(api, live, raw, kind):
    before = len(live.store.list_sessions())
    assert_error(api.post("/api/chat", content=raw, headers={"content-type": "application/json"}), 400, kind)
    assert len(live.store.list_sessions()) == before


def test_message_over_the_character_cap_is_400(api):
    assert_error(api.post("/api/chat", json={"message": "x" * 500_001}), 400, "message_too_large")


def test_budget_too_small_is_400_with_the_numbers_and_the_message_kept(api, live):
    sid = uuid.uuid4().hex
    error = assert_error(api.post("/api/chat", json={"message": "word " * 200, "sessionId": sid, "budget": 50}),
                         400, "context_overflow")
    assert re.search(r"need [\d,]+ tokens", error["message"]) and "50" in error["message"]
    assert error["sessionId"] == sid
    assert [m["role"] for m in live.store.get_history(sid)] == ["user"]
    assert live.store.get_turns(sid)[0]["error_type"] == "ContextOverflowError"


def test_body_over_one_megabyte_is_413(api):
    assert_error(api.post("/api/chat", json={"message": "x" * 1_000_001}), 413, "body_too_large")
    chunks = (b"x" * 100_000 for _ in range(12))  # no Content-Length: refused while reading
    assert_error(api.post("/api/tokens", content=chunks, headers={"content-type": "application/json"}), 413,
                 "body_too_large")


def test_model_names_are_checked_for_length_and_characters_on_every_route(api, live):
    before = len(live.store.list_sessions())
    long_name = assert_error(api.post("/api/chat", json={"message": "hi", "model": "m" * 129}), 400, "invalid_field")
    assert "'model'" in long_name["message"] and "at most 128 characters" in long_name["message"]
    for path, body in (("/api/chat", {"message": "hi"}), ("/api/tokens", {"messages": [{"role": "user"}]}),
                       ("/api/trim", {"messages": [{"role": "user", "content": "hi"}], "budget": 100})):
        error = assert_error(api.post(path, json={**body, "model": "a b"}), 400, "invalid_field")
        assert "'model'" in error["message"] and "letters" in error["message"] and "' '" in error["message"]
    assert len(live.store.list_sessions()) == before
    # Every allowed character at once: real names look like gpt-4o-2024-08-06, org/model:tag or name@v1+x.
    allowed = "Org_1/model-v2.5:tag@rev+x"
    assert api.post("/api/tokens", json={"messages": [{"role": "user", "content": "hi"}],
                                         "model": allowed}).json()["model"] == allowed
    assert chat(api, "hi", model=allowed)["model"] == allowed


def test_unknown_api_route_and_wrong_method_answer_json(api):
    assert_error(api.get("/api/nothing-here"), 404, "not_found")
    assert_error(api.put("/api/chat"), 405, "method_not_allowed")


def test_openai_through_the_fake_server_sends_the_history(api, fake):
    first = chat(api, "Hello", provider="openai", model="gpt-4o-mini", system="Be brief.")
    second = chat(api, "What's 2+2?", provider="openai", model="gpt-4o-mini", system="Be brief.",
                  sessionId=first["sessionId"])
    assert second["reply"].startswith("Fake reply to 4 messages")
    sent = fake.bodies("/chat/completions")[-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][-1]["content"] == "What's 2+2?" and sent["stream"] is True
    assert second["usage"]["input_tokens"] > 0 and second["cost"] is not None


@pytest.mark.parametrize("status", [500, 401])
def test_provider_failure_is_502_with_the_message_stored_and_the_turn_recorded(api, live, fake, status):
    sid = chat(api, "Hello", provider="openai", model="gpt-4o-mini")["sessionId"]
    fake.fail_next(status)
    response = api.post("/api/chat", json={"message": "What's 2+2?", "sessionId": sid, "provider": "openai",
                                           "model": "gpt-4o-mini"})
    error = assert_error(response, 502, "provider_error")
    assert error["sessionId"] == sid and error["turn"] == 2
    assert OPENAI_KEY not in response.text
    history = live.store.get_history(sid)
    assert [m["content"] for m in history if m["role"] == "user"] == ["Hello", "What's 2+2?"]
    record = live.store.get_turns(sid)[-1]
    assert record["turn"] == 2 and record["error"] and record.get("assistant_id") is None
    stored = api.get(f"/api/chat/{sid}")
    assert OPENAI_KEY not in stored.text


def test_provider_failure_while_streaming_ends_with_an_error_event(api, fake):
    fake.fail_next(500)
    response = api.post("/api/chat", json={"message": "Hello", "provider": "openai", "model": "gpt-4o-mini",
                                           "stream": True})
    (kind, data), = [event for event in sse_events(response) if event[0] != "delta"]
    assert kind == "error" and data["status"] == 502 and data["error"]["type"] == "provider_error"


# ---------------------------------------------------------------- web pages on other origins (CSRF)

VALID_BODIES = {"/api/chat": {"message": "Hello from another site"},
                "/api/tokens": {"messages": [{"role": "user", "content": "hi"}]},
                "/api/trim": {"messages": [{"role": "user", "content": "hi"}], "budget": 100}}


@pytest.mark.parametrize("path", sorted(VALID_BODIES))
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonx", None])
def test_a_body_not_sent_as_json_is_415_and_stores_nothing(api, live, path, content_type):
    """The media types a web page may send to another origin without a preflight, and no type at all."""
    before = len(live.store.list_sessions())
    headers = {"content-type": content_type} if content_type else {}
    error = assert_error(api.post(path, content=json.dumps(VALID_BODIES[path]), headers=headers), 415,
                         "unsupported_media_type")
    assert "Content-Type: application/json" in error["message"]
    assert len(live.store.list_sessions()) == before


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_with_a_charset_or_in_capitals_is_accepted(api, content_type):
    response = api.post("/api/chat", content=json.dumps(VALID_BODIES["/api/chat"]),
                        headers={"content-type": content_type})
    assert response.status_code == 200, response.text


def foreign_origins(port: int) -> list[str]:
    return ["http://evil.example", "null", f"http://127.0.0.1:{port + 1}", f"http://localhost:{port}",
            "http://127.0.0.1", f"http://127.0.0.1:{port}.evil.example", f"http://user@127.0.0.1:{port}"]


def test_a_request_from_another_origin_is_403_on_every_method_and_changes_nothing(api, live):
    sid = chat(api, "Hello")["sessionId"]
    before = len(live.store.list_sessions())
    port = int(live.url.rsplit(":", 1)[1])
    for origin in foreign_origins(port):
        headers = {"Origin": origin}
        error = assert_error(api.post("/api/chat", json={"message": "injected", "sessionId": sid, "system": "x"},
                                      headers=headers), 403, "cross_origin")
        assert origin in error["message"] and "no Origin header" in error["message"]
        assert_error(api.delete(f"/api/chat/{sid}", headers=headers), 403, "cross_origin")
        assert_error(api.get(f"/api/chat/{sid}", headers=headers), 403, "cross_origin")
        assert_error(api.post("/api/trim", json=VALID_BODIES["/api/trim"], headers=headers), 403, "cross_origin")
    assert len(live.store.list_sessions()) == before
    assert [m["content"] for m in live.store.get_history(sid) if m["role"] == "user"] == ["Hello"]


def test_the_apps_own_origin_and_clients_without_origin_are_answered(api, live):
    port = int(live.url.rsplit(":", 1)[1])
    own = chat(api, "Hello", sessionId=uuid.uuid4().hex)  # httpx sends no Origin, like curl and the SDKs
    for host, origin in ((f"127.0.0.1:{port}", live.url), (f"localhost:{port}", f"http://localhost:{port}"),
                         (f"[::1]:{port}", f"http://[::1]:{port}")):
        response = api.post("/api/chat", json={"message": "Hi", "sessionId": own["sessionId"]},
                            headers={"Origin": origin, "Host": host})
        assert response.status_code == 200, (origin, response.text)
    assert len(live.store.get_history(own["sessionId"])) == 8


@pytest.mark.parametrize(("origin", "host", "same"), [
    ("http://127.0.0.1:8501", "127.0.0.1:8501", True),
    ("http://LOCALHOST:8501", "localhost:8501", True),
    ("http://[::1]:8501", "[::1]:8501", True),
    ("https://lab.example.com", "lab.example.com", True),  # behind a TLS proxy: default ports on both sides
    ("https://lab.example.com:443", "lab.example.com", True),
    ("http://lab.example.com", "lab.example.com:80", True),
    ("http://127.0.0.1:8502", "127.0.0.1:8501", False),  # another port on this machine is another origin
    ("http://localhost:8501", "127.0.0.1:8501", False),
    ("http://127.0.0.1", "127.0.0.1:8501", False),
    ("https://lab.example.com:8443", "lab.example.com", False),
    ("null", "127.0.0.1:8501", False),
    ("http://127.0.0.1:8501/", "127.0.0.1:8501", False),
    ("http://a@127.0.0.1:8501", "127.0.0.1:8501", False),
    ("file://", "127.0.0.1:8501", False),
    ("http://127.0.0.1:85x1", "127.0.0.1:8501", False),
    ("http://[::1", "[::1]:8501", False),
    ("http://127.0.0.1:8501", "", False),
])
def test_same_origin_compares_host_and_port(origin, host, same):
    assert same_origin(origin, host) is same


# ---------------------------------------------------------------- the page and the API share sessions


def test_a_session_written_over_http_opens_in_the_chat_page_and_back(api, live, monkeypatch):
    sid = chat(api, "Hello")["sessionId"]
    chat(api, "What's 2+2?", sessionId=sid)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEFAULT_PROVIDER", "HISTORY_LAB_STORE", "TOKEN_BUDGET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", live.redis_url)
    monkeypatch.setenv("REDIS_PREFIX", live.prefix)
    monkeypatch.setenv("OFFLINE_DELAY", "0")
    at = open_app(session=sid)
    assert not at.exception and not at.error
    shown = [(m.name, " ".join(md.value for md in m.markdown)) for m in at.chat_message]
    assert [name for name, _ in shown] == ["user", "assistant"] * 2
    assert "Hello" in shown[0][1] and "2+2" in shown[2][1]

    at.chat_input(key="chat_input").set_value("And 4+4?").run()
    assert not at.exception
    stored = api.get(f"/api/chat/{sid}").json()
    assert [m["content"] for m in stored["messages"] if m["role"] == "user"] == ["Hello", "What's 2+2?", "And 4+4?"]
    assert [t["turn"] for t in stored["turns"]] == [1, 2, 3]
    assert chat(api, "And 8+8?", sessionId=sid)["turn"] == 4


# ---------------------------------------------------------------- the README's curl walk-through


def readme_walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- api-walkthrough -->", 1)[1]
    return block.split("```bash\n", 1)[1].split("```", 1)[0]


def test_readme_curl_walkthrough_runs_against_the_live_server(live):
    assert shutil.which("curl"), "curl is needed for the README walk-through (apt-get install curl)"
    script = readme_walkthrough()
    assert "BASE=http://localhost:8501" in script
    script = script.replace("BASE=http://localhost:8501", f"BASE={live.url}")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    sid = re.search(r"session: (\w+)", result.stdout).group(1)
    assert '"turn":2' in result.stdout and "event: done" in result.stdout and '"turn":3' in result.stdout
    assert "6 messages, 3 turns" in result.stdout
    assert result.stdout.rstrip().endswith(json.dumps({"message": "Session cleared", "sessionId": sid},
                                                      separators=(",", ":")))
    assert not live.store.exists(sid)


# ---------------------------------------------------------------- access: token, loopback, store down


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[tuple[Live, ValkeyProcess]]:
    """An app with HISTORY_LAB_API_TOKEN set, on a Valkey of its own (the 503 test stops it)."""
    tmp = tmp_path_factory.mktemp("guarded")
    valkey = start_valkey(tmp / "valkey")
    server, prefix = _start(tmp, valkey.url, HISTORY_LAB_API_TOKEN=API_TOKEN)
    yield Live(server.url, prefix, RedisStore(valkey.url, prefix=prefix), valkey.url), valkey
    server.stop()
    valkey.stop()


def test_token_is_required_when_set(guarded):
    live, _ = guarded
    with live.client() as anonymous:
        assert_error(anonymous.get("/api/health"), 401, "unauthorized")
        assert anonymous.get("/api/health").headers["www-authenticate"] == "Bearer"
    with live.client(Authorization="Bearer wrong-token") as wrong:
        assert_error(wrong.post("/api/chat", json={"message": "Hello"}), 401, "unauthorized")
    with live.client(Authorization=f"Bearer {API_TOKEN}") as client:
        assert client.get("/api/health").json()["status"] == "ok"
        body = chat(client, "Hello")
        assert API_TOKEN not in json.dumps(body)


def test_store_down_is_503(guarded):
    live, valkey = guarded
    with live.client(Authorization=f"Bearer {API_TOKEN}") as client:
        sid = chat(client, "Hello")["sessionId"]
        valkey.stop()
        assert_error(client.get("/api/health"), 503, "store_unavailable")
        # This server opened the session's last turn, so it knows the settings that turn ran with and reads
        # nothing first: the turn's first store call already writes (read, store and number the message in
        # one script, which checks those settings), so a failed call may have stored it, and the 503 says so.
        error = assert_error(client.post("/api/chat", json={"message": "Hello", "sessionId": sid}), 503,
                             "message_not_sent")
        assert error["sessionId"] == sid and "may be saved" in error["message"]
        # The same for a new session, which has no settings to read.
        error = assert_error(client.post("/api/chat", json={"message": "Hello"}), 503, "message_not_sent")
        assert "may be saved" in error["message"]
        assert_error(client.get(f"/api/chat/{sid}"), 503, "store_unavailable")


def test_a_turn_stored_but_not_sent_is_a_503_that_names_its_session_and_turn():
    cause = StoreUnavailable("Redis at x is not reachable (refused). Start it; nothing was written.",
                             reason="Redis at x is not reachable (refused).")
    status, body = error_body(MessageNotSent(cause, session_id="s1", turn=4))
    assert status == 503 and body["error"]["type"] == "message_not_sent"
    assert body["error"]["sessionId"] == "s1" and body["error"]["turn"] == 4
    assert "Redis at x" in body["error"]["message"] and "nothing was written" not in body["error"]["message"]


def test_without_a_token_only_loopback_clients_are_answered(monkeypatch):
    # The live server listens on 127.0.0.1 only, so a foreign client is simulated in process (same middleware).
    monkeypatch.delenv("HISTORY_LAB_API_TOKEN", raising=False)
    monkeypatch.setenv("HISTORY_LAB_STORE", "memory")
    app = api_app()

    async def fetch(client: tuple[str, int]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await http.get("/health")

    def get(client: tuple[str, int]) -> httpx.Response:
        return asyncio.run(fetch(client))

    error = assert_error(get(("203.0.113.7", 40000)), 403, "forbidden")
    assert "HISTORY_LAB_API_TOKEN" in error["message"]
    assert_error(get(("::ffff:192.0.2.1", 40000)), 403, "forbidden")
    for loopback in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert get((loopback, 40000)).status_code == 200, loopback
