"""The "seed" strategy costs O(n log n) wherever a client can reach it: trim_history, POST /api/trim and
POST /api/chat. The literal quadratic loop runs only under its own name, on bounded input.

The work is measured by counting calls to the seed's per-message counter (``estimate_tokens``), never by
the clock: the literal loop calls it about n²/2 times, the fast one about n times.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

import lib.context.seed  # noqa: F401 - loaded before any patch, so the first one counts its calls too
import lib.tokens.counting
from lib.context import LITERAL_SEED_MAX_MESSAGES, LiteralSeedTooLarge, trim_history, trim_seed_literal
from lib.core import Settings
from lib.services import store_handle
from lib.sessions import new_session_id
from tests.support.api_inprocess import Post, inprocess_api

BIG = 16_000  # one-character messages: 0.48 MB of JSON, well inside the body limit


class TooMuchWork(Exception):
    pass


class EstimateCounter:
    """Counts calls to lib.tokens.counting.estimate_tokens under every name lib imported it as; raises past ``cap``,
    so a quadratic loop fails at once instead of running for a minute."""

    def __init__(self, cap: int) -> None:
        self.calls = 0
        self.cap = cap

    def __call__(self, text: Any) -> int:
        self.calls += 1
        if self.calls > self.cap:
            raise TooMuchWork(f"over {self.cap:,} calls to estimate_tokens: the work grows faster than the input")
        return REAL_ESTIMATE(text)


REAL_ESTIMATE = lib.tokens.counting.estimate_tokens


@pytest.fixture
def api(monkeypatch) -> Post:
    return inprocess_api(monkeypatch)


@pytest.fixture
def count_estimates(monkeypatch) -> Iterator[Any]:
    def install(cap: int) -> EstimateCounter:
        counter = EstimateCounter(cap)
        for name, module in list(sys.modules.items()):
            current = getattr(module, "estimate_tokens", None)
            if name.startswith("lib.") and (current is REAL_ESTIMATE or isinstance(current, EstimateCounter)):
                monkeypatch.setattr(module, "estimate_tokens", counter)
        return counter

    yield install
    # A module first imported while the patch was on took the counter as its own name: give it the real one.
    for name, module in list(sys.modules.items()):
        if name.startswith("lib.") and isinstance(getattr(module, "estimate_tokens", None), EstimateCounter):
            module.estimate_tokens = REAL_ESTIMATE  # type: ignore[attr-defined]


def one_char_messages(n: int) -> list[dict[str, str]]:
    return [{"role": ("user", "assistant")[i % 2], "content": "x"} for i in range(n)]


def varied_messages(n: int) -> list[dict[str, Any]]:
    """Roles, lengths and a tool pair that make the seed's cut land mid-turn, as a real history would."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}]
    for i in range(n - 1):
        role = ("user", "assistant", "assistant", "tool")[i % 4]
        message: dict[str, Any] = {"role": role, "content": "word " * (i % 13)}
        if role == "assistant" and i % 4 == 1:
            message["tool_calls"] = [{"id": f"c{i}", "type": "function"}]
        if role == "tool":
            message["tool_call_id"] = f"c{i - 2}"
        messages.append(message)
    return messages


def test_trim_history_seed_counts_each_message_once(count_estimates):
    messages = one_char_messages(BIG)
    counter = count_estimates(2 * BIG)
    result = trim_history(messages, 1, strategy="seed")
    assert BIG <= counter.calls <= 2 * BIG  # at least once each: the counter sees every call
    # Budget 1 is never met, so the seed stops once 4 messages remain: the first and the newest three.
    assert len(result.kept) == 4 and len(result.dropped) == BIG - 4
    assert result.kept == [messages[0], *messages[-3:]]


def test_api_trim_seed_on_16000_messages_is_linear_and_agrees_with_the_literal_loop(api, count_estimates):
    sample = varied_messages(600)
    total = sum(REAL_ESTIMATE(m["content"]) for m in sample)
    literals = {budget: trim_seed_literal(sample, budget) for budget in (1, total // 3, total // 2, total)}

    counter = count_estimates(2 * BIG)
    response = api("/trim", {"messages": one_char_messages(BIG), "budget": 1, "strategy": "seed"})
    assert response.status_code == 200, response.text[:500]
    assert BIG <= counter.calls <= 2 * BIG
    body = response.json()
    assert [item["index"] for item in body["kept"]] == [0, BIG - 3, BIG - 2, BIG - 1]
    assert body["tokensBefore"] == BIG and body["tokensAfter"] == 4

    for budget, literal in literals.items():
        counter = count_estimates(2 * len(sample))
        answer = api("/trim", {"messages": sample, "budget": budget, "strategy": "seed"}).json()
        assert len(sample) <= counter.calls <= 2 * len(sample)
        assert [item["index"] for item in answer["dropped"]] == list(range(1, len(literal.dropped) + 1))
        assert (answer["tokensBefore"], answer["tokensAfter"]) == (literal.tokens_before, literal.tokens_after)
        assert answer["problems"] == literal.notes


def test_api_chat_with_seed_on_a_10000_message_session_is_linear(api, count_estimates):
    settings = Settings.from_env()
    store = store_handle(settings).store
    sid = new_session_id()
    # Prose, where chars/4 over-counts, so the seed's payload also fits the offline model's exact window.
    store.append(sid, *[{"role": ("user", "assistant")[i % 2], "content": f"message {i} " + "word " * 20}
                        for i in range(9_998)])
    counter = count_estimates(10 * 10_000)
    response = api("/chat", {"sessionId": sid, "message": "Still there?", "provider": "offline",
                             "strategy": "seed", "budget": 2_000})
    assert response.status_code == 200, response.text[:500]
    assert 9_998 <= counter.calls <= 10 * 10_000
    body = response.json()
    assert body["turn"] == 1 and len(body["dropped"]) > 9_000


def test_the_literal_loop_refuses_input_over_its_cap_with_the_numbers():
    messages = one_char_messages(LITERAL_SEED_MAX_MESSAGES + 1)
    with pytest.raises(LiteralSeedTooLarge) as refused:
        trim_seed_literal(messages, 1)
    text = str(refused.value)
    assert f"{LITERAL_SEED_MAX_MESSAGES:,}" in text and f"{LITERAL_SEED_MAX_MESSAGES + 1:,}" in text
    assert 'strategy="seed"' in text
    capped = one_char_messages(LITERAL_SEED_MAX_MESSAGES)
    assert trim_seed_literal(capped, 1) == trim_history(capped, 1, strategy="seed")
