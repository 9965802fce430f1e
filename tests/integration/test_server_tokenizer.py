"""'Count with this server': a local OpenAI-compatible server's own tokenizer (llama.cpp's /apply-template and
/tokenize), through the real provider against tests/support/fake_llm.py; and a clear error where there is none."""

from __future__ import annotations

import pytest

from lib.core import TOOL_SET
from lib.providers import CountUnavailable, ProviderOptions, ProviderUnreachable, get_provider
from lib.tokens import count_label
from tests.support.fake_llm import render_template
from tests.support.fake_llm import wire_provider as provider
from tests.support.redis_fixtures import free_port

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a token?", "id": "u1"}]


def test_the_server_counts_its_own_template_and_tokenizer(fake_llm):
    local = provider("openai-compatible", fake_llm, api_key=None)
    assert local.capabilities.count_endpoint and local.capabilities.count_source == "server"
    assert count_label(local.capabilities.count_source) == "exact (server tokenizer)"
    counted = local.count_tokens(MESSAGES, "llama3.2", options=ProviderOptions(tools=TOOL_SET))
    rendered, tokenized = fake_llm.requests[0], fake_llm.requests[1]
    assert rendered["path"] == "/apply-template" and tokenized["path"] == "/tokenize"  # beside /v1, not under
    wire = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a token?"}]
    assert rendered["body"]["messages"] == wire and rendered["body"]["tools"][0]["function"]["name"] == "get_weather"
    prompt = render_template(rendered["body"])
    assert tokenized["body"] == {"content": prompt, "add_special": True}
    assert counted == len(prompt.split()) + 1  # the fake's rule: one token per word, plus BOS


def test_a_server_without_tokenize_says_which_servers_have_it(fake_llm):
    fake_llm.fail_next(404)
    with pytest.raises(CountUnavailable, match="llama.cpp's server") as info:
        provider("openai-compatible", fake_llm, api_key=None).count_tokens(MESSAGES, "llama3.2")
    assert info.value.status == 404


def test_nothing_listening_is_unreachable_with_the_setting_to_change():
    local = get_provider("openai-compatible", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout=2)
    with pytest.raises(ProviderUnreachable, match="OPENAI_COMPATIBLE_BASE_URL"):
        local.count_tokens(MESSAGES, "llama3.2")
