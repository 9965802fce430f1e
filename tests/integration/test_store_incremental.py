"""Incremental reads on a real Valkey: a cached read returns exactly what a full read does.

The writer process appends consecutive integers, so the list at any instant is a run of consecutive
numbers ending at the newest one; a read (one atomic script) must return exactly such a run, of length
min(appended, cap). A stale cache, a gap or a duplicate would break the run.
"""

from __future__ import annotations

import time

import pytest

import lib.sessions.redis.store as redis_store_module
from lib.sessions import RedisStore

pytestmark = pytest.mark.redis

APPENDS = 500


def _writer(url: str, prefix: str, cap: int, count: int) -> None:
    store = RedisStore(url, prefix=prefix, max_messages=cap)
    for n in range(count):
        store.append("shared", {"role": "user", "content": str(n)})


def _fresh(store: RedisStore, cap: int | None = None) -> RedisStore:
    """Another store on the same keys with an empty cache: its first read is a full read."""
    return RedisStore(store.client, prefix=store.prefix, max_messages=cap or store.max_messages)


def _numbers(history: list[dict]) -> list[int]:
    return [int(m["content"]) for m in history]


def _assert_consistent(numbers: list[int], cap: int) -> None:
    if not numbers:
        return
    newest = numbers[-1]
    assert numbers == list(range(newest + 1 - len(numbers), newest + 1)), "gap, duplicate or stale entry"
    assert len(numbers) == min(newest + 1, cap)


@pytest.mark.parametrize("cap", [100_000, 64], ids=["no-trim", "ltrim-at-cap"])
def test_incremental_reads_match_full_reads_under_appends_from_another_process(valkey_server, redis_store, cap,
                                                                               spawn_context):
    reader = _fresh(redis_store, cap)
    process = spawn_context.Process(
        target=_writer, args=(valkey_server.url, redis_store.prefix, cap, APPENDS))
    process.start()
    reads = 0
    deadline = time.monotonic() + 120
    while process.is_alive() and time.monotonic() < deadline:
        _assert_consistent(_numbers(reader.get_history("shared")), cap)
        reads += 1
        time.sleep(0.002)  # two cores: leave the writer room to run
    process.join(timeout=60)
    assert process.exitcode == 0 and reads > 5
    final = reader.get_history("shared")
    assert final == _fresh(redis_store, cap).get_history("shared")  # the cache ends exactly where a full read does
    assert _numbers(final) == list(range(APPENDS - min(APPENDS, cap), APPENDS))


def test_a_warm_read_fetches_only_the_new_tail_also_across_an_ltrim(redis_store, monkeypatch):
    store = _fresh(redis_store, 10)
    store.append("s1", *[{"role": "user", "content": str(n)} for n in range(8)])
    assert _numbers(store.get_history("s1")) == list(range(8))
    fetched: list[int] = []
    decode = redis_store_module._decode_entries
    monkeypatch.setattr(redis_store_module, "_decode_entries",
                        lambda raw, key, *, offset: fetched.append(len(raw)) or decode(raw, key, offset=offset))
    other = _fresh(redis_store, 10)  # another writer: this store's cache learns of it only from the server
    other.append("s1", *[{"role": "user", "content": str(n)} for n in range(8, 13)])  # trims 0..2
    assert _numbers(store.get_history("s1")) == list(range(3, 13))
    assert fetched == [5]  # only the tail crossed the wire, although the head was trimmed
    other.append("s1", *[{"role": "user", "content": str(n)} for n in range(13, 40)])  # trims past our cache
    assert _numbers(store.get_history("s1")) == list(range(30, 40))
    assert fetched[-1] == 10  # the cached prefix could not be trusted: full read
    warm = store.get_history("s1")
    assert fetched[-1] == 0  # nothing new: nothing fetched
    assert warm == _fresh(redis_store, 10).get_history("s1")


@pytest.mark.parametrize("how", ["store clear", "raw delete"])
def test_clear_or_delete_invalidates_the_cache_even_at_the_same_length(redis_store, how):
    reader, writer = _fresh(redis_store), _fresh(redis_store)
    writer.append("s1", *[{"role": "user", "content": f"old {n}"} for n in range(3)])
    writer.append_turn("s1", {"turn": 1})
    assert len(reader.get_history("s1")) == 3 and len(reader.get_turns("s1")) == 1
    if how == "store clear":
        writer.clear_history("s1")
    else:
        writer.client.delete(*writer.keys("s1"))
    assert reader.get_history("s1") == [] and reader.get_turns("s1") == []
    writer.append("s1", *[{"role": "user", "content": f"new {n}"} for n in range(4)])
    writer.append_turn("s1", {"turn": 1, "new": True})
    assert [m["content"] for m in reader.get_history("s1")] == [f"new {n}" for n in range(4)]
    assert reader.get_turns("s1") == [{"turn": 1, "new": True}]
    writer.clear_history("s1")
    writer.append("s1", *[{"role": "user", "content": f"newer {n}"} for n in range(4)])  # same length as cached
    assert [m["content"] for m in reader.get_history("s1")] == [f"newer {n}" for n in range(4)]


