"""One contract, two stores: every test here runs on MemoryStore and on RedisStore (a real Valkey)."""

from __future__ import annotations

import copy
import json
import pickle
import threading

import pytest

from lib.core import HistoryLabError
from lib.sessions import InvalidSessionId, MemoryStore, MetaChanged, RedisStore, SessionStore

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
    capped = _with_cap(store, 5)
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


# -- turns numbered atomically, writes idempotent, slice reads, imports --------


def test_begin_turn_stores_the_user_message_and_numbers_turns(store):
    message, turn = store.begin_turn("s1", {"role": "user", "content": "first"})
    assert turn == 1 and message["content"] == "first" and len(message["id"]) == 32
    store.append_messages("s1", {"role": "assistant", "content": "reply"})
    _, second = store.begin_turn("s1", {"role": "user", "content": "second"})
    assert second == 2
    assert [m["content"] for m in store.get_history("s1")] == ["first", "reply", "second"]
    assert store.get_history("s1")[0] == message
    assert store.list_sessions()[0].title == "first"
    assert store.begin_turn("other", {"role": "user", "content": "x"})[1] == 1  # numbers are per session


def test_begin_turn_resent_with_the_same_id_keeps_its_number_and_stores_once(store):
    message, turn = store.begin_turn("s1", {"role": "user", "content": "hi"})
    again, same = store.begin_turn("s1", message)
    assert (again["id"], same) == (message["id"], turn)
    assert len(store.get_history("s1")) == 1
    assert store.begin_turn("s1", {"role": "user", "content": "next"})[1] == turn + 1


