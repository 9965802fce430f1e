"""Gemini through the real google-genai SDK against the fake wire server: the body it sends, streaming,
usage, implicit and explicit caches (with the storage price), count_tokens, and the error family."""

from __future__ import annotations

import json

import pytest

from lib.core import Settings, default_table, estimate_cost, priced, storage_cost
from lib.providers import (
    AuthenticationFailed,
    MalformedStream,
    MissingKeyError,
    ProviderOptions,
    ProviderServerError,
    RateLimited,
    Refused,
    get_provider,
)
from tests.support.fake_llm_events import CACHED, GEMINI_THOUGHTS, OUTPUT, PER_ITEM, PER_SYSTEM

KEY = "AIzaSyTEST-0123456789abcdefghijklmnopqrs"  # the shape of a Google API key
MODEL = "gemini-2.5-flash"  # 2,048-token minimum for caches
SYSTEM = {"role": "system", "content": "Be brief."}
HISTORY = [SYSTEM, {"role": "user", "content": "one"}, {"role": "assistant", "content": "reply one"},
           {"role": "user", "content": "two"}]
LONG = "The history is re-sent on every turn. " * 400  # about 3,200 tokens: above the 2,048 minimum
STREAM = ":streamGenerateContent"


def gemini(fake, **options):
    return get_provider("gemini", Settings(), api_key=KEY, base_url=fake.gemini_url, max_retries=0, **options)


def run(provider, messages, **kwargs):
    reply = provider.stream(messages, model=kwargs.pop("model", MODEL), **kwargs)
    deltas = list(reply)
    return reply, deltas


def test_history_goes_out_as_contents_with_roles_user_and_model_and_a_system_instruction(fake_llm):
    reply, _ = run(gemini(fake_llm), HISTORY, max_tokens=200)
    [sent] = [r for r in fake_llm.requests if r["path"].endswith(STREAM)]
    assert sent["path"] == f"/v1/models/{MODEL}{STREAM}" and sent["query"] == "alt=sse"
    assert sent["headers"]["x-goog-api-key"] == KEY
    assert sent["body"] == {
        "contents": [{"parts": [{"text": "one"}], "role": "user"}, {"parts": [{"text": "reply one"}], "role": "model"},
                     {"parts": [{"text": "two"}], "role": "user"}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 200},
    }
    assert reply.request == sent["body"]  # the body shown is the body sent (the model is in the URL)


def test_consecutive_roles_merge_and_a_trimmed_history_opens_with_the_user(fake_llm):
    messages = [{"role": "assistant", "content": "left over"}, {"role": "user", "content": "a"},
                {"role": "user", "content": "b"}]
    reply, _ = run(gemini(fake_llm), messages)
    assert [(c["role"], [p["text"] for p in c["parts"]]) for c in reply.request["contents"]] == [
        ("user", ["(earlier messages were trimmed)"]), ("model", ["left over"]), ("user", ["a", "b"])]
    assert "systemInstruction" not in reply.request


def test_the_reply_streams_word_by_word_without_the_thought_summary(fake_llm):
    reply, deltas = run(gemini(fake_llm), HISTORY)
    assert deltas == ["Fake ", "reply ", "to ", "3 ", "messages."]
    assert reply.text == "Fake reply to 3 messages." and reply.stop_reason == "STOP"
    assert reply.response_id == "gemini_resp_1"
    assert reply.timings.first_token_s is not None and reply.timings.total_s >= reply.timings.first_token_s


