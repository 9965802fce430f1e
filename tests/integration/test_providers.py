"""The real openai and anthropic SDKs against tests/support/fake_llm.py: exact request bodies, usage, every error."""

from __future__ import annotations

import json

import pytest

from lib.core import Settings
from lib.providers import (
    AuthenticationFailed,
    BadRequest,
    MalformedStream,
    MissingKeyError,
    ProviderOptions,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
    default_provider_name,
    get_provider,
    list_providers,
)
from tests.support.fake_llm import TEST_KEY as KEY
from tests.support.fake_llm import wire_provider as provider
from tests.support.redis_fixtures import free_port

SYSTEM = {"role": "system", "content": "Be brief."}




def drain(reply) -> str:
    return "".join(reply)


def test_chat_completions_resends_the_whole_history(fake_llm):
    messages = [SYSTEM, {"role": "user", "content": "What is a token?", "id": "u1", "ts": 1},
                {"role": "assistant", "content": "Fake reply to 2 messages.", "meta": {"usage": {}}},
                {"role": "user", "content": "And a context window?"}]
    reply = provider("openai", fake_llm).stream(messages, model="gpt-5.4-mini")
    assert drain(reply) == "Fake reply to 4 messages."
    body = fake_llm.bodies("/chat/completions")[0]
    assert body == {
        "model": "gpt-5.4-mini",
        "messages": [SYSTEM, {"role": "user", "content": "What is a token?"},
                     {"role": "assistant", "content": "Fake reply to 2 messages."},
                     {"role": "user", "content": "And a context window?"}],
        "max_completion_tokens": 1024, "stream": True, "stream_options": {"include_usage": True},
    }
    assert reply.request == body  # the payload view shows exactly what went over the wire
    assert fake_llm.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"


def test_chat_completions_usage_and_timings(fake_llm):
    reply = provider("openai", fake_llm).stream([SYSTEM, {"role": "user", "content": "hi"}], model="gpt-4o")
    assert drain(reply) == "Fake reply to 2 messages." == reply.text
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cache_read_tokens) == (20, 5, 3)
    assert reply.usage.prompt_total == 20  # OpenAI's prompt_tokens already include cached tokens
    assert 0 <= reply.timings.first_token_s <= reply.timings.total_s


def test_compatible_server_uses_max_tokens_and_needs_no_key(fake_llm):
    local = get_provider("openai-compatible", Settings(compatible_base_url=fake_llm.openai_url), max_retries=0)
    assert local.info.configured
    reply = local.stream([{"role": "user", "content": "hi"}], model="llama3.2", max_tokens=99)
    drain(reply)
    assert fake_llm.bodies("/chat/completions")[0]["max_tokens"] == 99


def test_anthropic_gets_top_level_system_and_alternating_merged_roles(fake_llm):
    messages = [SYSTEM, {"role": "assistant", "content": "left over from a trim"},
                {"role": "user", "content": "one"}, {"role": "user", "content": "two"},
                {"role": "assistant", "content": "reply"}, {"role": "user", "content": "three"}]
    reply = provider("anthropic", fake_llm).stream(messages, model="claude-sonnet-5-5", max_tokens=300)
    assert drain(reply) == "Fake reply to 5 messages."
    body = fake_llm.bodies("/messages")[0]
    assert body["system"] == "Be brief." and body["max_tokens"] == 300 and body["stream"] is True
    assert body["messages"] == [
        {"role": "user", "content": "(earlier messages were trimmed)"},
        {"role": "assistant", "content": "left over from a trim"},
        {"role": "user", "content": "one\n\ntwo"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": "three"},
    ]
    assert reply.request == body
    headers = fake_llm.requests[0]["headers"]
    assert KEY in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    usage = reply.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (50, 5, 3, 7)
    assert usage.prompt_total == 60  # Anthropic's exact prompt size: input + cache reads + cache writes


def test_anthropic_prompt_caching_marks_the_resent_history(fake_llm):
    messages = [SYSTEM, {"role": "user", "content": "one"}, {"role": "assistant", "content": "reply"},
                {"role": "user", "content": "two"}]
    drain(provider("anthropic", fake_llm, prompt_caching=True).stream(messages, model="claude-haiku-4-5"))
    body = fake_llm.bodies("/messages")[0]
    cache = {"type": "ephemeral", "ttl": "5m"}
    assert body["system"] == [{"type": "text", "text": "Be brief.", "cache_control": cache}]
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "text", "text": "reply", "cache_control": {"type": "ephemeral", "ttl": "5m"}}]}
    assert body["messages"][2] == {"role": "user", "content": "two"}


