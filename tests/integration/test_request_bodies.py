"""The request body every page shows is the body the provider received: real SDKs against tests/support/fake_llm.py.

For every provider and history mode, a few chat turns (trimming, server-side chains, prompt caching, server
compaction), then the body each turn shows (the timeline, which the chat page draws; lib.chat.bodies, which
the inspector and GET /api/chat/{id}/turns/{n}/request draw) is compared with the JSON the fake server
received. A refused turn shows no body at all; a turn that failed at the provider shows what it sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2 as httpx
import pytest

from lib.api import api_app
from lib.chat import CompareConfig, TurnRequest, run_comparison, run_turn, turn_body
from lib.context import ExtractiveSummarizer, pretty
from lib.core import Settings, read_turns
from lib.providers import get_provider
from lib.views import build_timeline

KEY = "sk-test-BODIES0123456789"
SYSTEM = "Be brief."
TEXTS = ["Tell me about the Nile, please.", "And the Amazon river?", "Which one is longer, in kilometres?",
         "Name a third long river.", "Thanks, that is all."]
# Long enough for the summary strategy to compact at a budget of 250.
LONG_TEXTS = [f"{t} Add some detail about deltas, floods and the towns along its banks." * 3 for t in TEXTS]
PATHS = {"openai": "/chat/completions", "openai-compatible": "/chat/completions", "openai-responses": "/responses",
         "anthropic": "/messages"}
MODELS = {"openai": "gpt-5.4-mini", "openai-compatible": "llama3.2", "openai-responses": "gpt-5.4-mini",
          "anthropic": "claude-sonnet-5"}


def provider(name: str, fake_llm) -> Any:
    url = fake_llm.anthropic_url if name == "anthropic" else fake_llm.openai_url
    return get_provider(name, Settings(), api_key=KEY, base_url=url, max_retries=0)


def chat(store, adapter, texts: list[str], **options: Any) -> list[Any]:
    results, sid = [], None
    for text in texts:
        result = run_turn(store, adapter, TurnRequest(user_text=text, session_id=sid, system_prompt=SYSTEM,
                                                      model=options.pop("model", None), **options))
        sid = result.session_id
        results.append(result)
    return results


def shown_bodies(store, sid: str) -> list[dict[str, Any] | None]:
    """Each turn's body as the timeline shows it, checked against lib.chat.bodies (inspector, API)."""
    history, meta, raw = store.get_history(sid), store.get_meta(sid), store.get_turns(sid)
    timeline = build_timeline(history, raw, meta=meta)
    shown = [timeline.request_body(turn) for turn in timeline.turns]
    direct = [turn_body(record, history, meta) for record in read_turns(raw)]
    assert [s.body for s in shown] == [d.body for d in direct]
    assert all(s.complete for s in shown if s.body is not None), [s.missing for s in shown]
    return [s.body for s in shown]


