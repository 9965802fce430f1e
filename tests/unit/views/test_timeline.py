"""The payload timeline's data: counts with the system prompt, new and dropped marks, diffs, cache, costs."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib.context import Summary
from lib.core import TurnRecord, Usage
from lib.providers import reset_simulated_caches
from lib.views import Timeline, build_timeline, format_cost
from tests.support.timelines import LONG_SYSTEM, SYSTEM, play, timeline_of


def badge_texts(data: Timeline, turn: int) -> list[str]:
    return [b.text for b in data.row(turn).badges]


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    reset_simulated_caches()  # the offline model's simulated cache is shared per process


def test_the_system_prompt_is_counted_in_sent_and_drawn_as_a_block() -> None:
    store, sid, results = play(["Hello", "What's 2+2?", "And 4+4?"], budget=80_000)
    data = timeline_of(store, sid)
    assert data.turns == [1, 2, 3]
    for turn, result in zip(data.turns, results, strict=True):
        blocks = data.blocks(turn)
        assert len(blocks) == len(result.payload) == result.record.sent_count  # 2, 4, 6: system included
        assert blocks[0].kind == "system" and blocks[0].role == "system"
        assert f"sent {len(result.payload)} (system prompt included)" in badge_texts(data, turn)[0]
        assert data.row(turn).tokens == result.record.exact  # the same exact count as the record
        assert sum(b.tokens for b in blocks) + 3 == result.record.exact  # +3 reply priming


def test_new_marks_and_diffs_follow_the_payload() -> None:
    store, sid, _ = play(["Hello", "What's 2+2?", "And 4+4?"], budget=80_000)
    data = timeline_of(store, sid)
    first, third = data.blocks(1), data.blocks(3)
    assert all(b.new for b in first)  # everything is new in turn 1, the system prompt included
    assert [b.role for b in third if b.new] == ["assistant", "user"]  # turn 2's reply and the new question
    assert not any(b.new for b in third if b.message_turn < 2)
    assert data.row(3).diff.added == 2 and data.row(3).diff.removed == 0
    assert data.row(3).diff.tokens == data.row(3).tokens - data.row(2).tokens > 0
    assert data.row(3).diff.text.startswith("2 messages added · 0 dropped · +")


def test_trimmed_turns_show_dropped_messages_and_the_trim_badge() -> None:
    texts = [f"Question {n}: tell me about the year {1800 + n}." for n in range(8)]
    store, sid, results = play(texts, budget=150)
    data = timeline_of(store, sid)
    trimmed = [r for r in data.rows if r.diff.removed]
    assert trimmed, "a 150-token budget must trim within 8 turns"
    row = trimmed[0]
    dropped = data.dropped_blocks(row.turn)
    assert len(dropped) == row.record.dropped_count > 0 and all(b.dropped for b in dropped)
    assert data.dropped_tokens(row.turn) == sum(b.tokens for b in dropped)
    sent_ids = {b.message_id for b in data.blocks(row.turn)}
    assert not sent_ids & {b.message_id for b in dropped}  # sent and dropped never overlap
    _, removed = data.changes(row.turn)
    assert len(removed) == row.diff.removed
    assert f"trimmed {row.diff.removed} message" in " ".join(badge_texts(data, row.turn))
    assert f"dropped {row.record.dropped_count}" in badge_texts(data, row.turn)


def test_the_request_body_is_the_body_that_was_sent() -> None:
    store, sid, results = play([f"Tell me about {n}" for n in range(6)], budget=400)
    data = timeline_of(store, sid)
    for turn, result in zip(data.turns, results, strict=True):
        shown = data.request_body(turn)
        assert shown.complete and shown.body == result.request
        assert shown.body["model"] == result.record.model and shown.body["messages"] == result.payload


def test_seed_strategy_failures_are_badged_in_red_with_both_numbers() -> None:
    store, sid, results = play(["Hello", "What's 2+2?", "And 4+4?", "And 8+8?", "Again"], strategy="seed",
                               budget=40)
    data = timeline_of(store, sid)
    failed = [r for r in data.rows if r.failed]
    assert failed, "the seed at budget 40 sends a payload the offline model rejects"
    badges = failed[0].badges
    belief = [b for b in badges if b.text.startswith("chars/4 said")]
    assert belief and belief[0].level == "error" and "≤ 40, so the seed sent it; exact count" in belief[0].text
    assert belief[0].text.endswith("the API refuses it")
    assert belief[0].source.startswith("estimate (chars/4) against ") and "o200k_base" in belief[0].source
    assert any(b.level == "error" and b.text.startswith("rejected") for b in badges)
    assert failed[0].cost is None and "failed" in failed[0].cost_source


def test_invalid_payload_badge_names_the_reason() -> None:
    record = TurnRecord(turn=1, sent_count=1, problems=("The payload starts with an assistant message, not a user "
                                                        "message.",), model="gpt-4o-mini")
    data = build_timeline([], [record])
    invalid = [b for b in data.row(1).badges if b.text.startswith("invalid payload")]
    assert invalid and invalid[0].level == "error" and "starts with an assistant message" in invalid[0].text


def test_cache_kept_under_cache_aware_and_broken_under_turns() -> None:
    texts = [f"Turn {n}: what happened in {1900 + n}? Please answer in some detail." for n in range(14)]
    labels: dict[str, list[str]] = {}
    for strategy in ("turns", "cache-aware"):
        store, sid, results = play(texts, strategy=strategy, budget=1_750, system=LONG_SYSTEM)
        assert all(r.ok for r in results), [r.error for r in results]
        data = timeline_of(store, sid)
        assert any(r.record.dropped_count for r in data.rows), "the budget must trim"
        first_trim = next(r.turn for r in data.rows if r.record.dropped_count)
        labels[strategy] = [data.row(t).cache.label for t in data.turns if t >= first_trim]
        cached_rows = [r for r in data.rows if r.cache.cached_messages]
        assert cached_rows and all(r.cache.source.startswith("simulated by the offline model") for r in cached_rows)
        assert all(b.cached == (b.index < r.cache.cached_messages) for r in cached_rows for b in data.blocks(r.turn))
    assert labels["turns"] and all(label.startswith("cache broken (prefix changed at message 1)")
                                   for label in labels["turns"])
    assert labels["cache-aware"].count("cache kept") > len(labels["cache-aware"]) // 2
    kept = [b for b in ("cache kept",) if b in labels["cache-aware"]]
    assert kept


def test_provider_reported_cache_reads_shade_the_prefix_and_say_so() -> None:
    history = [{"id": f"m{n}", "role": "user" if n % 2 == 0 else "assistant", "content": "word " * 300}
               for n in range(5)]
    usage = Usage(input_tokens=2_000, output_tokens=10, cache_read_tokens=1_250)
    record = TurnRecord(turn=3, sent=(("m0", "m4"),), sent_count=5, model="gpt-4o", provider="openai",
                        usage=usage, user_id="m4")
    data = build_timeline(history, [record])
    row = data.row(3)
    assert row.cache.source == "provider-reported" and row.cache.cached_tokens == 1_250
    assert 1 <= row.cache.cached_messages < 5
    cache = next(b for b in row.badges if "cache" in b.text and "tokens" in b.text)
    assert cache.text == "cache hit: 1,250 of 2,000 input tokens read from the cache"
    assert cache.source == "provider-reported"


def test_a_reported_cache_figure_is_never_mixed_with_a_simulated_verdict() -> None:
    """A payload below the simulated minimum, for which the provider still reported a cache read: the badge
    says what the provider reported, and nothing simulated (before, "not cached (prefix below the provider's
    minimum) · 3 cached tokens")."""
    history = [{"id": "u1", "role": "user", "content": "hello"}]
    usage = Usage(input_tokens=10, output_tokens=5, cache_read_tokens=3, cache_write_tokens=7, cache_in_input=False,
                  cache_write_5m=5, cache_write_1h=2)
    record = TurnRecord(turn=1, sent=(("u1", "u1"),), sent_count=1, model="claude-sonnet-4-6",
                        provider="anthropic", usage=usage, user_id="u1")
    row = build_timeline(history, [record]).row(1)
    assert row.cache.status == "short"  # the simulation alone would call it too short to cache
    texts = [b.text for b in row.badges]
    assert "cache hit: 3 of 20 input tokens read from the cache · 7 cache write (5m 5, 1h 2)" in texts
    assert not any("minimum" in t for t in texts)


