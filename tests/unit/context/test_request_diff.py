"""lib.context.diff: body shapes of the three APIs, highlights against a baseline, unified diff."""

from __future__ import annotations

from lib.context import body_shape, highlights, pretty, unified_diff
from lib.providers import AnthropicProvider, OpenAIChatProvider, OpenAIResponsesProvider, ProviderOptions

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Again"}]


def body(provider, **options):
    return provider.build_request(MESSAGES, model="m", max_tokens=100, options=ProviderOptions(**options))


def test_shapes_of_the_three_apis():
    chat = body_shape(body(OpenAIChatProvider()))
    assert (chat.api, chat.items, chat.system, chat.chained) == ("Chat Completions", 4, "messages[0] (role system)",
                                                                 None)
    claude = body_shape(body(AnthropicProvider(), prompt_caching=True))
    assert (claude.api, claude.items, claude.system) == ("Messages", 3, "top-level system field")
    assert claude.cache_breakpoints >= 1
    plain = body_shape(AnthropicProvider().build_request(MESSAGES[1:], model="m", max_tokens=9,
                                                         options=ProviderOptions()))
    assert (plain.api, plain.system, plain.cache_breakpoints) == ("Messages", "none", 0)
    responses = body_shape(body(OpenAIResponsesProvider(), previous_response_id="resp_1", truncation="auto"))
    assert (responses.api, responses.sent_text, responses.system) == ("Responses", "1 input items",
                                                                      "top-level instructions field")
    assert responses.chained == "previous_response_id=resp_1" and responses.extras == ('truncation="auto"',)


def test_highlights_name_what_moved():
    base = body(OpenAIChatProvider())
    assert highlights(base, base) == []
    notes = highlights(base, body(AnthropicProvider(), prompt_caching=True))
    assert "System prompt: top-level system field instead of messages[0] (role system)." in notes
    assert "Re-sent: 3 messages instead of 4 messages." in notes
    assert any(n.startswith("`cache_control` breakpoints:") for n in notes)
    chained = highlights(base, body(OpenAIResponsesProvider(), previous_response_id="resp_1"))
    assert r"Server-side history: previous\_response\_id\=resp\_1 instead of none." in chained  # literal
    assert "Re-sent: 1 input items instead of 4 messages." in chained


def test_highlights_show_a_response_id_as_literal_text():
    hostile = "resp`\n![m](http://127.0.0.1:9/p.png)"
    notes = " ".join(highlights(body(OpenAIChatProvider()), body(OpenAIResponsesProvider(),
                                                                  previous_response_id=hostile)))
    assert "127.0.0.1" not in notes and "](" not in notes and "\n" not in notes


def test_unified_diff_of_pretty_json():
    a, b = body(OpenAIChatProvider()), body(OpenAIResponsesProvider(), previous_response_id="resp_1")
    diff = unified_diff(a, b, baseline_name="1 openai", other_name="2 responses")
    assert diff.startswith("--- 1 openai\n+++ 2 responses")
    assert '+  "previous_response_id": "resp_1",' in diff.splitlines()
    assert unified_diff(a, a, baseline_name="x", other_name="y") == ""
    assert pretty(None) == "{}" and pretty({"k": "é"}) == '{\n  "k": "é"\n}'