SCENARIOS = {
    "openai, trimmed": ("openai", {"budget": 90}),
    "openai-compatible, trimmed": ("openai-compatible", {"budget": 90}),
    "openai, summary strategy": ("openai", {"budget": 250, "strategy": "summary",
                                            "summarizer": ExtractiveSummarizer()}),
    "responses, previous_response_id": ("openai-responses", {"server_state": "previous_response"}),
    "responses, conversation": ("openai-responses", {"server_state": "conversation"}),
    "responses, re-sent, truncation and compaction": ("openai-responses", {
        "server_state": None, "truncation": "auto", "compaction_threshold": 40}),
    "anthropic": ("anthropic", {"budget": 90}),
    "anthropic, cache_control": ("anthropic", {"prompt_caching": True}),
    "anthropic, context management": ("anthropic", {"compaction_threshold": 40}),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_shown_body_is_the_body_the_provider_received(memory_store, fake_llm, scenario):
    name, options = SCENARIOS[scenario]
    texts = LONG_TEXTS if "summary" in scenario else TEXTS
    results = chat(memory_store, provider(name, fake_llm), texts, model=MODELS[name], **options)
    assert all(r.ok for r in results), [r.error for r in results]
    received = fake_llm.bodies(PATHS[name])
    assert len(received) == len(TEXTS)
    assert [r.request for r in results] == received  # what the live reply shows
    assert shown_bodies(memory_store, results[0].session_id) == received
    records = [r.record for r in results]
    text = str(received)
    # Each scenario really exercises what it is named after.
    expected = {"trimmed": any(r.dropped_count for r in records), "summary": any(r.summary_id for r in records),
                "previous_response_id": sum(1 for b in received if b.get("previous_response_id")) == len(TEXTS) - 1,
                "conversation": all(b.get("conversation") for b in received),
                "cache_control": "cache_control" in text, "truncation": "truncation" in text,
                "context management": "context_management" in text}
    assert all(expected[word] for word in expected if word in scenario), (scenario, expected)


def test_the_bodies_differ_where_the_apis_do(memory_store, fake_llm):
    """The cases that were shown wrongly: each API's own fields, never a Chat Completions body for all."""
    cases = {name: chat(memory_store, provider(name, fake_llm), TEXTS[:2], model=MODELS[name])[-1]
             for name in ("openai", "openai-compatible", "openai-responses", "anthropic")}
    bodies = {name: shown_bodies(memory_store, result.session_id)[-1] for name, result in cases.items()}
    assert "max_completion_tokens" in bodies["openai"] and "max_tokens" not in bodies["openai"]
    assert "max_tokens" in bodies["openai-compatible"]
    assert bodies["anthropic"]["system"] == SYSTEM
    assert all(m["role"] != "system" for m in bodies["anthropic"]["messages"])
    responses = bodies["openai-responses"]
    assert "messages" not in responses and responses["instructions"] == SYSTEM
    assert responses["input"] == [{"role": "user", "content": TEXTS[1]}] and responses["previous_response_id"]


def test_a_session_mixing_providers_shows_each_turn_in_its_own_shape(memory_store, fake_llm):
    sid = None
    sent: list[dict[str, Any]] = []
    for name in ("anthropic", "openai-responses", "openai-responses", "offline", "openai"):
        adapter = get_provider("offline", delay=0) if name == "offline" else provider(name, fake_llm)
        result = run_turn(memory_store, adapter, TurnRequest(user_text=f"Hello from {name}", session_id=sid,
                                                             system_prompt=SYSTEM))
        assert result.ok, result.error
        sid = result.session_id
        sent.append(result.request if name == "offline" else fake_llm.requests[-1]["body"])
    assert shown_bodies(memory_store, sid) == sent
    assert sent[2]["previous_response_id"] and len(sent[2]["input"]) == 1  # the chain held turn 2
    assert sent[1].get("previous_response_id") is None  # turn 1 was Anthropic's: nothing to chain on


def test_a_broken_conversation_shows_the_request_that_went_with_the_new_conversation(memory_store, fake_llm):
    responses = provider("openai-responses", fake_llm)
    sid = chat(memory_store, responses, ["one"], server_state="conversation")[0].session_id
    run_turn(memory_store, get_provider("offline", delay=0), TurnRequest(user_text="two", session_id=sid))
    third = run_turn(memory_store, responses, TurnRequest(user_text="three", session_id=sid,
                                                          server_state="conversation", system_prompt=SYSTEM))
    assert third.ok
    shown = shown_bodies(memory_store, sid)
    assert shown[2] == fake_llm.bodies("/responses")[-1] == third.request
    assert shown[2]["input"] == [{"role": "user", "content": "three"}] and shown[2]["conversation"] == "conv_3"


def test_a_refused_turn_shows_no_body_and_a_failed_one_shows_what_it_sent(memory_store, fake_llm):
    adapter = provider("openai", fake_llm)
    first = chat(memory_store, adapter, ["Hello there."], model="gpt-5.4-mini")[0]
    refused = run_turn(memory_store, adapter, TurnRequest(user_text="word " * 400, session_id=first.session_id,
                                                          system_prompt=SYSTEM, budget=200))
    assert refused.error is not None and refused.request is None
    assert len(fake_llm.bodies("/chat/completions")) == 1  # nothing went out
    fake_llm.fail_next(500)
    failed = run_turn(memory_store, adapter, TurnRequest(user_text="Still there?", session_id=first.session_id,
                                                         system_prompt=SYSTEM))
    assert failed.error is not None
    shown = shown_bodies(memory_store, first.session_id)
    assert shown[0] == fake_llm.bodies("/chat/completions")[0]
    assert shown[1] is None  # no request was made, so there is no body (not "messages": [])
    assert shown[2] == fake_llm.bodies("/chat/completions")[-1] == failed.request


def test_the_api_shows_the_body_the_provider_received(monkeypatch, fake_llm):
    for name in ("HISTORY_LAB_API_TOKEN", "DEFAULT_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HISTORY_LAB_STORE", "memory")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.anthropic_url)
    monkeypatch.setenv("PROVIDER_MAX_RETRIES", "0")
    app = api_app()

    async def exchange() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=60) as http:
            replies, sid = [], None
            for n, name in enumerate(("anthropic", "openai-responses", "openai-responses")):
                # The body is echoed only when asked for; the last turn's answer points to it instead.
                body = {"message": f"Hi from {name}", "provider": name, "system": SYSTEM,
                        **({"sessionId": sid} if sid else {}), **({"include": ["request"]} if n < 2 else {})}
                reply = (await http.post("/chat", json=body)).json()
                sid = reply["sessionId"]
                replies.append(reply)
            assert "request" not in replies[2]
            urls = [r["requestUrl"] for r in replies]
            assert urls == [f"/api/chat/{sid}/turns/{n}/request" for n in (1, 2, 3)]
            turns = [(await http.get(url.removeprefix("/api"))).json() for url in urls]
            missing = await http.get(f"/chat/{sid}/turns/9/request")
            assert missing.status_code == 404 and "has no turn 9" in missing.json()["error"]["message"]
            return replies, turns

    replies, turns = asyncio.run(exchange())
    received = [r["body"] for r in fake_llm.requests]
    assert [r["request"] for r in replies[:2]] == received[:2]
    assert [t["request"] for t in turns] == received and all(t["complete"] for t in turns)
    assert received[2]["previous_response_id"] and len(received[2]["input"]) == 1


