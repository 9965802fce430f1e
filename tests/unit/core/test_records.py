"""lib.core.records: compact turn records, tolerant reading, migration of old records, body rebuilding."""

from __future__ import annotations

import json
import uuid

import pytest

from lib.chat import turn_body
from lib.core import (
    ReplyMeta,
    TurnRecord,
    UsageRecord,
    id_positions,
    id_ranges,
    import_turn,
    resolve_ranges,
    system_hash,
    system_meta_field,
)


def history(n: int) -> list[dict]:
    return [{"id": uuid.uuid4().hex, "role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}",
             "ts": 1.0, "meta": {"x": 1}} for i in range(n)]


def test_ranges_compress_a_suffix_and_the_seeds_first_plus_suffix():
    h = history(10)
    positions = id_positions(h)
    ids = [m["id"] for m in h]
    assert id_ranges(ids[4:], positions) == ((ids[4], ids[9]),)
    assert id_ranges([ids[0], *ids[6:]], positions) == ((ids[0], ids[0]), (ids[6], ids[9]))
    assert resolve_ranges(((ids[0], ids[0]), (ids[6], ids[9])), h) == [ids[0], *ids[6:]]
    # An id the history does not hold (a summary kept elsewhere) is a range of its own and resolves to nothing.
    assert id_ranges(["summary", ids[5]], positions) == (("summary", "summary"), (ids[5], ids[5]))
    assert resolve_ranges((("summary", "summary"),), h) == []


def test_ranges_survive_the_stores_cap_trimming_the_oldest_messages():
    h = history(10)
    ids = [m["id"] for m in h]
    record = TurnRecord(turn=5, sent=((ids[2], ids[7]),), dropped=((ids[0], ids[1]),))
    capped = h[4:]  # LTRIM removed the first four
    assert record.sent_ids(capped) == ids[4:8]
    assert record.dropped_ids(capped) == []


def test_record_round_trips_and_keeps_the_system_prompt_once_in_meta():
    h = history(4)
    ids = [m["id"] for m in h]
    prompt = "You are terse. " * 300
    record = TurnRecord(
        turn=2, ts=10.5, user_id=ids[2], assistant_id=ids[3], sent=((ids[0], ids[2]),), sent_count=4,
        system_sent=True, system_hash=system_hash(prompt), estimate=100, exact=90, encoding="o200k_base",
        approximate=False, usage=UsageRecord(input_tokens=90, output_tokens=5, cache_read_tokens=64),
        strategy="cache-aware", budget=200, reserve=0, provider="offline", model="gpt-4o-mini", max_tokens=512,
        cut=ids[0], problems=("Over budget: 300 tokens sent against a budget of 200.",), cost=0.25,
    )
    data = record.to_json()
    assert json.loads(json.dumps(data)) == data
    assert TurnRecord.from_json(data) == record
    assert prompt not in json.dumps(data)
    meta = {system_meta_field(prompt): prompt}
    shown = turn_body(record, h, meta)
    assert shown.complete and shown.body == {
        "model": "gpt-4o-mini", "max_tokens": 512,
        "messages": [{"role": "system", "content": prompt},
                     *({"role": m["role"], "content": m["content"]} for m in h[:3])]}
    assert "no longer stored" in turn_body(record, h, {}).missing[0]
    # A record from before records kept the adapter options says its body may lack them.
    old = TurnRecord.from_json({k: v for k, v in data.items() if k != "options"})
    assert not old.options_kept and "adapter options" in turn_body(old, h, meta).missing[0]


def test_a_thousand_records_with_a_long_system_prompt_stay_under_two_megabytes():
    h = history(2_000)
    positions = id_positions(h)
    prompt = "Answer like a patient teacher. " * 400  # about 2,400 tokens
    sizes = []
    for turn in range(1, 1_001):
        user = 2 * (turn - 1)
        sent_ids = [m["id"] for m in h[max(0, user - 40): user + 1]]
        dropped_ids = [m["id"] for m in h[: max(0, user - 40)]]
        record = TurnRecord(
            turn=turn, ts=1_700_000_000.123456, user_id=h[user]["id"],
            assistant_id=h[user + 1]["id"], sent=id_ranges(sent_ids, positions),
            dropped=id_ranges(dropped_ids, positions), sent_count=len(sent_ids) + 1,
            dropped_count=len(dropped_ids), system_sent=True, system_hash=system_hash(prompt), estimate=12_345,
            exact=11_234, encoding="o200k_base", approximate=True,
            usage=UsageRecord(input_tokens=11_240, output_tokens=321, cache_read_tokens=10_000,
                              cache_write_tokens=1_000, cache_in_input=False, simulated=True),
            strategy="turns", budget=80_000, reserve=1_024, provider="anthropic", model="claude-sonnet-4-5",
            max_tokens=1_024, cost=0.0123456789,
        )
        sizes.append(len(json.dumps(record.to_json(), ensure_ascii=False)))
    total = sum(sizes)
    assert total < 2_000_000, total
    # Constant size per turn: turn 1,000 costs what turn 100 costs (only the counters' digits differ).
    assert max(sizes) < 1_000 and abs(sizes[-1] - sizes[99]) < 10, (sizes[99], sizes[-1])