def test_responses_sends_only_the_new_input_with_previous_response_id(fake_llm):
    responses = provider("openai-responses", fake_llm)
    history = [SYSTEM, {"role": "user", "content": "Remember the number 7."}]
    first = responses.stream(history, model="gpt-5.4-mini")
    drain(first)
    history += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "Which number?"}]
    second = responses.stream(history, model="gpt-5.4-mini",
                              options=ProviderOptions(previous_response_id=first.response_id))
    drain(second)
    turn1, turn2 = fake_llm.bodies("/responses")
    assert turn1 == {"model": "gpt-5.4-mini", "input": [{"role": "user", "content": "Remember the number 7."}],
                     "instructions": "Be brief.", "max_output_tokens": 1024, "stream": True}
    assert turn2 == {"model": "gpt-5.4-mini", "input": [{"role": "user", "content": "Which number?"}],
                     "instructions": "Be brief.", "previous_response_id": "resp_1",
                     "max_output_tokens": 1024, "stream": True}
    assert second.request == turn2 and second.response_id == "resp_2"
    assert second.usage.cache_read_tokens == 3


ERRORS = [
    (401, AuthenticationFailed, "rejected the API key"),
    (429, RateLimited, "Retry after 7 s"),
    (500, ProviderServerError, "try again"),
    (400, BadRequest, "Invalid model name"),
]


@pytest.mark.parametrize("name", ["openai", "anthropic", "openai-responses"])
@pytest.mark.parametrize(("status", "error", "text"), ERRORS)
def test_http_errors_become_actionable_provider_errors(fake_llm, name, status, error, text):
    fake_llm.fail_next(status, retry_after=7 if status == 429 else None)
    reply = provider(name, fake_llm).stream([{"role": "user", "content": "hi"}], model="m")
    with pytest.raises(error, match=text) as raised:
        drain(reply)
    assert raised.value.status == status
    assert KEY not in str(raised.value)
    if status == 401:
        assert ("ANTHROPIC_API_KEY" if name == "anthropic" else "OPENAI_API_KEY") in str(raised.value)


@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_timeout_unreachable_and_malformed_stream(fake_llm, name):
    fake_llm.fail_next("hang", seconds=2)
    with pytest.raises(ProviderTimeout, match="did not answer within 0.5 s"):
        drain(provider(name, fake_llm, timeout=0.5).stream([{"role": "user", "content": "hi"}], model="m"))

    fake_llm.fail_next("malformed")
    with pytest.raises(MalformedStream, match="could not be parsed"):
        drain(provider(name, fake_llm).stream([{"role": "user", "content": "hi"}], model="m"))

    closed = f"http://127.0.0.1:{free_port()}" + ("" if name == "anthropic" else "/v1")
    lost = get_provider(name, Settings(), api_key=KEY, base_url=closed, max_retries=0)
    with pytest.raises(ProviderUnreachable, match=f"Cannot connect .* at {closed}"):
        drain(lost.stream([{"role": "user", "content": "hi"}], model="m"))


@pytest.mark.parametrize(("name", "env_var"), [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY"),
                                               ("openai-responses", "OPENAI_API_KEY")])
def test_missing_key_names_the_variable_and_sends_nothing(fake_llm, name, env_var):
    url = fake_llm.anthropic_url if name == "anthropic" else fake_llm.openai_url
    keyless = get_provider(name, Settings(), base_url=url)
    assert not keyless.info.configured and env_var in keyless.info.hint
    with pytest.raises(MissingKeyError, match=f"Set {env_var} in your environment or add {env_var} to "
                                              r"\.streamlit/secrets\.toml"):
        keyless.stream([{"role": "user", "content": "hi"}], model="m")
    assert fake_llm.requests == []


@pytest.mark.parametrize("name", ["openai", "anthropic", "openai-responses"])
def test_the_key_never_appears_in_the_request_or_repr(fake_llm, name):
    prov = provider(name, fake_llm)
    reply = prov.stream([SYSTEM, {"role": "user", "content": "hi"}], model="m")
    drain(reply)
    assert KEY not in json.dumps(reply.request) and KEY not in repr(prov) and KEY not in repr(prov.info)
    assert KEY not in repr(Settings(openai_api_key=KEY, anthropic_api_key=KEY))


def test_provider_list_and_default():
    infos = {info.name: info for info in list_providers(Settings(anthropic_api_key=KEY))}
    assert list(infos) == ["offline", "openai", "openai-responses", "anthropic", "gemini", "openai-compatible"]
    assert infos["offline"].configured and infos["anthropic"].configured and not infos["openai"].configured
    assert infos["openai"].default_model == "gpt-5.4-mini"
    assert default_provider_name(Settings(openai_api_key=KEY)) == "offline"
    assert default_provider_name(Settings(default_provider="anthropic")) == "anthropic"
    with pytest.raises(ValueError, match="Unknown provider 'nope'. Choose one of: offline"):
        get_provider("nope", Settings())