def test_a_simulated_verdict_says_so_in_its_text() -> None:
    history = [{"id": "u1", "role": "user", "content": "hello"}]
    record = TurnRecord(turn=1, sent=(("u1", "u1"),), sent_count=1, model="gpt-5.4-mini", provider="openai",
                        user_id="u1")
    badge = next(b for b in build_timeline(history, [record]).row(1).badges if "cached" in b.text)
    assert badge.text == "not cached (prefix below the provider's minimum) (simulated)"
    assert badge.source.startswith("simulated")


def test_summary_turns_show_the_compaction_and_rebuild_it_into_the_body() -> None:
    history = [{"id": f"m{n}", "role": "user" if n % 2 == 0 else "assistant", "content": f"message {n}"}
               for n in range(6)]
    summary = Summary("The user asked about messages 0 to 3.", 1, 2, "extractive", 30)
    meta = {"summary": __import__("json").dumps(summary.to_json()), "system:abc": SYSTEM}
    record = TurnRecord(turn=3, sent=((summary.id, summary.id), ("m4", "m4")), dropped=(("m0", "m3"),),
                        sent_count=3, dropped_count=4, system_sent=True, system_hash="abc", summary_id=summary.id,
                        provider="offline", model="gpt-4o-mini", max_tokens=256, user_id="m4")
    data = build_timeline(history, [record], meta=meta)
    assert [b.kind for b in data.blocks(3)] == ["system", "summary", "message"]
    assert "turns 1–2 compacted into a summary (30 tokens)" in " ".join(badge_texts(data, 3))
    shown = data.request_body(3)
    assert shown.complete and [m["role"] for m in shown.body["messages"]] == ["system", "user", "user"]
    assert shown.body["messages"][1]["content"].startswith("Summary of turns 1–2")
    missing = build_timeline(history, [record], meta={"system:abc": SYSTEM}).request_body(3)
    assert any("summary" in m for m in missing.missing)