def test_two_threads_taking_turns_get_unique_gap_free_numbers(store):
    numbers: list[int] = []

    def writer(name: str) -> None:
        for n in range(50):
            numbers.append(store.begin_turn("shared", {"role": "user", "content": f"{name}{n}"})[1])

    threads = [threading.Thread(target=writer, args=(name,)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(numbers) == list(range(1, 101))
    assert len(store.get_history("shared")) == 100


def test_appends_are_idempotent_by_message_id(store):
    message = {"role": "user", "content": "once", "id": "m-1", "ts": 1.0}
    assert store.append("s1", message) == 1
    assert store.append("s1", message, {"role": "assistant", "content": "new", "id": "m-2"}) == 2
    assert store.append_messages("s1", message) == [message]  # a resent write returns what is stored
    assert [m["id"] for m in store.get_history("s1")] == ["m-1", "m-2"]
    store.append("s1", {"role": "user", "content": "dup in one call", "id": "m-3"},
                 {"role": "user", "content": "dup in one call", "id": "m-3"})
    assert [m["id"] for m in store.get_history("s1")] == ["m-1", "m-2", "m-3"]


def test_turn_records_are_idempotent_by_turn_number(store):
    assert store.append_turn("s1", {"turn": 1, "exact": 5}) == 1
    assert store.append_turn("s1", {"turn": 1, "exact": 5}) == 1
    assert store.append_turn("s1", {"turn": 2}) == 2
    assert store.append_turn("s1", {"note": "no number: never deduplicated"}) == 3
    assert store.append_turn("s1", {"note": "no number: never deduplicated"}) == 4
    assert [t.get("turn") for t in store.get_turns("s1")] == [1, 2, None, None]


SLICES = [(0, None), (0, 2), (1, 3), (2, None), (-2, None), (-1, None), (0, -1), (1, -1), (-3, -1), (5, None),
          (0, 0), (3, 1), (-10, 2), (0, -10), (-10, None), (2, 100), (-2, 1)]


@pytest.mark.parametrize(("start", "end"), SLICES)
def test_get_turns_slices_are_python_slices(store, start, end):
    for n in range(1, 6):
        store.append_turn("s1", {"turn": n})
    expected = [{"turn": n} for n in range(1, 6)][start:end]
    assert store.get_turns("s1", start, end) == expected
    assert store.get_turns("s1", start=start, end=end) == expected
    assert store.get_turns("nobody", start, end) == []


def test_import_session_writes_everything_at_once(store):
    messages = [{"role": "user", "content": "imported question", "id": "a", "ts": 1.0},
                {"role": "assistant", "content": "imported answer", "id": "b", "ts": 2.0}]
    store.import_session("imp", messages=messages, turns=[{"turn": 1}, {"turn": 2}],
                         meta={"system_prompt": "sys", "imported_from": "old", "count": 3},
                         comparisons=[{"columns": []}])
    assert store.get_history("imp") == messages
    assert store.get_turns("imp") == [{"turn": 1}, {"turn": 2}] and store.turn_count("imp") == 2
    assert store.get_comparisons("imp") == [{"columns": []}]
    meta = store.get_meta("imp")
    assert meta["system_prompt"] == "sys" and meta["count"] == "3" and meta["title"] == "imported question"
    assert [(r.id, r.message_count, r.turn_count) for r in store.list_sessions()] == [("imp", 2, 2)]
    assert store.begin_turn("imp", {"role": "user", "content": "next"})[1] == 3  # the counter continues
    store.append("imp", messages[0])
    assert len(store.get_history("imp")) == 3  # imported ids count for deduplication
    assert 0 < store.ttl("imp") <= store.ttl_seconds


def test_import_session_replaces_an_existing_session(store):
    store.append("imp", {"role": "user", "content": "old"})
    store.append_turn("imp", {"turn": 7})
    store.import_session("imp", messages=[{"role": "user", "content": "new"}])
    assert [m["content"] for m in store.get_history("imp")] == ["new"] and store.get_turns("imp") == []


@pytest.mark.parametrize("bad", [
    {"messages": [{"role": "user", "content": "ok"}, {"content": "no role"}]},
    {"messages": [{"role": "user", "content": "ok"}], "turns": [{"turn": 1}, {"turn": float("nan")}]},
    {"messages": [{"role": "user", "content": "ok"}], "meta": {5: "not a str key"}},
    {"messages": [{"role": "user", "content": "ok"}], "comparisons": ["not a mapping"]},
    {"messages": [{"role": "user", "content": str(n)} for n in range(11)]},  # over the cap of 10 below
    {"messages": "not a list"},
])
def test_a_bad_import_writes_nothing(store, bad):
    capped = _with_cap(store, 10)
    with pytest.raises(HistoryLabError) as raised:
        capped.import_session("imp", **{"turns": [], "meta": None, "comparisons": [], **bad})
    assert "nothing was written" in str(raised.value)
    assert capped.list_sessions() == [] and not capped.exists("imp") and capped.get_history("imp") == []


def test_errors_are_one_family(store):
    with pytest.raises(HistoryLabError):
        store.get_history("bad id")
    with pytest.raises(HistoryLabError):
        store.append("s1", {"content": "no role"})
    with pytest.raises(HistoryLabError):
        store.append_turn("s1", {"turn": 1, "x": object()})
    assert store.get_turns("s1") == []


def test_read_entries_are_read_only_and_copies_are_plain_dicts(store):
    store.append("s1", {"role": "user", "content": [{"type": "text", "text": "original"}], "meta": {"a": 1}})
    store.append_turn("s1", {"turn": 1})
    history, turns = store.get_history("s1"), store.get_turns("s1")
    for change in (lambda: history[0].__setitem__("content", "x"), lambda: history[0].pop("id"),
                   lambda: history[0]["meta"].update(b=2), lambda: turns[0].setdefault("x", 1),
                   lambda: history[0].clear()):
        with pytest.raises(TypeError, match="read-only; change a copy"):
            change()
    history.append({"role": "user", "content": "the list itself is the caller's"})
    copied, deep = dict(history[0]), copy.deepcopy(history[0])
    copied["content"] = "changed copy"
    deep["meta"]["b"] = 2
    assert type(deep) is dict and type(deep["meta"]) is dict
    assert json.loads(json.dumps(store.get_history("s1"))) == store.get_history("s1")
    assert pickle.loads(pickle.dumps(store.get_history("s1"))) == store.get_history("s1")
    again = store.get_history("s1")
    assert len(again) == 1 and again[0]["content"] == [{"type": "text", "text": "original"}]
    assert again[0]["meta"] == {"a": 1}


def _with_cap(store, cap: int):
    if isinstance(store, RedisStore):
        return RedisStore(store.client, prefix=store.prefix, max_messages=cap)
    return MemoryStore(max_messages=cap)


# -- a chat turn in two calls: open_turn and close_turn ----------------------------------------------------


def test_open_turn_reads_stores_numbers_and_sets_meta_in_one_call(store):
    store.append("s1", {"role": "user", "content": "earlier", "id": "e1"})
    store.set_meta("s1", system_prompt="old")
    store.append_turn("s1", {"turn": 7, "cut": "x"})
    opened = store.open_turn("s1", {"role": "user", "content": "now"}, meta={"system_prompt": "new"},
                             newest_record=True)
    assert [m["id"] for m in opened.history] == ["e1"]  # what was stored before the message
    assert opened.meta["system_prompt"] == "old" and "created_at" in opened.meta  # meta before this call
    assert opened.newest_record == {"turn": 7, "cut": "x"} and not opened.resent
    assert opened.turn == 1 and opened.message["content"] == "now"
    assert store.get_meta("s1")["system_prompt"] == "new"
    assert [m["content"] for m in store.get_history("s1")] == ["earlier", "now"]
    assert not any(name.startswith("store:") for name in store.get_meta("s1"))
    assert store.open_turn("s2", {"role": "user", "content": "x"}).newest_record is None


def test_a_resent_open_turn_keeps_its_number_and_history_and_stores_once(store):
    store.append("s1", {"role": "user", "content": "earlier", "id": "e1"})
    first = store.open_turn("s1", {"role": "user", "content": "q", "id": "q1"})
    again = store.open_turn("s1", first.message)
    assert (again.turn, again.resent, [m["id"] for m in again.history]) == (first.turn, True, ["e1"])
    assert [m["id"] for m in store.get_history("s1")] == ["e1", "q1"]
    assert store.open_turn("s1", {"role": "user", "content": "next"}).turn == first.turn + 1


def test_open_turn_writes_nothing_when_an_expected_meta_value_changed(store):
    store.open_turn("s1", {"role": "user", "content": "first"}, meta={"settings": "A"})
    before = (store.get_history("s1"), store.turn_count("s1"))
    with pytest.raises(MetaChanged) as changed:
        store.open_turn("s1", {"role": "user", "content": "q"}, meta={"settings": "B"}, expect={"settings": "old"})
    assert changed.value.meta["settings"] == "A"  # what the caller decides again from
    assert (store.get_history("s1"), store.turn_count("s1"), store.get_meta("s1")["settings"]) == (*before, "A")
    with pytest.raises(MetaChanged):  # absent expected, present found
        store.open_turn("s1", {"role": "user", "content": "q"}, expect={"settings": None})
    with pytest.raises(MetaChanged):  # present expected, absent found
        store.open_turn("s2", {"role": "user", "content": "q"}, expect={"settings": "A"})
    assert store.get_history("s2") == []
    assert store.open_turn("s3", {"role": "user", "content": "q"}, expect={"settings": None}).turn == 1
    opened = store.open_turn("s1", {"role": "user", "content": "q", "id": "q1"}, meta={"settings": "B"},
                             expect={"settings": "A"})
    assert opened.turn == 2 and store.get_meta("s1")["settings"] == "B"
    # A resent call finds what its first attempt wrote (B, not the A it expected) and gets its number back.
    again = store.open_turn("s1", opened.message, meta={"settings": "B"}, expect={"settings": "A"})
    assert (again.turn, again.resent) == (2, True)
    assert [m["content"] for m in store.get_history("s1")] == ["first", "q"]


def test_close_turn_stores_reply_record_and_meta_idempotently(store):
    opened = store.open_turn("s1", {"role": "user", "content": "q"})
    reply = {"role": "assistant", "content": "a", "id": "r1"}
    record = {"turn": opened.turn, "assistant_id": "r1"}
    for _ in range(2):  # a resent close stores nothing twice
        stored = store.close_turn("s1", turn=opened.turn, reply=reply, record=record,
                                  meta={"previous_response_id": "resp_1"})
        assert stored is not None and stored["id"] == "r1" and stored["ts"] > 0
    assert [m["id"] for m in store.get_history("s1")] == [opened.message["id"], "r1"]
    assert store.get_turns("s1") == [record] and store.get_meta("s1")["previous_response_id"] == "resp_1"
    failed = store.open_turn("s1", {"role": "user", "content": "q2"})
    assert store.close_turn("s1", turn=failed.turn, reply=None, record={"turn": failed.turn, "error": "x"}) is None
    assert [t["turn"] for t in store.get_turns("s1")] == [1, 2] and len(store.get_history("s1")) == 3


def test_the_stores_own_meta_fields_are_refused(store):
    with pytest.raises(HistoryLabError, match="reserved for the store"):
        store.set_meta("s1", **{"store:turn_seq": "99"})
    with pytest.raises(HistoryLabError, match="reserved for the store"):
        store.import_session("s1", messages=[{"role": "user", "content": "x"}], meta={"store:epoch": "e"})
    assert not store.exists("s1")
