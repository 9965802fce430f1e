"""Tool definitions in the window: counted as the OpenAI cookbook counts them, drawn as their own block at the
front of every payload in the provider's order, part of the cached prefix, a changed tool breaks the cache
(and the badge says why), the budget holds them, and the demo's tool call uses them."""

from __future__ import annotations

import json

import pytest

from lib.chat import TurnRequest, demo_data, load_demo, run_turn
from lib.core import TOOL_SET, InvalidTools, ReplyMeta, ToolDef, parse_tools, read_turns
from lib.providers import get_provider
from lib.sessions import MemoryStore
from lib.tokens import count_chat_tokens, count_label, count_tool_tokens
from lib.views import build_timeline
from tests.support.api_inprocess import inprocess_api

LONG = " word" * 1100  # turns long enough that the prefix passes the 1,024-token cache minimum


def test_tool_tokens_match_the_cookbooks_published_counts():
    # The OpenAI cookbook ("How to count tokens with tiktoken", section 7) reports these prompt_tokens from the
    # API for this request: 101 for gpt-4o and gpt-4o-mini, 105 for gpt-4 and gpt-3.5-turbo.
    tool = ToolDef("get_current_weather", "Get the current weather in a given location", {
        "type": "object", "required": ["location"], "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "string", "description": "The unit of temperature to return",
                     "enum": ["celsius", "fahrenheit"]}}})
    messages = [{"role": "system", "content": "You are a helpful assistant that can answer to questions about the "
                 "weather."}, {"role": "user", "content": "What's the weather like in San Francisco?"}]
    for model, expected in (("gpt-4o", 101), ("gpt-4o-mini", 101), ("gpt-4", 105), ("gpt-3.5-turbo", 105)):
        assert count_chat_tokens(messages, model) + count_tool_tokens([tool], model) == expected, model
    assert count_tool_tokens([], "gpt-4o") == 0
    assert count_label("tools", model="gpt-4o") == "exact (tiktoken, o200k_base; tool framing per the OpenAI cookbook)"
    assert count_label("tools", model="claude-sonnet-5").startswith("approximate (o200k_base stands in for claude")


def chat(store, session, text, *, tools=TOOL_SET, reference="gpt-4o-mini", budget=100_000, **options):
    provider = get_provider("offline", delay=0, reference_model=reference)
    result = run_turn(store, provider, TurnRequest(user_text=text, session_id=session, system_prompt="Be brief.",
                                                   budget=budget, tools=tools, reference_model=reference, **options))
    assert result.error is None, result.error
    return result


def timeline_of(store, session, reference="gpt-4o-mini"):
    return build_timeline(store.get_history(session), store.get_turns(session), meta=store.get_meta(session),
                          reference_model=reference)


@pytest.mark.parametrize(("reference", "order"), [("gpt-4o-mini", ["system", "tools"]),
                                                  ("claude-sonnet-5", ["tools", "system"])])
def test_the_tools_are_a_block_at_the_front_of_every_payload_in_the_providers_order(reference, order):
    store, session = MemoryStore(), f"order-{reference}"
    for n in range(3):
        result = chat(store, session, f"question {n}", reference=reference)
    assert result.request["tools"][0]["function"]["name"] == "get_weather" and result.request["tool_choice"] == "none"
    report = " ".join(ReplyMeta.from_json(result.assistant_message["meta"]).report)  # the offline model saw them
    assert "3 tool definitions (get_weather, search_web, calculator" in report
    timeline = timeline_of(store, session, reference)
    for turn in timeline.turns:
        blocks = timeline.blocks(turn)
        assert [b.kind for b in blocks[:2]] == order
        tools = next(b for b in blocks if b.kind == "tools")
        assert tools.tokens == count_tool_tokens(TOOL_SET, "offline-teacher") and tools.new == (turn == 1)
        row = timeline.row(turn)
        assert row.tokens == sum(b.tokens for b in blocks) + 3  # the reply priming
        assert any("3 tool definitions sent" in b.text and "never trimmed" in b.text for b in row.badges)
    body = timeline.request_body(timeline.turns[-1])  # rebuilt by the adapter, tools from the session meta
    assert body.complete and body.body is not None and body.body["tools"] == result.request["tools"]


