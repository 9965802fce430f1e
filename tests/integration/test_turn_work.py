"""How many passes over the history one POST /api/chat makes, counted by calls (never by the clock).

A turn at 2,000 messages pays for every pass over them: the per-message exact count is taken once (by the
trim, whose sum the record reuses), the payload is checked for API problems once (for the record, whose
list the response reuses), and turn numbers are worked out only for a provider that reads them.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

import lib.api
import lib.chat
import lib.context
import lib.tokens
from lib.core import Settings
from lib.services import store_handle
from lib.sessions import new_session_id
from lib.tokens import count_chat_tokens
from tests.support.api_inprocess import Post, inprocess_api

HISTORY = 400


class Calls:
    """Wraps a function and counts its calls."""

    def __init__(self, function: Any) -> None:
        self.function, self.calls = function, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.function(*args, **kwargs)


@pytest.fixture
def api(monkeypatch, fake_llm) -> Post:
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", fake_llm.openai_url)
    monkeypatch.setenv("PROVIDER_MAX_RETRIES", "0")
    return inprocess_api(monkeypatch)


def _count(monkeypatch, function: Any) -> Calls:
    """Count calls to ``function`` under every name a lib module bound it to."""
    counter = Calls(function)
    for name, module in list(sys.modules.items()):
        if name.startswith("lib.") and getattr(module, function.__name__, None) is function:
            monkeypatch.setattr(module, function.__name__, counter)
    return counter


@pytest.mark.parametrize("strategy", ["turns", "cache-aware"])
def test_one_api_turn_counts_and_checks_the_history_once(api, monkeypatch, fake_llm, strategy):
    store = store_handle(Settings.from_env()).store
    sid = new_session_id()
    store.append(sid, *[{"role": ("user", "assistant")[i % 2], "content": f"message {i}: " + "word " * (i % 9)}
                        for i in range(HISTORY)])
    counted = _count(monkeypatch, lib.tokens.message_tokens)
    checked = _count(monkeypatch, lib.context.payload_problems)
    numbered = _count(monkeypatch, lib.chat.turn_numbers)
    response = api("/chat", {"sessionId": sid, "message": "And now?", "provider": "openai-compatible",
                             "model": "llama3.2", "strategy": strategy, "budget": 1_000_000})
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert body["dropped"] == [] and len(body["sent"]) == HISTORY + 1
    # Once per payload message (the trim's pass), plus the two new messages of the turn at most.
    assert HISTORY + 1 <= counted.calls <= HISTORY + 3, counted.calls
    assert checked.calls == 1 and numbered.calls == 0
    sent = fake_llm.bodies("/chat/completions")[-1]["messages"]
    assert body["tokens"]["exact"] == count_chat_tokens(sent, "llama3.2")


def test_chat_completions_chunks_reach_the_adapter_as_parsed_json_not_typed_objects(api, monkeypatch, fake_llm):
    # The SDK would build a ChatCompletionChunk field by field for every chunk (about 0.1 ms each); the adapter
    # reads the parsed JSON, and the SDK still decodes the stream and raises its errors.
    from lib.providers.openai_chat import OpenAIChatProvider

    seen: list[type] = []
    handle = OpenAIChatProvider.handle_event

    def recording(self: OpenAIChatProvider, event: Any, reply: Any) -> str:
        seen.append(type(event))
        return handle(self, event, reply)

    monkeypatch.setattr(OpenAIChatProvider, "handle_event", recording)
    body = api("/chat", {"message": "Hello", "provider": "openai-compatible", "model": "llama3.2"}).json()
    assert body["reply"] and body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    assert len(seen) >= 2 and set(seen) == {dict}


def test_a_json_turn_is_one_handoff_to_the_turn_pool(api, monkeypatch):
    # Opening and finishing run in one call on the slot's thread: a round trip through the event loop between
    # them cost about 0.25 ms. A streamed turn opens first (its errors are answered before the stream begins).
    from lib.api.pool import TurnSlot

    submitted: list[str] = []
    submit = TurnSlot.submit

    def recording(self: TurnSlot, fn: Any, *args: Any) -> Any:
        submitted.append(fn.__name__)
        return submit(self, fn, *args)

    monkeypatch.setattr(TurnSlot, "submit", recording)
    assert api("/chat", {"message": "Hello"}).status_code == 200
    assert submitted == ["turn_rendered"]
    submitted.clear()
    assert api("/chat", {"message": "Hello", "stream": True}).status_code == 200
    assert submitted == ["begin_checked", "work"]