def test_compare_shows_the_bodies_each_provider_received(fake_llm):
    configs = [CompareConfig("openai", MODELS["openai"]),
               CompareConfig("anthropic", MODELS["anthropic"], {"prompt_caching": True}),
               CompareConfig("openai-responses", MODELS["openai-responses"], call={"truncation": "auto"}),
               CompareConfig("openai-compatible", MODELS["openai-compatible"])]

    def factory(config: CompareConfig) -> Any:
        url = fake_llm.anthropic_url if config.provider == "anthropic" else fake_llm.openai_url
        return get_provider(config.provider, Settings(), api_key=KEY, base_url=url, max_retries=0, **config.options)

    history = [{"role": "user", "content": TEXTS[0]}, {"role": "assistant", "content": "It is long."}]
    columns = {r.index: r for r in run_comparison(history, TEXTS[1], configs, provider_factory=factory,
                                                  system_prompt=SYSTEM) if r.done}
    received = {(r["path"], r["body"]["model"]): r["body"] for r in fake_llm.requests}
    for index, config in enumerate(configs):
        body = received[("/v1" + PATHS[config.provider], config.model)]
        assert columns[index].request == body, config.provider
        assert json.loads(pretty(columns[index].request)) == body  # the page's text of it, whole
    assert "cache_control" in str(columns[1].request) and columns[2].request["truncation"] == "auto"


def test_a_turn_that_failed_at_the_provider_returns_what_it_sent_from_the_api(monkeypatch, fake_llm):
    monkeypatch.delenv("HISTORY_LAB_API_TOKEN", raising=False)
    monkeypatch.setenv("HISTORY_LAB_STORE", "memory")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.openai_url)
    monkeypatch.setenv("PROVIDER_MAX_RETRIES", "0")
    app = api_app()
    fake_llm.fail_next(500)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=60) as http:
            return await http.post("/chat", json={"message": "Hello?", "provider": "openai", "system": SYSTEM})

    response = asyncio.run(post())
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["request"] == fake_llm.requests[-1]["body"] and error["type"] and error["message"]
