"""The "summary" strategy inside a chat turn, on a MemoryStore and a real Valkey (the ``store`` fixture).

The summary is a session artefact in the meta, reused until the payload fills again, incremental, and never
a change to the stored history; a failed summary request drops turns instead, with a note in the record.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.chat import META_SUMMARY, TurnRequest, run_turn, session_summaries, stored_summary, turn_numbers
from lib.context import SUMMARY_INSTRUCTION, ExtractiveSummarizer, Summary
from lib.core import TurnRecord, Usage
from lib.providers import Capabilities, OfflineProvider, Provider, ProviderOptions, Reply, get_provider
from lib.sessions import MemoryStore
from lib.tokens import count_chat_tokens

SYSTEM = "Be brief."
BUDGET = 900
# The offline model answers in a few tokens ("Noted: ..."), so its conversations fill a smaller budget.
OFFLINE_BUDGET = 300


class RecordingSummarizer(ExtractiveSummarizer):
    """The offline summariser, recording what each compaction was asked to summarise."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[tuple[Summary | None, list[int]]] = []
        self.fail = fail

    def summarize(self, previous, turns, *, max_tokens, model):
        self.calls.append((previous, sorted({t for t, _ in turns})))
        if self.fail:
            raise TimeoutError("the summary request timed out")
        return super().summarize(previous, turns, max_tokens=max_tokens, model=model)


def fact(n: int) -> str:
    return f"Fact {n}: the code word for turn {n} is word{n}. Please remember it."


def chat(store, provider, turns: int, *, sid: str | None = None, first: int = 1, **options: Any) -> list[Any]:
    budget = options.pop("budget", OFFLINE_BUDGET if isinstance(provider, OfflineProvider) else BUDGET)
    results = []
    for n in range(first, first + turns):
        result = run_turn(store, provider, TurnRequest(user_text=fact(n), session_id=sid, strategy="summary",
                                                       budget=budget, system_prompt=SYSTEM, **options))
        assert result.ok, result.error
        sid = result.session_id
        results.append(result)
    return results


@pytest.fixture
def offline() -> Provider:
    return get_provider("offline", delay=0)


def test_summary_is_stored_reused_then_compacted_incrementally(store, offline):
    summarizer = RecordingSummarizer()
    results = chat(store, offline, 20, summarizer=summarizer)
    sid = results[0].session_id
    records = [TurnRecord.from_json(r) for r in store.get_turns(sid)]
    # What is stored is what the turn returned (usage aside: zero cache figures are not stored).
    assert [replace(r, usage=None) for r in records] == [replace(res.record, usage=None) for res in results]
    new = [r for r in records if r.summary_new]
    assert len(new) >= 2, [r.summary_id for r in records]
    first, second = new[0], new[1]
    last = first.summary_last_turn
    assert last is not None and last >= 3
    assert first.summary_id == f"summary-1-{last}" and first.summary_first_turn == 1
    assert first.notes == (f"Turns 1–{last} compacted into a summary ({first.summary_tokens} tokens).",)
    assert first.summary_requests == 1 and first.summary_cost == 0.0  # extractive: free, and says so
    # Reused, not rewritten, on the turns in between.
    between = records[first.turn:second.turn - 1]
    assert between and all(r.summary_id == first.summary_id and not r.summary_new for r in between)
    assert all(r.summary_requests == 0 for r in between)
    # Incremental: the second compaction got the first summary and only the newly dropped turns.
    assert len(summarizer.calls) == len(new)  # one request per compaction, none on the turns between
    (previous, turns_1), (previous_2, turns_2) = summarizer.calls[:2]
    assert previous is None and turns_1 == list(range(1, last + 1))
    assert previous_2 is not None and previous_2.id == first.summary_id and turns_2[0] == last + 1
    assert second.summary_first_turn == 1 and second.summary_last_turn == turns_2[-1]
    for previous_n, turns_n in summarizer.calls[1:]:
        assert previous_n is not None and turns_n[0] == previous_n.last_turn + 1  # never the whole history again
    meta = store.get_meta(sid)
    current = stored_summary(meta)
    assert current is not None and current.id == records[-1].summary_id and current.requests == len(new)
    assert set(session_summaries(meta)) == {r.summary_id for r in new}  # old records still resolve
    assert json.loads(meta[META_SUMMARY])["text"] == current.text


