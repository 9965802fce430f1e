"""Provider count endpoints through the real SDKs: exact request bodies, the count, and the errors."""

from __future__ import annotations

import pytest

from lib.core import Settings
from lib.providers import (
    AuthenticationFailed,
    CountUnavailable,
    MissingKeyError,
    ProviderOptions,
    RateLimited,
    get_provider,
)
from tests.support.fake_llm import TEST_KEY as KEY
from tests.support.fake_llm import wire_provider as provider

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one"},
            {"role": "assistant", "content": "reply"}, {"role": "user", "content": "two"}]
COUNTERS = [("anthropic", "/v1/messages/count_tokens", "claude-sonnet-5"),
            ("openai-responses", "/v1/responses/input_tokens", "gpt-5.4-mini")]




def test_anthropic_count_tokens_request_body(fake_llm):
    count = provider("anthropic", fake_llm, api_key=KEY).count_tokens(MESSAGES, "claude-sonnet-5")
    assert count == 3 * 10 + 5
    assert fake_llm.requests[0]["path"] == "/v1/messages/count_tokens"
    assert fake_llm.requests[0]["body"] == {"model": "claude-sonnet-5", "messages": MESSAGES[1:],
                                            "system": "Be brief."}


def test_anthropic_count_includes_cache_breakpoints_like_the_message(fake_llm):
    options = ProviderOptions(prompt_caching=True)
    provider("anthropic", fake_llm, api_key=KEY).count_tokens(MESSAGES, "claude-sonnet-5", options=options)
    body = fake_llm.requests[0]["body"]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    assert "stream" not in body and "max_tokens" not in body


def test_responses_input_tokens_count_request_body(fake_llm):
    count = provider("openai-responses", fake_llm, api_key=KEY).count_tokens(MESSAGES, "gpt-5.4-mini")
    assert count == 3 * 10 + 5
    assert fake_llm.requests[0]["path"] == "/v1/responses/input_tokens"
    assert fake_llm.requests[0]["body"] == {
        "model": "gpt-5.4-mini", "instructions": "Be brief.",
        "input": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "reply"},
                  {"role": "user", "content": "two"}]}


def test_responses_count_of_a_chained_request_counts_what_the_server_holds(fake_llm):
    prov = provider("openai-responses", fake_llm, api_key=KEY)
    first = prov.stream(MESSAGES[:2], model="gpt-5.4-mini")
    "".join(first)
    options = ProviderOptions(previous_response_id=first.response_id)
    assert prov.count_tokens(MESSAGES, "gpt-5.4-mini", options=options) == (15 + 5) + 10 + 5
    assert fake_llm.requests[-1]["body"] == {"model": "gpt-5.4-mini", "instructions": "Be brief.",
                                             "input": [{"role": "user", "content": "two"}],
                                             "previous_response_id": first.response_id}


@pytest.mark.parametrize(("name", "path", "model"), COUNTERS)
def test_count_without_a_key_names_the_variable_and_sends_nothing(fake_llm, name, path, model):
    with pytest.raises(MissingKeyError, match="Set (ANTHROPIC|OPENAI)_API_KEY"):
        provider(name, fake_llm, api_key=None).count_tokens(MESSAGES, model)
    assert fake_llm.requests == []


@pytest.mark.parametrize(("name", "path", "model"), COUNTERS)
def test_count_401_and_429_are_actionable(fake_llm, name, path, model):
    prov = provider(name, fake_llm, api_key=KEY)
    fake_llm.fail_next(401)
    with pytest.raises(AuthenticationFailed, match="rejected the API key") as raised:
        prov.count_tokens(MESSAGES, model)
    assert raised.value.status == 401
    fake_llm.fail_next(429, retry_after=3)
    with pytest.raises(RateLimited, match="Retry after 3 s"):
        prov.count_tokens(MESSAGES, model)
    assert [r["path"] for r in fake_llm.requests] == [path, path]


def test_providers_without_a_count_endpoint_say_so():
    for name in ("offline", "openai"):
        prov = get_provider(name, Settings())
        assert not prov.info.capabilities.count_endpoint
        with pytest.raises(CountUnavailable, match="no token-count endpoint"):
            prov.count_tokens(MESSAGES, "m")
    for name in ("anthropic", "openai-responses"):
        assert get_provider(name, Settings()).info.capabilities.count_endpoint
    # A local server counts with its own tokenizer when it is llama.cpp's (tests/integration/test_server_tokenizer.py).
    assert get_provider("openai-compatible", Settings()).info.capabilities.count_source == "server"
