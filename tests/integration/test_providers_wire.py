"""The OpenAI adapters send the body they built through the SDK's ``post``: the same bytes as the typed call.

The typed ``create()`` walks every message through the SDK's parameter transform first; the adapters skip
that walk (lib/providers/openai_chat.py, ``post_stream``). These tests hold them to it from both sides:
- on the wire, against tests/support/fake_llm.py: the request line, every header (auth and content-length
  included) and the body are those of ``client.<api>.create(**reply.request)`` on the same client. The
  body is the same JSON in the same encoding, byte for byte but for the order of its top-level keys (the
  SDK writes them in its signature's order, we in the order we build them; JSON objects are unordered);
- in the SDK: a turn with a long history runs none of the transform's code (observed with a profile hook,
  nothing patched), so its cost no longer grows with a per-message walk inside the SDK.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import openai
import pytest

from lib.core import Settings
from lib.providers import ProviderOptions, get_provider

KEY = "sk-wire-SECRET456"
HISTORY = [{"role": "system", "content": "Be brief."},
           {"role": "user", "content": "What is a token? ünïcödé ✓ 中文", "id": "u1", "ts": 1},
           {"role": "assistant", "content": "A piece of text.", "meta": {"usage": {}}},
           {"role": "user", "content": [{"type": "text", "text": "And a context window?"}]}]
# Headers that legitimately differ between two requests (none expected today; kept explicit).
VARYING_HEADERS: frozenset[str] = frozenset()


def _provider(name: str, fake: Any) -> Any:
    settings = Settings(compatible_base_url=fake.openai_url)
    url = fake.anthropic_url if name == "anthropic" else fake.openai_url
    return get_provider(name, settings, api_key=KEY, base_url=url, max_retries=0)


def _typed_call(name: str, client: Any) -> Callable[..., Any]:
    return client.responses.create if name == "openai-responses" else client.chat.completions.create


def _wire(request: dict[str, Any]) -> tuple[str, str, dict[str, str], Any, list[int]]:
    """What must match: path, query, headers, the parsed body, and the body's bytes as a multiset (so the
    same escaping and separators; only the order of keys may differ)."""
    headers = {k: v for k, v in request["headers"].items() if k not in VARYING_HEADERS}
    return request["path"], request["query"], headers, request["body"], sorted(request["raw"])


CASES = [
    ("openai", ProviderOptions()),
    ("openai-compatible", ProviderOptions()),
    ("openai-responses", ProviderOptions()),
    ("openai-responses", ProviderOptions(truncation="auto", compaction_threshold=50_000)),
]


@pytest.mark.parametrize(("name", "options"), CASES)
def test_the_body_we_send_is_byte_for_byte_the_typed_calls(fake_llm, name, options):
    provider = _provider(name, fake_llm)
    reply = provider.stream(HISTORY, model="gpt-5.4-mini", max_tokens=77, options=options)
    assert "".join(reply)
    ours = fake_llm.requests[-1]
    for _ in _typed_call(name, provider.client)(**reply.request):
        pass
    typed = fake_llm.requests[-1]
    assert ours is not typed
    assert _wire(ours) == _wire(typed)
    assert ours["headers"]["authorization"] == f"Bearer {KEY}"


def test_a_chained_responses_turn_sends_the_typed_calls_bytes(fake_llm):
    provider = _provider("openai-responses", fake_llm)
    first = provider.stream(HISTORY, model="gpt-5.4-mini")
    "".join(first)
    chained = provider.stream(HISTORY, model="gpt-5.4-mini",
                              options=ProviderOptions(previous_response_id=first.response_id))
    assert "".join(chained)
    ours = fake_llm.requests[-1]
    for _ in provider.client.responses.create(**chained.request):
        pass
    assert ours["body"]["previous_response_id"] == first.response_id
    assert _wire(ours) == _wire(fake_llm.requests[-1])


def _transform_calls(run: Callable[[], object]) -> int:
    """How many Python calls ``run`` makes into an SDK's parameter transform (<sdk>/_utils/_transform.py)."""
    calls = 0

    def hook(frame: Any, event: str, _arg: Any) -> None:
        nonlocal calls
        if event == "call" and frame.f_code.co_filename.endswith("_transform.py"):
            calls += 1

    sys.setprofile(hook)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls


# Anthropic's messages.create sends its body as given (no transform in the installed SDK), so its adapter
# keeps the typed call; it is here so that a future SDK that starts walking the body is noticed.
@pytest.mark.parametrize("name", ["openai", "openai-responses", "anthropic"])
def test_a_long_history_is_not_walked_by_the_sdks_transform(fake_llm, name):
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"} for i in range(301)]
    provider = _provider(name, fake_llm)
    provider.client  # noqa: B018 - built outside the measured call
    model = "claude-sonnet-5" if name == "anthropic" else "gpt-5.4-mini"
    calls = _transform_calls(lambda: "".join(provider.stream(history, model=model)))
    # The typed create() made 15,000 (Chat) and 25,600 (Responses) calls here: 50 to 85 per message.
    assert calls < 50, f"{calls} calls into the SDK's parameter transform for one {name} turn"
    path = {"openai": "/chat/completions", "openai-responses": "/responses", "anthropic": "/messages"}[name]
    assert fake_llm.bodies(path)[-1]


def test_the_fake_model_answers_a_non_streaming_chat_completion(fake_llm):
    # The seed's route (bench/seed) calls the model without streaming; both answer with the same reply.
    client = openai.OpenAI(api_key=KEY, base_url=fake_llm.openai_url, max_retries=0)
    completion = client.chat.completions.create(model="llama3.2", messages=HISTORY[1:3])
    assert completion.choices[0].message.content == "Fake reply to 2 messages."
    assert completion.usage is not None and completion.usage.prompt_tokens == 20