def test_the_payload_sends_the_summary_after_the_system_prompt_and_the_model_sees_it(store, offline):
    results = chat(store, offline, 11)
    last = results[-1]
    summary = last.summary
    assert summary is not None and last.record.summary_id == summary.id
    payload = last.payload
    assert payload[0] == {"role": "system", "content": SYSTEM}
    assert payload[1]["content"].startswith(f"Summary of turns {summary.first_turn}–{summary.last_turn}")
    assert payload[2]["role"] == "user" and payload[-1]["content"] == fact(11)
    report = (last.assistant_message or {})["meta"]["report"]
    assert any(f"I can see a summary of turns {summary.first_turn}–{summary.last_turn}" in line for line in report)
    assert "summary" not in last.text  # the report is kept with the reply, never in it
    assert last.record.exact == count_chat_tokens(payload, offline.default_model) <= OFFLINE_BUDGET
    # The record: the summary is one range of its own, then the suffix of the history and the message.
    assert last.record.sent[0] == (summary.id, summary.id) and last.record.sent_count == len(payload)


def test_turn_numbers_give_the_summary_turn_zero_and_do_not_count_it():
    summary = Summary("T1 user: hello.", 1, 3, "extractive", 20).message()
    messages = [{"role": "system", "content": SYSTEM}, summary, {"id": "u4", "role": "user", "content": "q"},
                {"id": "a4", "role": "assistant", "content": "a"}, {"id": "u5", "role": "user", "content": "q"}]
    assert turn_numbers(messages, 5) == {summary["id"]: 0, "u4": 4, "a4": 4, "u5": 5}


def test_offline_model_is_told_turn_zero_for_the_summary(memory_store):
    seen: list[ProviderOptions] = []

    class Spy(type(get_provider("offline", delay=0))):  # the real offline model, recording its options
        def build_request(self, messages, *, model, max_tokens, options):
            seen.append(options)
            return super().build_request(messages, model=model, max_tokens=max_tokens, options=options)

    results = chat(memory_store, Spy(delay=0), 11)
    numbers = seen[-1].turn_numbers
    assert numbers[0] == 0 and numbers[1] == 0  # system prompt, summary
    assert numbers[2] == results[-1].summary.last_turn + 1 and numbers[-1] == 11


def test_a_failed_summary_request_drops_turns_with_a_note_and_never_fails_the_turn(store, offline):
    results = chat(store, offline, 14, summarizer=RecordingSummarizer(fail=True))
    record = TurnRecord.from_json(store.get_turns(results[-1].session_id)[-1])
    assert results[-1].ok and record.summary_id is None and record.dropped_count > 0
    assert record.summary_requests == 1 and record.summary_cost is None
    assert any("The summary request failed (TimeoutError: the summary request timed out)" in n for n in record.notes)
    assert results[-1].notes == record.notes
    assert META_SUMMARY not in store.get_meta(results[-1].session_id)
    assert "summary" not in results[-1].text.lower()  # the model is not told about a summary it didn't get


class PricedProvider(Provider):
    """A real Provider subclass that answers and reports usage; records every request body it built."""

    name = "priced"
    default_model = "gpt-4o-mini"
    capabilities = Capabilities()

    def __init__(self, *, fail_summaries: bool = False) -> None:
        super().__init__()
        self.bodies: list[dict[str, Any]] = []
        self.fail_summaries = fail_summaries

    def build_request(self, messages, *, model, max_tokens, options) -> dict[str, Any]:
        body = {"model": model, "max_tokens": max_tokens, "messages": [dict(m) for m in messages]}
        self.bodies.append(body)
        return body

    def open_stream(self, request):
        if self.fail_summaries and request["messages"][0]["content"] == SUMMARY_INSTRUCTION:
            from lib.providers import ProviderServerError
            raise ProviderServerError("The provider returned HTTP 500. Try again in a moment.")
        summarising = request["messages"][0]["content"] == SUMMARY_INSTRUCTION
        yield "A short summary." if summarising else "Noted, and kept in mind for later. " * 6

    def handle_event(self, event, reply: Reply) -> str:
        return event

    def finish(self, reply: Reply) -> None:
        reply.usage = Usage(input_tokens=100 * len(reply.request["messages"]), output_tokens=5)