@pytest.mark.parametrize("odd", [
    {"turn": "three", "sent_ids": 5, "dropped_ids": {"a": 1}, "usage": "lots", "exact": "many"},
    {"usage": {"input_tokens": "many", "output_tokens": [1], "cache_read_tokens": None}},
    {"sent": 5, "dropped": [["a"], [1, 2], "x", None], "problems": "bad", "ts": float("nan")},
    {"sent": [["a", "b", "c"]], "system_sent": "yes", "approximate": 1, "budget": True, "cut": 7},
    {"error": ["x"], "error_type": 3, "reply_saved_late": "no", "max_tokens": 1.5, "cost": "cheap"},
    {"turn": 2.0, "estimate": 1e400},
])
def test_odd_field_types_read_as_missing_and_never_raise(odd):
    record = TurnRecord.from_json(odd)
    json.dumps(record.to_json())
    assert record.sent_ids(history(3)) == []
    assert record.usage is None or record.usage.input_tokens is None
    shown = turn_body(record, history(3), {})
    assert shown.body is None or shown.body["messages"] == []


@pytest.mark.parametrize("value", [None, 5, "text", [1, 2], {"timings": "slow", "usage": {"input_tokens": "many"}},
                                   {"timings": {"ttft": "soon", "total": float("inf")}, "cost": "free"}])
def test_reply_meta_from_anything(value):
    meta = ReplyMeta.from_json(value)
    assert meta.ttft is None and meta.total is None and meta.cost is None
    assert meta.usage is None or meta.usage.input_tokens is None
    assert ReplyMeta.from_json(meta.to_json()) == meta


def test_reply_meta_round_trip_keeps_what_pages_read():
    meta = ReplyMeta(provider="openai", model="gpt-4o-mini", usage=UsageRecord(input_tokens=0, output_tokens=3),
                     ttft=0.2, total=1.5, response_id="resp_1", cost=1e-7, cost_source="price of gpt-4o-mini")
    data = meta.to_json()
    assert data["timings"] == {"ttft": 0.2, "total": 1.5}
    assert data["usage"]["input_tokens"] == 0 and data["usage"]["prompt_total"] == 0
    assert ReplyMeta.from_json(data) == meta


def test_old_records_with_id_lists_migrate_on_read():
    h = history(6)
    ids = [m["id"] for m in h]
    old = {"turn": 3, "sent_ids": ids[2:5], "dropped_ids": ids[:2], "system_prompt": "Be brief.",
           "provider_input_tokens": 40, "provider_output_tokens": 7, "provider_prompt_tokens": 40,
           "estimate": 30, "exact": 33, "user_id": ids[4]}
    record = TurnRecord.from_json(old)
    assert record.sent_ids(h) == ids[2:5] and record.dropped_ids(h) == ids[:2]
    assert record.sent_count == 4 and record.dropped_count == 2  # the system prompt counts as sent
    assert record.usage == UsageRecord(input_tokens=40, output_tokens=7)
    assert record.system_text({}) == "Be brief."
    compact = record.compacted(h)
    assert compact.sent == ((ids[2], ids[4]),) and compact.dropped == ((ids[0], ids[1]),)
    assert "sent_ids" not in compact.to_json()


def test_an_imported_old_record_becomes_compact_with_its_prompt_moved_to_meta():
    h = history(6)
    ids = [m["id"] for m in h]
    old = {"turn": 3, "sent_ids": ids[2:5], "dropped_ids": ids[:2], "system_prompt": "Be brief.", "user_id": ids[4]}
    record, meta = import_turn(old, h)
    assert record.sent == ((ids[2], ids[4]),) and record.system_prompt is None
    assert meta == {system_meta_field("Be brief."): "Be brief."} and record.system_text(meta) == "Be brief."
    new = TurnRecord(turn=4, sent=((ids[0], ids[3]), (ids[4], ids[4])), sent_count=5)
    assert import_turn(new.to_json(), h) == (new, {})  # current records are kept exactly as written