def test_tools_are_part_of_the_cached_prefix_and_changing_one_breaks_it_with_the_reason():
    store, session = MemoryStore(), "cache"
    chat(store, session, "first" + LONG)
    chat(store, session, "second" + LONG)
    changed = (ToolDef("get_weather", "Get the weather for a city.", TOOL_SET[0].parameters), *TOOL_SET[1:])
    chat(store, session, "third" + LONG, tools=changed)
    timeline = timeline_of(store, session)
    kept, broken = timeline.row(2), timeline.row(3)
    assert kept.cache.status == "kept" and kept.cache.cached_messages >= 2  # system prompt and tools cached
    assert broken.cache.status == "broken" and broken.cache_reason == "the tool definitions changed"
    assert any("cache broken" in b.text and "the tool definitions changed" in b.text for b in broken.badges)


def test_the_budget_holds_the_tools_so_trimming_starts_sooner():
    without, with_tools = MemoryStore(), MemoryStore()
    for n in range(8):
        plain = chat(without, "s", f"question {n}" + " word" * 30, tools=(), budget=500)
        tooled = chat(with_tools, "s", f"question {n}" + " word" * 30, budget=500)
    assert len(tooled.payload) < len(plain.payload)
    assert tooled.trim.tokens_after <= 500 and tooled.trim.tool_tokens == count_tool_tokens(TOOL_SET, "offline-teacher")
    record = read_turns(with_tools.get_turns("s"))[-1]
    assert record.exact == tooled.trim.tokens_after and not record.problems


def test_the_demo_sends_the_tool_set_and_its_tool_call_uses_get_weather():
    call = next(m for m in demo_data()["messages"] if m.get("tool_calls"))["tool_calls"][0]["function"]
    weather = next(t for t in TOOL_SET if t.name == call["name"])
    assert set(weather.parameters["required"]) <= set(json.loads(call["arguments"]))
    store = MemoryStore()
    session = load_demo(store)
    records = read_turns(store.get_turns(session))
    assert all(r.tool_tokens == count_tool_tokens(TOOL_SET, "gpt-4o-mini") for r in records)
    timeline = timeline_of(store, session)
    # The demo was never sent (no body to rebuild), but every payload of it starts with the tool set.
    assert all(timeline.blocks(turn)[1].kind == "tools" for turn in timeline.turns)


def test_tool_lists_are_checked_and_the_api_takes_true_or_a_list(monkeypatch):
    assert parse_tools(True) == TOOL_SET and parse_tools(None) == () and parse_tools(False) == ()
    assert parse_tools([{"type": "function", "function": {"name": "f"}}])[0].name == "f"
    for bad, words in (("yes", "must be true"), ([{"name": "bad name"}], r"tools\[0\]\.name"),
                       ([{"name": "f"}, {"name": "f"}], "more than once"),
                       ([{"name": "f", "parameters": {"type": "array"}}], r"tools\[0\]\.parameters")):
        with pytest.raises(InvalidTools, match=words):
            parse_tools(bad)
    post = inprocess_api(monkeypatch)
    answer = post("/chat", {"message": "hi", "tools": True}).json()
    assert answer["tokens"]["tools"] == count_tool_tokens(TOOL_SET, "offline-teacher")
    custom = post("/chat", {"message": "hi", "tools": [{"name": "lookup", "description": "Look it up."}]}).json()
    assert 0 < custom["tokens"]["tools"] < answer["tokens"]["tools"]
    refused = post("/chat", {"message": "hi", "tools": [{"name": "no spaces"}]})
    assert refused.status_code == 400 and "tools[0].name" in refused.json()["error"]["message"]
