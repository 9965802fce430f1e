"""Tool definitions on the wire, through the real SDKs against tests/support/fake_llm.py: each provider's own
shape, tool_choice "none", re-sent on every request (a server-side chain too), counted by the count endpoints;
and a whole chat turn that counts them, keeps them through trimming and records them."""

from __future__ import annotations

from lib.chat import TurnRequest, run_turn
from lib.core import TOOL_SET, read_turns
from lib.providers import ProviderOptions
from lib.sessions import MemoryStore
from lib.tokens import count_chat_tokens, count_tool_tokens
from tests.support.fake_llm import wire_provider as provider
from tests.support.fake_llm_events import PER_ITEM, PER_SYSTEM, PER_TOOL

SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "Weather in Lisbon on Friday?"}
TOOLS = ProviderOptions(tools=TOOL_SET)
WEATHER = TOOL_SET[0]


def test_chat_completions_sends_function_tools_with_tool_choice_none(fake_llm):
    reply = provider("openai", fake_llm).stream([SYSTEM, USER], model="gpt-5.4-mini", options=TOOLS)
    "".join(reply)
    body = fake_llm.bodies("/chat/completions")[0]
    assert body["tools"][0] == {"type": "function", "function": {
        "name": "get_weather", "description": WEATHER.description, "parameters": dict(WEATHER.parameters)}}
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "search_web", "calculator"]
    assert body["tool_choice"] == "none" and reply.request == body
    assert reply.usage.input_tokens == 2 * PER_ITEM + 3 * PER_TOOL  # the server billed the definitions


def test_responses_sends_flat_function_tools_on_every_chained_request(fake_llm):
    responses = provider("openai-responses", fake_llm)
    first = responses.stream([SYSTEM, USER], model="gpt-5.4-mini", options=TOOLS)
    "".join(first)
    chained = responses.stream([SYSTEM, USER, {"role": "assistant", "content": "x"}, USER], model="gpt-5.4-mini",
                               options=ProviderOptions(tools=TOOL_SET, previous_response_id=first.response_id))
    "".join(chained)
    for body in fake_llm.bodies("/responses"):
        assert body["tools"][0] == {"type": "function", "name": "get_weather", "description": WEATHER.description,
                                    "parameters": dict(WEATHER.parameters), "strict": False}
        assert body["tool_choice"] == "none"
    counted = responses.count_tokens([SYSTEM, USER], "gpt-5.4-mini", options=TOOLS)
    assert fake_llm.bodies("/responses/input_tokens")[0]["tools"] == fake_llm.bodies("/responses")[0]["tools"]
    assert counted == PER_ITEM + PER_SYSTEM + 3 * PER_TOOL


def test_anthropic_sends_input_schema_tools_first_in_the_cached_prefix(fake_llm):
    anthropic = provider("anthropic", fake_llm)
    reply = anthropic.stream([USER], model="claude-sonnet-5", options=ProviderOptions(tools=TOOL_SET,
                                                                                     prompt_caching=True))
    "".join(reply)
    body = fake_llm.bodies("/messages")[0]
    assert body["tools"][0]["input_schema"] == dict(WEATHER.parameters) and "parameters" not in body["tools"][0]
    assert body["tool_choice"] == {"type": "none"}
    # No system prompt: the cache breakpoint goes on the last tool, where the stable front of the prompt ends.
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    with_system = anthropic.stream([SYSTEM, USER], model="claude-sonnet-5",
                                   options=ProviderOptions(tools=TOOL_SET, prompt_caching=True))
    "".join(with_system)
    body = fake_llm.bodies("/messages")[1]
    assert "cache_control" not in body["tools"][-1] and body["system"][0]["cache_control"]
    assert anthropic.count_tokens([SYSTEM, USER], "claude-sonnet-5", options=TOOLS) == \
        PER_ITEM + PER_SYSTEM + 3 * PER_TOOL
    assert fake_llm.bodies("/messages/count_tokens")[0]["tools"][0]["name"] == "get_weather"


def test_a_chat_turn_counts_the_tools_keeps_them_when_trimming_and_records_them(fake_llm):
    store, session = MemoryStore(), "tools"
    openai = provider("openai", fake_llm)
    model = "gpt-4o-mini"
    for n in range(6):
        result = run_turn(store, openai, TurnRequest(user_text=f"question {n} " + "word " * 60, session_id=session,
                                                     system_prompt="Be brief.", model=model, budget=600,
                                                     tools=TOOL_SET))
        assert result.error is None, result.error
    tool_tokens = count_tool_tokens(TOOL_SET, model)
    record = read_turns(store.get_turns(session))[-1]
    assert record.dropped_count > 0, "the budget trimmed old turns"
    assert fake_llm.bodies("/chat/completions")[-1]["tools"], "the tools were still sent"
    assert record.tool_tokens == tool_tokens and record.tool_names == ("get_weather", "search_web", "calculator")
    assert record.exact == count_chat_tokens(result.payload, model) + tool_tokens <= 600
    assert result.trim.tool_tokens == tool_tokens