def test_usage_metadata_maps_into_the_four_numbers_with_thinking_as_output(fake_llm):
    reply, _ = run(gemini(fake_llm), HISTORY)
    usage = reply.usage
    prompt = 3 * PER_ITEM + PER_SYSTEM
    # promptTokenCount includes the (implicitly) cached tokens; thoughtsTokenCount is billed as output.
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (prompt, CACHED, 0)
    assert usage.cache_in_input and usage.prompt_total == prompt and usage.uncached_input == prompt - CACHED
    assert (usage.output_tokens, usage.reasoning_tokens) == (OUTPUT + GEMINI_THOUGHTS, GEMINI_THOUGHTS)
    assert (usage.explicit_cache_tokens, usage.explicit_cache_hours) == (0, 0.0)
    price = default_table()[MODEL]
    expected = ((prompt - CACHED) * price.input + CACHED * price.cache_read
                + (OUTPUT + GEMINI_THOUGHTS) * price.output) / 1_000_000
    cost, source = priced(MODEL, usage)
    assert cost == pytest.approx(expected) and source == f"price of {MODEL}"


def test_odd_usage_figures_read_as_not_reported_and_wrong_types_as_a_malformed_answer(fake_llm):
    fake_llm.fail_next("usage", usage={"promptTokenCount": 10**12, "thoughtsTokenCount": -1})
    reply, _ = run(gemini(fake_llm), HISTORY)
    assert reply.usage.input_tokens is None and reply.usage.reasoning_tokens is None
    assert reply.usage.output_tokens == OUTPUT
    fake_llm.fail_next("usage", usage={"promptTokenCount": "lots"})
    with pytest.raises(MalformedStream, match="usage_metadata.promptTokenCount"):
        run(gemini(fake_llm), HISTORY)


def long_history(turns: int) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = [{"role": "system", "content": "Answer from the document. " + LONG}]
    for n in range(turns):
        messages += [{"role": "user", "content": f"question {n}"}, {"role": "assistant", "content": f"answer {n}"}]
    return [*messages, {"role": "user", "content": "the new question"}]


def test_an_explicit_cache_holds_the_stable_prefix_and_its_storage_is_priced(fake_llm):
    options = ProviderOptions(prompt_caching=True, cache_ttl="1h")
    messages = long_history(2)
    reply, deltas = run(gemini(fake_llm), messages, options=options)
    [create] = [r for r in fake_llm.requests if r["path"].endswith("/cachedContents")]
    assert create["path"] == "/v1/cachedContents"
    body = create["body"]
    assert body["model"] == f"models/{MODEL}" and body["ttl"] == "3600s"
    assert body["systemInstruction"] == {"parts": [{"text": messages[0]["content"]}]}
    # The stable prefix: every message before the new one.
    assert [c["parts"][0]["text"] for c in body["contents"]] == ["question 0", "answer 0", "question 1", "answer 1"]
    [sent] = fake_llm.bodies(STREAM)
    name = next(iter(fake_llm.gemini_caches))
    assert sent == {"contents": [{"parts": [{"text": "the new question"}], "role": "user"}],
                    "generationConfig": {"maxOutputTokens": 1024}, "cachedContent": name}
    assert reply.request == sent and "systemInstruction" not in sent
    held = fake_llm.gemini_caches[name]
    assert held == 4 * PER_ITEM + PER_SYSTEM
    usage = reply.usage
    assert (usage.input_tokens, usage.cache_read_tokens) == (PER_ITEM + held, held)
    assert (usage.explicit_cache_tokens, usage.explicit_cache_hours) == (held, 1.0)
    assert "created a cache" in json.loads(usage.diagnostics)["explicit_cache"]
    # The storage figure, from the price table: tokens x hours x the per-hour storage price.
    price = default_table()[MODEL]
    assert storage_cost(MODEL, held, 1.0) == pytest.approx(held * price.cache_storage / 1_000_000)
    without_storage = estimate_cost(MODEL, input_tokens=usage.uncached_input, output_tokens=usage.output_tokens,
                                    cache_read_tokens=held)
    creation = held * price.input / 1_000_000
    assert priced(MODEL, usage)[0] == pytest.approx(without_storage + creation + storage_cost(MODEL, held, 1.0))