def test_with_a_real_provider_the_summary_is_a_separate_visible_billed_request(memory_store):
    provider = PricedProvider()
    results = chat(memory_store, provider, 12)
    written = next(r for r in results if r.record.summary_new)
    summary = written.summary
    summary_bodies = [b for b in provider.bodies if b["messages"][0]["content"] == SUMMARY_INSTRUCTION]
    assert len(summary_bodies) == 1 and summary.request == summary_bodies[0]
    assert summary_bodies[0]["messages"][1]["content"].startswith("Turns 1–")
    assert summary.model == "gpt-4o-mini" and summary.text == "A short summary."
    assert (summary.input_tokens, summary.output_tokens) == (200, 5)
    assert summary.cost and written.record.summary_cost == summary.cost  # billed apart from the reply's cost
    assert written.record.cost and written.record.cost != summary.cost
    stored = stored_summary(memory_store.get_meta(written.session_id))
    assert stored is not None and stored.request == summary.request


def test_with_a_real_provider_a_failed_summary_falls_back_with_a_note(memory_store):
    results = chat(memory_store, PricedProvider(fail_summaries=True), 12)
    failed = [r for r in results if r.record.summary_requests]
    assert failed and all(r.ok and r.record.summary_id is None and r.record.dropped_count for r in failed)
    assert "HTTP 500" in failed[0].record.notes[0] and "dropped instead of summarised" in failed[0].record.notes[0]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=3, max_size=14),
       budget=st.integers(min_value=500, max_value=1500), reserve=st.sampled_from([0, 50]))
def test_property_history_unchanged_payload_fits_and_starts_right(sizes, budget, reserve):
    store, offline, sid = MemoryStore(), get_provider("offline", delay=0), None
    for n, size in enumerate(sizes, start=1):
        before = store.get_history(sid) if sid else []
        result = run_turn(store, offline, TurnRequest(user_text=f"Turn {n}: " + "word " * size, session_id=sid,
                                                      strategy="summary", budget=budget, reserve_tokens=reserve,
                                                      system_prompt=SYSTEM))
        sid = result.session_id
        after = store.get_history(sid)
        assert after[: len(before)] == before  # the stored history is never changed, only appended to
        if not result.ok:
            continue  # a single message over the budget: stored, not sent
        payload, record = result.payload, result.record
        assert payload[0] == {"role": "system", "content": SYSTEM}  # kept, never summarised
        assert payload[-1]["content"] == f"Turn {n}: " + "word " * size  # the newest user message
        rest = payload[2:] if record.summary_id else payload[1:]
        if record.summary_id:
            assert payload[1]["content"].startswith("Summary of turns ")
        assert rest[0]["role"] == "user"
        assert record.exact <= budget - reserve


def test_a_summary_that_no_longer_lines_up_after_the_store_cap_is_not_reused(offline):
    store = MemoryStore(max_messages=24)  # the cap removes the oldest messages once 12 turns are stored
    results = chat(store, offline, 16)
    records = [r.record for r in results]
    written = next(r for r in records if r.summary_new)
    misaligned = [r for r in records if any("no longer lines up with the stored history" in n for n in r.notes)]
    assert misaligned and misaligned[0].turn > written.turn
    for record in misaligned:  # never a stale summary: a fresh one, or none
        assert record.summary_id is None or record.summary_new
    for result in results:
        assert result.payload[-1]["content"] == fact(result.turn)


def test_the_reply_that_paid_for_a_summary_carries_its_cost_for_running_totals(memory_store):
    results = chat(memory_store, PricedProvider(), 12)
    written = next(r for r in results if r.record.summary_new)
    meta = written.assistant_message["meta"]
    assert meta["summary_cost"] == written.summary.cost and meta["cost"] == written.record.cost
    assert all("summary_cost" not in r.assistant_message["meta"] for r in results if r is not written)
