"""The lesson "the model knows only what you re-send", end to end on a real Valkey store.

These run lib.chat.conversation with the offline model at a small budget: once a turn is trimmed, nothing of it may
reach a later payload, and the model must say it cannot see it any more. A fact the model repeated stays
visible while its reply is sent, and no longer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lib.chat import TurnRequest, TurnResult, run_turn
from lib.core import Message
from lib.providers import FORGOT_PHRASE, FORGOTTEN_ANSWER, ContextLengthExceeded, OfflineProvider, ProviderOptions

BUDGET = 120


@dataclass
class Sent:
    messages: list[dict[str, Any]]
    options: ProviderOptions


@dataclass
class RecordingOffline(OfflineProvider):
    """The real offline model, recording every payload and the options it came with."""

    calls: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(delay=0)

    def build_request(self, messages: Sequence[Message], *, model: str, max_tokens: int,
                      options: ProviderOptions) -> dict[str, Any]:
        self.calls.append(Sent([dict(m) for m in messages], options))
        return super().build_request(messages, model=model, max_tokens=max_tokens, options=options)


def play(store: Any, provider: RecordingOffline, texts: Sequence[str]) -> list[TurnResult]:
    results: list[TurnResult] = []
    session_id = None
    for text in texts:
        result = run_turn(store, provider, TurnRequest(user_text=text, session_id=session_id, budget=BUDGET,
                                                       strategy="turns"))
        assert result.ok, result.error
        session_id = result.session_id
        results.append(result)
    return results


def contents(messages: Sequence[Message]) -> list[str]:
    return [str(m.get("content")) for m in messages]


def test_the_chat_tells_the_offline_model_the_turn_numbers(redis_store):
    provider = RecordingOffline()
    play(redis_store, provider, ["Hello", "How are you?"])
    options = provider.calls[-1].options
    assert options.current_turn == 2
    assert options.turn_numbers == (1, 1, 2)
    assert options.context_window == BUDGET


def test_pineapple_is_forgotten_once_turn_one_is_trimmed(redis_store):
    provider = RecordingOffline()
    texts = ["Remember the word PINEAPPLE.", "Tell me about the weather in Lisbon today.",
             "Now describe a sunny beach at noon.", "Describe a quiet mountain lake.",
             "Tell me about the old town of Porto.", "Describe a long train ride north.", "What was the word?"]
    results = play(redis_store, provider, texts)
    payloads = [call.messages for call in provider.calls]
    assert len(payloads) == len(texts)

    trimmed_from = next(n for n, payload in enumerate(payloads) if texts[0] not in contents(payload))
    assert 0 < trimmed_from < len(texts) - 1, "turn 1 must be trimmed before the question"
    for payload in payloads[trimmed_from:]:
        assert not any("pineapple" in text.lower() for text in contents(payload)), payload

    first = results[1].text
    assert results[0].text == "Noted: the word is PINEAPPLE." and "PINEAPPLE" not in first
    answer = results[-1].text
    assert answer == f"{FORGOTTEN_ANSWER}: nothing in my payload says what the word is."
    report = results[-1].assistant_message["meta"]["report"]
    assert any(FORGOT_PHRASE in line for line in report)
    # The store is never trimmed: the word is still there, only the payload lost it.
    assert redis_store.get_history(results[-1].session_id)[0]["content"] == texts[0]


def test_a_fact_repeated_in_turn_three_survives_the_trimming_of_turn_one(redis_store):
    provider = RecordingOffline()
    texts = ["My locker code is 4417.", "Tell me about the weather in Lisbon today.",
             "Again: my locker code is 4417.", "Tell me about the old town of Porto.",
             "Describe a long train ride north.", "What is my locker code?"]
    results = play(redis_store, provider, texts)
    last = provider.calls[-1]
    assert texts[0] not in contents(last.messages) and texts[2] in contents(last.messages)
    assert results[-1].text == "Your locker code is 4417."
    report = results[-1].assistant_message["meta"]["report"]
    assert any(FORGOT_PHRASE in line for line in report)
    assert "My answer: recalled from turn 3 (assistant)." in report


def test_the_seed_strategy_visibly_breaks_and_the_failed_turn_is_recorded(redis_store):
    """The seed counts chars/4 of the content only, so its payload overruns the window the model checks."""
    provider = RecordingOffline()
    session_id = None
    for n in range(1, 13):
        result = run_turn(redis_store, provider, TurnRequest(
            user_text=f"Question {n}: tell me something about topic number {n}.", session_id=session_id,
            budget=BUDGET, strategy="seed", system_prompt="You are a tutor."))
        session_id = result.session_id
        if result.error is not None:
            break
    assert isinstance(result.error, ContextLengthExceeded), result.error
    assert result.error.limit == BUDGET and result.error.tokens > BUDGET
    history = redis_store.get_history(session_id)
    assert history[-1]["role"] == "user" and history[-1]["content"].startswith(f"Question {n}:")
    record = redis_store.get_turns(session_id)[-1]
    assert record["turn"] == n and record["error_type"] == "ContextLengthExceeded"
    assert f"{result.error.tokens} tokens" in record["error"]