def test_the_cache_is_reused_while_the_history_added_since_stays_below_the_minimum(fake_llm):
    provider = gemini(fake_llm)
    options = ProviderOptions(prompt_caching=True, cache_ttl="5m")
    run(provider, long_history(1), options=options)
    reply, _ = run(provider, long_history(2), options=options)
    assert len([r for r in fake_llm.requests if r["path"].endswith("/cachedContents")]) == 1
    name = next(iter(fake_llm.gemini_caches))
    second = fake_llm.bodies(STREAM)[-1]
    assert second["cachedContent"] == name
    # The cache holds question 0 / answer 0; the rest of the history is sent after it.
    assert [c["parts"][0]["text"] for c in second["contents"]] == [
        "question 1", "answer 1", "the new question"]
    assert reply.usage.explicit_cache_tokens == 0  # nothing created, so no new storage to pay
    assert reply.usage.cache_read_tokens == fake_llm.gemini_caches[name]


def test_a_prefix_below_the_models_minimum_is_not_cached(fake_llm):
    reply, _ = run(gemini(fake_llm), HISTORY, options=ProviderOptions(prompt_caching=True))
    assert not [r for r in fake_llm.requests if r["path"].endswith("/cachedContents")]
    assert "cachedContent" not in reply.request and reply.request["systemInstruction"]
    assert "below the model's minimum of 2,048" in json.loads(reply.usage.diagnostics)["explicit_cache"]


def test_without_a_storage_price_the_cost_is_unknown_rather_than_too_low():
    table = dict(default_table())
    table[MODEL] = table[MODEL].__class__(MODEL, 0.30, 2.50, 0.03)
    assert estimate_cost(MODEL, input_tokens=10, explicit_cache_tokens=100, explicit_cache_hours=1, table=table) is None
    assert storage_cost(MODEL, 100, 1.0, table=table) is None


