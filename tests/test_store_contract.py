"""One contract, two stores: every test here runs on MemoryStore and on RedisStore (a real Valkey)."""

from __future__ import annotations

import copy

import pytest

from lib.sessions import InvalidSessionId, MemoryStore, RedisStore, SessionStore

BAD_IDS = ["", "x" * 129, "a b", "../x", "a:b", "{x}", "é", None, 42]


def test_both_stores_satisfy_the_protocol(store):
    assert isinstance(store, SessionStore)


def test_append_returns_the_new_length_and_history_keeps_order(store):
    assert store.append("s1", {"role": "user", "content": "one"}) == 1
    assert store.append("s1", {"role": "assistant", "content": "two"}, {"role": "user", "content": "three"}) == 3
    assert [m["content"] for m in store.get_history("s1")] == ["one", "two", "three"]


def test_id_and_ts_are_added_when_missing_and_kept_when_given(store):
    given = {"role": "user", "content": "hi", "id": "fixed", "ts": 12.5}
    bare = {"role": "assistant", "content": "hello"}
    before = copy.deepcopy([given, bare])
    stored = store.append_messages("s1", given, bare)
    assert [given, bare] == before  # the caller's dicts are not mutated
    assert stored[0]["id"] == "fixed" and stored[0]["ts"] == 12.5
    assert len(stored[1]["id"]) == 32 and stored[1]["ts"] > 1e9
    assert store.get_history("s1") == stored


def test_unknown_session_is_empty(store):
    assert store.get_history("nobody") == []
    assert store.get_turns("nobody") == []
    assert store.get_meta("nobody") == {}
    assert store.ttl("nobody") is None
    assert not store.exists("nobody")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_invalid_ids_are_refused_by_every_call(store, bad):
    calls = [
        lambda: store.get_history(bad), lambda: store.append(bad, {"role": "user", "content": "x"}),
        lambda: store.clear_history(bad), lambda: store.ttl(bad), lambda: store.get_turns(bad),
        lambda: store.append_turn(bad, {"turn": 1}), lambda: store.get_meta(bad),
        lambda: store.set_meta(bad, title="x"), lambda: store.exists(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidSessionId) as raised:
            call()
        assert isinstance(raised.value, ValueError)
        assert "letters, digits" in str(raised.value)
    assert store.list_sessions() == []


def test_message_without_role_is_refused_and_nothing_is_written(store):
    with pytest.raises(ValueError, match="role"):
        store.append("s1", {"role": "user", "content": "ok"}, {"content": "no role"})
    assert store.get_history("s1") == []


def test_clear_history_removes_everything(store):
    store.append("s1", {"role": "user", "content": "x"})
    store.append_turn("s1", {"turn": 1})
    store.append_comparison("s1", {"new_message": "y"})
    store.set_meta("s1", system_prompt="sys")
    store.append("s2", {"role": "user", "content": "other"})
    store.clear_history("s1")
    assert store.get_history("s1") == [] and store.get_turns("s1") == [] and store.get_meta("s1") == {}
    assert store.get_comparisons("s1") == [] and not store.exists("s1")
    assert [row.id for row in store.list_sessions()] == ["s2"]


def test_list_sessions_rows(store):
    long_question = "What is a context window, and why does the whole history get re-sent on every single turn?"
    store.append("older", {"role": "assistant", "content": "hello"}, {"role": "user", "content": long_question})
    store.append_turn("older", {"turn": 1})
    store.append("newer", {"role": "user", "content": "Second   session\nhere"})
    rows = store.list_sessions()
    assert [r.id for r in rows] == ["newer", "older"]  # newest activity first
    newer, older = rows
    assert newer.title == "Second session here"
    assert older.title.startswith("What is a context window") and older.title.endswith("…")
    assert len(older.title) == 60
    assert (older.message_count, older.turn_count) == (2, 1)
    assert 0 < older.ttl <= store.ttl_seconds
    assert older.last_activity <= newer.last_activity


def test_turn_records_and_comparisons(store):
    assert store.append_turn("s1", {"turn": 1, "sent_ids": ["a"], "exact": 12}) == 1
    assert store.append_turn("s1", {"turn": 2, "sent_ids": ["a", "b"], "exact": None}) == 2
    assert [t["turn"] for t in store.get_turns("s1")] == [1, 2]
    assert store.turn_count("s1") == 2 and store.turn_count("other") == 0
    assert store.get_turns("s1")[1]["exact"] is None
    store.append_comparison("s1", {"columns": [{"label": "offline"}]})
    assert store.get_comparisons("s1") == [{"columns": [{"label": "offline"}]}]
    assert store.get_history("s1") == []  # neither is part of the message history


def test_meta_fields(store):
    store.set_meta("s1", system_prompt="Be brief.", previous_response_id="resp_1", count=3)
    meta = store.get_meta("s1")
    assert meta["system_prompt"] == "Be brief." and meta["count"] == "3"
    assert float(meta["created_at"]) <= float(meta["updated_at"])
    created = meta["created_at"]
    store.set_meta("s1", previous_response_id=None)
    meta = store.get_meta("s1")
    assert "previous_response_id" not in meta and meta["created_at"] == created


def test_per_session_cap_keeps_the_newest(store):
    capped = type(store)(store.client, prefix=store.prefix, max_messages=5) if isinstance(store, RedisStore) \
        else MemoryStore(max_messages=5)
    for n in range(8):
        length = capped.append("s1", {"role": "user", "content": f"m{n}"})
    assert length == 5
    assert [m["content"] for m in capped.get_history("s1")] == ["m3", "m4", "m5", "m6", "m7"]


def test_unicode_list_content_and_tool_calls_round_trip(store):
    messages = [
        {"role": "user", "content": "请用中文回答 🚀 ok?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "weather", "arguments": "{\"city\": \"東京\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "晴れ, 21°C"},
        {"role": "user", "content": [{"type": "text", "text": "and tomorrow?"}]},
    ]
    store.append("s1", *messages)
    back = store.get_history("s1")
    assert [{k: v for k, v in m.items() if k not in ("id", "ts")} for m in back] == messages