def test_odd_records_and_a_capped_history_never_raise() -> None:
    store, sid, _ = play(["Hello", "What's 2+2?"], budget=80_000)
    history = store.get_history(sid)[1:]  # the store's cap removed the oldest message
    turns = [*store.get_turns(sid), {"turn": "x", "sent": 5, "usage": []}, "not an object"]
    data = build_timeline(history, turns, meta=store.get_meta(sid))  # type: ignore[list-item]
    for turn in data.turns:
        data.blocks(turn), data.dropped_blocks(turn), data.request_body(turn), data.changes(turn)


def test_running_total_adds_up_the_turn_costs() -> None:
    store, sid, results = play(["Hello", "What's 2+2?", "And 4+4?"], budget=80_000)
    data = timeline_of(store, sid)
    costs = [r.record.cost for r in results]
    assert all(c is not None and c > 0 for c in costs)
    assert data.rows[-1].running_total == pytest.approx(sum(c or 0 for c in costs))
    assert data.rows[0].cost_source == "estimate, priced as gpt-4o-mini"
    assert format_cost(costs[0]) in badge_texts(data, 1)[-1]


def test_format_cost_examples() -> None:
    assert format_cost(None) == "no price"
    assert format_cost(0) == "$0"
    assert format_cost(0.0000123) == "12.3 µ$"
    assert format_cost(0.0000015) != format_cost(0.0000025)
    assert format_cost(0.0123456789) == "$0.0123457"
    assert format_cost(1.5) == "$1.5"
    assert format_cost(1234.5) == "$1,234.5"


@given(st.floats(min_value=1e-6, max_value=100.0), st.floats(min_value=1e-6, max_value=100.0))
def test_format_cost_never_shows_two_different_costs_alike(a: float, b: float) -> None:
    if abs(a - b) >= 1e-6:
        assert format_cost(a) != format_cost(b)


def test_turns_are_ordered_and_rows_keep_their_record() -> None:
    store, sid, results = play(["One", "Two"], budget=80_000)
    turns = list(reversed(store.get_turns(sid)))
    data = build_timeline(store.get_history(sid), turns, meta=store.get_meta(sid))
    assert data.turns == [1, 2]
    assert replace(data.row(2).record) == results[1].record.__class__.from_json(results[1].record.to_json())


def test_the_summary_in_words_adds_up_to_the_rows_it_describes() -> None:
    from lib.tokens import REPLY_PRIMING
    from lib.views import summarize_timeline

    store, sid, _ = play([f"Question {n}: tell me about the year {1800 + n}, please." for n in range(6)], budget=90)
    data = timeline_of(store, sid)
    summary = summarize_timeline(data)
    assert summary is not None
    newest = data.rows[-1]
    assert summary.turn == newest.turn and summary.rows == len(data.rows)
    assert sum(summary.by_role.values()) + REPLY_PRIMING == newest.tokens == summary.tokens
    assert summary.dropped_messages == newest.record.dropped_count > 0
    assert summary.dropped_tokens == data.dropped_tokens(newest.turn)
    assert summary.total_tokens == sum(r.tokens for r in data.rows)
    text = summary.text
    assert f"Turn {newest.turn} sent {newest.tokens:,} tokens" in text and newest.count_source in text
    assert "not sent" in text and "prompt cache" in text
    first = summarize_timeline(data, turn=1)
    assert first is not None and first.turn == 1 and "Nothing was dropped in turn 1." in first.text
    assert summarize_timeline(build_timeline([], [])) is None