def test_compare_sends_the_tools_in_each_columns_shape_and_says_so(fake_llm):
    from lib.chat import CompareConfig, comparison_record, request_differences, run_comparison

    configs = [CompareConfig("openai", "gpt-5.4-mini"), CompareConfig("anthropic", "claude-sonnet-5"),
               CompareConfig("openai-responses", "gpt-5.4-mini"), CompareConfig("gemini", "gemini-2.5-flash")]
    events = run_comparison([{"id": "u1", "role": "user", "content": "Hello"}], "Weather?", configs,
                            system_prompt="Be brief.", tools=TOOL_SET,
                            provider_factory=lambda c: provider(c.provider, fake_llm))
    results = sorted((e for e in events if e.done), key=lambda r: r.index)
    assert all(r.error is None for r in results), [r.error for r in results]
    assert results[0].request["tools"][0]["function"]["name"] == "get_weather"
    assert results[1].request["tools"][0]["input_schema"] == dict(WEATHER.parameters)
    assert results[2].request["tools"][0]["name"] == "get_weather"
    assert results[3].request["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    # The count before sending holds the definitions too.
    assert results[0].exact == count_chat_tokens([SYSTEM | {"content": "Be brief."}, {"role": "user", "content":
                                                  "Hello"}, {"role": "user", "content": "Weather?"}],
                                                 "gpt-5.4-mini") + count_tool_tokens(TOOL_SET, "gpt-5.4-mini")
    notes = " ".join(request_differences(results))
    assert "3 tool definitions as `{type: function, function: {...}}`" in notes
    assert "3 tool definitions as `{name, description, input_schema}`, before the system prompt" in notes
    assert "3 tool definitions as flat `{type: function, name, parameters}` items" in notes
    assert "3 tool definitions as `functionDeclarations` in one `tools` entry" in notes
    record = comparison_record("Weather?", configs, results, system_prompt="Be brief.", strategy="turns",
                               budget=80_000, tools=TOOL_SET)
    assert record["tools"] == ["get_weather", "search_web", "calculator"]


def test_gemini_sends_function_declarations_with_calling_off_and_counts_them(fake_llm):
    gemini = provider("gemini", fake_llm)
    reply = gemini.stream([SYSTEM, USER], model="gemini-2.5-flash", options=TOOLS)
    "".join(reply)
    [body] = fake_llm.bodies(":streamGenerateContent")
    [declared] = body["tools"]
    assert [d["name"] for d in declared["functionDeclarations"]] == ["get_weather", "search_web", "calculator"]
    assert declared["functionDeclarations"][0]["parameters_json_schema"] == dict(WEATHER.parameters)
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}} and reply.request == body
    assert reply.usage.input_tokens == PER_ITEM + PER_SYSTEM + 3 * PER_TOOL  # the server billed the definitions
    counted = gemini.count_tokens([SYSTEM, USER], "gemini-2.5-flash", options=TOOLS)
    assert fake_llm.bodies(":countTokens")[0]["generateContentRequest"]["tools"] == body["tools"]
    assert counted == PER_ITEM + PER_SYSTEM + 3 * PER_TOOL


def test_gemini_puts_the_tools_in_its_explicit_cache_and_not_beside_it(fake_llm):
    # A request naming a cache may not set tools again (the fake refuses it, as the API does): the cache holds
    # them, and a changed tool set is a new prefix, so it makes a new cache.
    gemini = provider("gemini", fake_llm)
    long_system = {"role": "system", "content": "The history is re-sent on every turn. " * 700}
    history = [long_system, USER, {"role": "assistant", "content": "Sunny."}, USER]
    for tools in (TOOL_SET, TOOL_SET, TOOL_SET[:2]):
        reply = gemini.stream(history, model="gemini-2.5-flash",
                              options=ProviderOptions(tools=tools, prompt_caching=True))
        "".join(reply)
    creates = [r["body"] for r in fake_llm.requests if r["path"].endswith("/cachedContents")]
    assert len(creates) == 2  # the second turn reused the first cache; the third had other tools
    assert [len(c["tools"][0]["functionDeclarations"]) for c in creates] == [3, 2]
    assert all(c["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}} for c in creates)
    for sent in fake_llm.bodies(":streamGenerateContent"):
        assert sent.get("cachedContent") and "tools" not in sent and "toolConfig" not in sent
