"""The "summary" strategy (lib.context.compaction): client-side compaction into one stored, incremental summary."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.context import (
    CompactionResult,
    ContextOverflowError,
    ExtractiveSummarizer,
    ProviderSummarizer,
    Summary,
    compact_history,
    payload_problems,
)
from lib.tokens import count_chat_tokens
from lib.tokens import counting as tokens
from tests.support.ci import require
from tests.support.conversations import assert_partition, conversation, msg, turn

MODEL = "gpt-4o-mini"


@pytest.fixture(autouse=True)
def _encoding_present():
    require(tokens.encoding_available(MODEL), "o200k_base not loadable")


class RecordingSummarizer(ExtractiveSummarizer):
    """The real extractive summariser, recording what it was asked to summarise."""

    def __init__(self) -> None:
        self.calls: list[tuple[Summary | None, list]] = []

    def summarize(self, previous, turns, *, max_tokens, model):
        self.calls.append((previous, list(turns)))
        return super().summarize(previous, turns, max_tokens=max_tokens, model=model)


class FailingSummarizer:
    def summarize(self, previous, turns, *, max_tokens, model):
        raise ConnectionError("provider down")


def assert_valid_compaction(result: CompactionResult, messages: list[dict], budget: int) -> None:
    payload = result.payload
    summary_messages = [m for m in payload if m.get("meta", {}).get("summary")]
    assert len(summary_messages) == (1 if result.summary else 0)
    verbatim = [m for m in payload if not m.get("meta", {}).get("summary")]
    assert_partition(type("R", (), {"kept": verbatim, "dropped": result.trim.dropped})(), messages)
    assert result.trim.tokens_after == count_chat_tokens(payload, MODEL) <= budget
    assert payload_problems(payload) == []  # tool pairs whole, first conversational message is a user one
    system = [m for m in messages if m["role"] == "system"]
    assert all(m in payload for m in system), "the system prompt is always kept"
    rest = [m for m in payload if m["role"] != "system"]
    if result.summary:
        assert rest[0] is summary_messages[0] and rest[0]["content"].startswith(result.summary.label)
        assert payload.index(rest[0]) == len([m for m in payload[: payload.index(rest[0])] if m["role"] == "system"])
        rest = rest[1:]
    assert rest[0]["role"] == "user", "after the system prompt and the summary comes a user message"
    assert [m for m in messages if m["role"] == "user"][-1] in payload


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversation(), st.integers(60, 2500), st.floats(0.3, 1.0))
def test_summary_invariants(messages, budget, low_water):
    original = copy.deepcopy(messages)
    summarizer = RecordingSummarizer()
    try:
        result = compact_history(messages, budget, model=MODEL, summarizer=summarizer, low_water=low_water)
    except ContextOverflowError:
        assert messages == original
        return
    assert messages == original, "the stored history is never changed"
    assert_valid_compaction(result, messages, budget)
    for _previous, turns in summarizer.calls:
        assert all(m["role"] != "system" for _, m in turns), "the system prompt is never summarised"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(turn(), min_size=3, max_size=30), st.integers(300, 1500))
def test_a_session_compacts_incrementally(turns, budget):
    """Replay turn by turn as the chat does, storing the summary between turns."""
    system = [msg("system", "You are terse.")]
    history: list[dict] = []
    stored: Summary | None = None
    summarizer = RecordingSummarizer()
    for t in turns:
        history = history + t
        user_at = max(i for i, m in enumerate(history) if m["role"] == "user")
        candidates = system + history[: user_at + 1]
        calls = len(summarizer.calls)
        try:
            result = compact_history(candidates, budget, model=MODEL, summarizer=summarizer, summary=stored)
        except ContextOverflowError:
            continue
        assert_valid_compaction(result, candidates, budget)
        if len(summarizer.calls) > calls:
            previous, summarised = summarizer.calls[-1]
            assert previous == stored, "the previous summary is the input, not the whole history"
            first_new = stored.last_turn + 1 if stored else 1
            assert summarised[0][0] == first_new and summarised[-1][0] == result.summary.last_turn
        elif result.summary is not None:
            assert result.summary == stored, "reused until the payload fills again"
        if result.summary is not None:
            stored = Summary.from_json(result.summary.to_json())  # stored in session meta, read back


def long_conversation(turns: int = 12) -> list[dict]:
    messages = [msg("system", "Be brief.")]
    for i in range(turns):
        messages += [msg("user", f"Fact {i}: the code word is W{i}. " + "filler " * 40),
                     msg("assistant", f"Noted W{i}. " + "reply " * 40)]
    return messages + [msg("user", "What were the code words?")]


def test_compaction_labels_the_summary_and_keeps_early_facts():
    messages = long_conversation()
    result = compact_history(messages, 1200, model=MODEL, summarizer=ExtractiveSummarizer())
    summary = result.summary
    assert result.compacted and result.summary_requests == 1 and summary is not None
    assert summary.first_turn == 1 and summary.label == f"Summary of turns 1–{summary.last_turn} (compacted)"
    assert result.payload[1]["content"].startswith(f"Summary of turns 1–{summary.last_turn} (compacted): ")
    assert "W0" in result.payload[1]["content"]
    assert summary.model == "extractive (offline)" and summary.cost == 0.0 and summary.requests == 1
    assert any("compacted into a summary" in n for n in result.notes)
    assert result.trim.cut == summary.id and result.trim.strategy == "summary"
    # Next turn: reused, no new request.
    again = compact_history(messages + [msg("assistant", "ok"), msg("user", "and?")], 1200, model=MODEL,
                            summarizer=FailingSummarizer(), summary=summary)
    assert again.summary == summary and again.summary_requests == 0 and not again.compacted


def test_a_failed_summary_request_falls_back_to_dropping_with_a_note():
    messages = long_conversation()
    result = compact_history(messages, 900, model=MODEL, summarizer=FailingSummarizer())
    assert result.summary is None and result.summary_requests == 1 and not result.compacted
    assert "failed (ConnectionError: provider down)" in result.notes[0] and "dropped instead" in result.notes[0]
    assert_valid_compaction(result, messages, 900)


def test_no_room_for_a_summary_drops_turns_and_says_so():
    messages = long_conversation(3)
    floor = count_chat_tokens([messages[0], messages[-1]], MODEL)
    result = compact_history(messages, floor + 10, model=MODEL, summarizer=FailingSummarizer())
    assert result.summary is None and result.summary_requests == 0 and "No room" in result.notes[0]
    assert_valid_compaction(result, messages, floor + 10)


def test_provider_summarizer_makes_a_visible_request():
    from lib.providers import OfflineProvider

    provider = OfflineProvider(delay=0)
    summarizer = ProviderSummarizer(provider, model=provider.default_model)
    result = compact_history(long_conversation(), 900, model=MODEL, summarizer=summarizer)
    summary = result.summary
    assert summary is not None and summary.request is not None
    sent = summary.request["messages"]
    assert sent[0]["role"] == "system" and "Turns 1–" in sent[1]["content"] and "Be brief." not in sent[1]["content"]
    assert summary.input_tokens > 0 and summary.output_tokens > 0 and summary.model == provider.default_model


def test_a_summary_that_does_not_match_the_history_is_ignored():
    messages = long_conversation(2)
    stale = Summary("old", 1, 9, "extractive", 10)
    result = compact_history(messages, 5000, model=MODEL, summarizer=FailingSummarizer(), summary=stale)
    assert result.summary is None and "does not match" in result.notes[0]


def test_summary_json_round_trip_and_tolerant_reads():
    summary = Summary("text", 1, 8, "gpt-4o-mini", 42, 0.001, 0.002, 2, 300, 40, {"model": "x"}, 5.0)
    assert Summary.from_json(summary.to_json()) == summary
    for bad in (None, [], {"text": 1, "first_turn": 1, "last_turn": 2}, {"text": "t", "first_turn": 3,
                "last_turn": 2}, {"text": "t", "first_turn": True, "last_turn": 2}):
        assert Summary.from_json(bad) is None
    partial = Summary.from_json({"text": "t", "first_turn": 1, "last_turn": 2, "tokens": "many", "cost": "x"})
    assert partial is not None and partial.tokens == 0 and partial.cost is None