def test_count_with_google_counts_the_whole_request_including_the_system_instruction(fake_llm):
    tokens = gemini(fake_llm).count_tokens(HISTORY, MODEL)
    assert tokens == 3 * PER_ITEM + PER_SYSTEM
    [sent] = [r for r in fake_llm.requests if r["path"].endswith(":countTokens")]
    assert sent["path"] == f"/v1/models/{MODEL}:countTokens"
    request = sent["body"]["generateContentRequest"]
    assert request["model"] == f"models/{MODEL}" and request["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in request["contents"]] == ["user", "model", "user"]


def test_count_without_a_system_prompt_sends_the_contents(fake_llm):
    assert gemini(fake_llm).count_tokens(HISTORY[1:], MODEL) == 3 * PER_ITEM
    [sent] = [r for r in fake_llm.requests if r["path"].endswith(":countTokens")]
    assert "generateContentRequest" not in sent["body"] and len(sent["body"]["contents"]) == 3


def test_a_401_is_an_authentication_error_naming_the_variable_with_the_key_masked(fake_llm):
    fake_llm.fail_next(401, message=f"API key {KEY} is not valid.")
    with pytest.raises(AuthenticationFailed) as raised:
        run(gemini(fake_llm), HISTORY)
    assert raised.value.status == 401 and "GEMINI_API_KEY" in str(raised.value)
    assert KEY not in str(raised.value) and "API key *** is not valid" in str(raised.value)


def test_a_bad_key_answered_with_400_api_key_invalid_is_an_authentication_error(fake_llm):
    fake_llm.fail_next(400, message="API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID")
    with pytest.raises(AuthenticationFailed, match="HTTP 400: API key not valid"):
        run(gemini(fake_llm), HISTORY)


def test_a_429_is_rate_limited_with_the_retry_delay_from_retry_info(fake_llm):
    fake_llm.fail_next(429, retry_after=7, message="Resource has been exhausted (e.g. check quota).")
    with pytest.raises(RateLimited, match=r"HTTP 429: Resource has been exhausted.*Retry after 7 s"):
        run(gemini(fake_llm), HISTORY)


def test_a_500_is_a_server_error_and_a_failed_cache_creation_too(fake_llm):
    fake_llm.fail_next(500)
    with pytest.raises(ProviderServerError, match="HTTP 500"):
        run(gemini(fake_llm), HISTORY)
    fake_llm.fail_next(500)  # now the caches.create call
    with pytest.raises(ProviderServerError, match="HTTP 500"):
        run(gemini(fake_llm), long_history(1), options=ProviderOptions(prompt_caching=True))
    assert fake_llm.requests[-1]["path"].endswith("/cachedContents")  # nothing generated after it failed


def test_a_count_failure_is_translated_too(fake_llm):
    fake_llm.fail_next(429, retry_after=3)
    with pytest.raises(RateLimited):
        gemini(fake_llm).count_tokens(HISTORY, MODEL)


def test_a_safety_stop_is_a_refusal(fake_llm):
    fake_llm.fail_next("refusal")
    with pytest.raises(Refused, match="SAFETY"):
        run(gemini(fake_llm), HISTORY)


def test_a_missing_key_names_the_variable_before_anything_is_sent(fake_llm):
    provider = get_provider("gemini", Settings(gemini_base_url=fake_llm.gemini_url))
    assert not provider.configured
    with pytest.raises(MissingKeyError, match="Set GEMINI_API_KEY") as raised:
        provider.stream(HISTORY, model=MODEL)
    assert raised.value.env_var == "GEMINI_API_KEY" and fake_llm.requests == []


def test_keys_and_base_url_come_from_the_environment_or_secrets():
    from_env = Settings.from_env({"GEMINI_API_KEY": "gemini-key-1", "GEMINI_BASE_URL": "http://127.0.0.1:9/"})
    assert (from_env.gemini_api_key, from_env.gemini_key_variable, from_env.gemini_base_url) == (
        "gemini-key-1", "GEMINI_API_KEY", "http://127.0.0.1:9/")
    # As the SDK does, GOOGLE_API_KEY wins when both are set; errors then name it.
    both = Settings.from_env({"GEMINI_API_KEY": "gemini-key-1"}, secrets={"GOOGLE_API_KEY": "google-key-2"})
    assert (both.gemini_api_key, both.gemini_key_variable) == ("google-key-2", "GOOGLE_API_KEY")
    assert get_provider("gemini", both).env_var == "GOOGLE_API_KEY"
    assert "google-key-2" in both.secret_values() and "google-key-2" not in repr(both)


def test_listing_providers_does_not_import_the_sdk():
    import subprocess
    import sys

    code = ("import sys; from lib.providers import list_providers; "
            "names = [i.name for i in list_providers()]; assert 'gemini' in names, names; "
            "print('google.genai' in sys.modules)")
    from tests.support.app_server import ROOT

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_post_api_chat_with_provider_gemini_uses_the_default_model(fake_llm, monkeypatch):
    from lib.providers import GeminiProvider
    from tests.support.api_inprocess import inprocess_api

    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_BASE_URL", fake_llm.gemini_url)
    monkeypatch.setenv("PROVIDER_MAX_RETRIES", "0")
    post = inprocess_api(monkeypatch)
    first = post("/chat", {"message": "Hello", "provider": "gemini", "system": "Be brief."})
    assert first.status_code == 200, first.text
    body = first.json()
    second = post("/chat", {"message": "And now?", "provider": "gemini", "sessionId": body["sessionId"]}).json()
    [_, sent] = [r for r in fake_llm.requests if r["path"].endswith(STREAM)]
    assert sent["path"] == f"/v1/models/{GeminiProvider.default_model}{STREAM}"
    assert [c["role"] for c in sent["body"]["contents"]] == ["user", "model", "user"]
    assert second["reply"] == "Fake reply to 3 messages." and second["usage"]["reasoning_tokens"] == GEMINI_THOUGHTS
    assert second["cost"] is not None and KEY not in json.dumps(second)


def test_a_google_key_shape_is_masked_even_when_never_registered():
    from lib.core import mask_secrets

    other = "AIzaSyNEVER-REGISTERED-0123456789abcdef"
    assert len(other) == 39
    assert mask_secrets(f"key={other}&x=1") == "key=***&x=1"