def test_turn_records_are_read_incrementally_and_slices_read_only_their_range(redis_store, monkeypatch):
    store = _fresh(redis_store)
    for n in range(1, 21):
        store.append_turn("s1", {"turn": n})
    assert len(store.get_turns("s1")) == 20
    fetched: list[int] = []
    decode = redis_store_module._decode_entries
    monkeypatch.setattr(redis_store_module, "_decode_entries",
                        lambda raw, key, *, offset: fetched.append(len(raw)) or decode(raw, key, offset=offset))
    store.append_turn("s1", {"turn": 21})
    assert [t["turn"] for t in store.get_turns("s1")] == list(range(1, 22)) and fetched == [1]
    assert [t["turn"] for t in store.get_turns("s1", -3)] == [19, 20, 21] and fetched[-1] == 3


@pytest.mark.parametrize("cap", [100_000, 7], ids=["no-trim", "ltrim-at-cap"])
def test_a_turn_keeps_its_own_messages_and_still_reads_every_other_writers(redis_store, cap):
    """A turn's opening and closing calls add the store's own writes to its cache when the server's list is
    provably the cache plus them; whatever another writer slipped in, at any point of a turn, is still read."""
    store = _fresh(redis_store, cap)
    other = _fresh(redis_store, cap)
    n = 0

    def turn(*, between: bool = False, after_open: bool = False) -> None:
        nonlocal n
        if between:
            other.append("t", {"role": "user", "content": f"other {n}"})
        opened = store.open_turn("t", {"role": "user", "content": f"q {n}"})
        if after_open:
            other.append("t", {"role": "user", "content": f"other late {n}"})
        store.close_turn("t", turn=opened.turn, reply={"role": "assistant", "content": f"a {n}"},
                         record={"turn": opened.turn})
        n += 1
        # What this store hands out (its cache, warm) is exactly what a store with no cache reads.
        assert [m["content"] for m in store.get_history("t")] == [m["content"] for m in _fresh(store).get_history("t")]

    for _ in range(4):
        turn()
    turn(between=True)
    turn(after_open=True)
    for _ in range(min(cap // 2 + 3, 10)):  # with cap 7, past the cap, where lengths no longer prove the list
        turn()
    turn(after_open=True)
    turn(between=True)
    contents = [m["content"] for m in _fresh(store).get_history("t")]
    assert contents[-2:] == [f"q {n - 1}", f"a {n - 1}"] and len(contents) == min(cap, len(set(contents)))


def test_a_turn_on_a_session_this_store_has_read_reads_no_history_back(redis_store):
    store = _fresh(redis_store)
    store.open_turn("w", {"role": "user", "content": "q0"})
    store.close_turn("w", turn=1, reply={"role": "assistant", "content": "a0"}, record={"turn": 1})

    def lranges() -> int:
        return int(store.client.info("commandstats").get("cmdstat_lrange", {}).get("calls", 0))

    before = lranges()
    opened = store.open_turn("w", {"role": "user", "content": "q1"})
    assert [m["content"] for m in opened.history] == ["q0", "a0"] and opened.turn == 2
    assert lranges() == before  # its cache held the whole history, its own writes included
    _fresh(store).append("w", {"role": "user", "content": "other"})
    store.close_turn("w", turn=2, reply={"role": "assistant", "content": "a1"}, record={"turn": 2})
    opened = store.open_turn("w", {"role": "user", "content": "q2"})
    assert [m["content"] for m in opened.history] == ["q0", "a0", "q1", "other", "a1"]
    assert lranges() == before + 1  # another writer's message: the tail is read


def test_another_writers_entries_hidden_by_the_cap_behind_an_unchanged_length_are_still_read(redis_store):
    """At the cap a push also trims, so the list's length alone cannot show what another writer added
    between a turn's opening and closing calls: the closing call must not take its reply as the only change."""
    cap = 7
    store, other = _fresh(redis_store, cap), _fresh(redis_store, cap)
    for n in range(cap - 2):
        other.append("u", {"role": "user", "content": f"old {n}"})
    store.get_history("u")
    opened = store.open_turn("u", {"role": "user", "content": "q"})  # cap - 1 entries now
    other.append("u", {"role": "user", "content": "other 1"}, {"role": "user", "content": "other 2"})  # trims one
    store.close_turn("u", turn=opened.turn, reply={"role": "assistant", "content": "a"}, record={"turn": 1})
    expected = [m["content"] for m in _fresh(store).get_history("u")]
    assert expected[-4:] == ["q", "other 1", "other 2", "a"] and len(expected) == cap
    assert [m["content"] for m in store.get_history("u")] == expected
