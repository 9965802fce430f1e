"""A chat turn's two store calls on a real Valkey: no key without a TTL whatever happens between
them, the listing index pruned on write, corrupt entries skipped, sessions of the previous layout migrated."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from lib.sessions import RedisStore

pytestmark = pytest.mark.redis


def _keys(store: RedisStore, session_id: str) -> dict[str, int]:
    """Every existing key of the session (its name after the id) with its TTL."""
    prefix = f"{store.prefix}:{{{session_id}}}:"
    return {key.removeprefix(prefix): int(store.client.ttl(key)) for key in store.client.scan_iter(match=prefix + "*")}


def test_every_key_has_a_ttl_after_a_first_turn_and_after_one_whose_session_expired_mid_turn(redis_store):
    opened = redis_store.open_turn("s1", {"role": "user", "content": "q"})
    redis_store.close_turn("s1", turn=opened.turn, reply={"role": "assistant", "content": "a"},
                           record={"turn": opened.turn})  # creates the turn-record list
    assert set(_keys(redis_store, "s1")) == {"messages", "turns", "meta", "ids"}
    assert all(ttl > 0 for ttl in _keys(redis_store, "s1").values())

    for reply in ({"role": "assistant", "content": "late"}, None):  # the session expired while the model answered
        opened = redis_store.open_turn("s2", {"role": "user", "content": "q"})
        redis_store.client.delete(*redis_store.keys("s2"))
        redis_store.close_turn("s2", turn=opened.turn, reply=reply, record={"turn": opened.turn})
        ttls = _keys(redis_store, "s2")
        assert "turns" in ttls and all(ttl > 0 for ttl in ttls.values()), ttls
        assert "s2" in [row.id for row in redis_store.list_sessions()]
        redis_store.clear_history("s2")


def test_a_closing_write_refreshes_no_ttl_when_the_session_is_alive(redis_store):
    opened = redis_store.open_turn("s1", {"role": "user", "content": "q"})
    redis_store.close_turn("s1", turn=opened.turn, reply=None, record={"turn": opened.turn})
    opened = redis_store.open_turn("s1", {"role": "user", "content": "again"})
    short = 50
    for key in redis_store.keys("s1")[:5]:
        redis_store.client.expire(key, short)
    redis_store.close_turn("s1", turn=opened.turn, reply={"role": "assistant", "content": "a"},
                           record={"turn": opened.turn})
    assert all(0 < ttl <= short for ttl in _keys(redis_store, "s1").values())  # open_turn's refresh is the turn's


def test_the_listing_index_is_pruned_when_a_session_is_added(redis_store):
    index = redis_store.index_key
    redis_store.client.zadd(index, {"gone": time.time() - 5})
    redis_store.open_turn("old", {"role": "user", "content": "q"})
    assert redis_store.client.zscore(index, "gone") is None
    redis_store.client.zadd(index, {"gone": time.time() - 5})
    redis_store.open_turn("old", {"role": "user", "content": "again"})  # not a new session: no prune needed
    redis_store.open_turn("new", {"role": "user", "content": "q"})
    assert redis_store.client.zscore(index, "gone") is None
    assert {row.id for row in redis_store.list_sessions()} == {"old", "new"}


def test_open_turn_skips_and_logs_corrupt_entries(redis_store, caplog):
    redis_store.append("s1", {"role": "user", "content": "good"})
    redis_store.client.rpush(redis_store.key("s1", "messages"), "{not json")
    redis_store.client.rpush(redis_store.key("s1", "turns"), "\x00garbage")
    fresh = RedisStore(redis_store.client, prefix=redis_store.prefix)
    with caplog.at_level(logging.WARNING, logger="lib.sessions.redis.store"):
        opened = fresh.open_turn("s1", {"role": "user", "content": "q"}, newest_record=True)
    assert [m["content"] for m in opened.history] == ["good"] and opened.newest_record is None
    assert caplog.text.count("Skipping corrupt entry") == 2
    assert redis_store.client.llen(redis_store.key("s1", "messages")) == 3  # left in place


def test_ids_outlive_nothing_the_capped_lists_still_hold(valkey_server, redis_store):
    capped = RedisStore(valkey_server.url, prefix=redis_store.prefix, max_messages=6)
    capped.ids_kept = 12  # the stored 6 messages and 6 records: prunes from the third turn on
    stored = []
    for n in range(20):
        opened = capped.open_turn("s1", {"role": "user", "content": f"q{n}"})
        reply = capped.close_turn("s1", turn=opened.turn, reply={"role": "assistant", "content": f"a{n}"},
                                  record={"turn": opened.turn})
        stored += [opened.message, reply]
    history = capped.get_history("s1")
    assert [m["content"] for m in history] == [m["content"] for m in stored[-6:]]
    assert capped.client.zcard(capped.key("s1", "ids")) <= capped.ids_kept
    capped.append("s1", *history)  # every id still stored is still known: nothing is stored twice
    assert capped.get_history("s1") == history
    assert capped.open_turn("s1", stored[-2]).turn == 20  # a resent open_turn gets its number back


def test_a_session_of_the_previous_layout_keeps_its_counter_and_loses_its_old_keys(redis_store):
    client, key = redis_store.client, redis_store.key
    message = {"role": "user", "content": "from before", "id": "m1", "ts": 1.0}
    client.rpush(key("s1", "messages"), json.dumps(message))
    client.rpush(key("s1", "turns"), json.dumps({"turn": 41}))
    client.hset(key("s1", "meta"), mapping={"created_at": "1.0", "updated_at": "2.0", "title": "from before"})
    client.hset(key("s1", "state"), mapping={"epoch": "e-old", "turn_seq": 41, "messages:first": 3})
    client.zadd(key("s1", "message_ids"), {"m1": 3})
    client.zadd(key("s1", "turn_ids"), {"41": 0})
    client.zadd(key("s1", "begun"), {"m1": 41})
    for name in ("messages", "turns", "meta", "state", "message_ids", "turn_ids", "begun"):
        client.expire(key("s1", name), 500)
    assert redis_store.get_history("s1") == [message]  # a read migrates too
    assert set(_keys(redis_store, "s1")) == {"messages", "turns", "meta", "ids"}
    assert all(ttl > 0 for ttl in _keys(redis_store, "s1").values())
    opened = redis_store.open_turn("s1", {"role": "user", "content": "now"})
    assert opened.turn == 42 and opened.history == [message] and opened.meta["title"] == "from before"
    assert set(redis_store.get_meta("s1")) == {"created_at", "updated_at", "title"}
    assert set(_keys(redis_store, "s1")) == {"messages", "turns", "meta", "ids"}
    assert all(ttl > 500 for ttl in _keys(redis_store, "s1").values())
    assert redis_store.append("s1", message) == 2  # ids stored before are still known: nothing stored twice
    assert redis_store.append_turn("s1", {"turn": 41}) == 1
    assert redis_store.open_turn("s1", message).turn == 41  # a resent begin of the old layout keeps its number


def test_threads_sharing_one_store_keep_its_cache_exact(redis_store):
    """Turns from several threads of one process (an API server's worker threads) on one session: what the
    process's cache returns is exactly what a fresh read of the server returns, nothing lost or repeated."""
    def taker(name: str) -> None:
        for n in range(40):
            opened = redis_store.open_turn("shared", {"role": "user", "content": f"{name}{n}"})
            redis_store.close_turn("shared", turn=opened.turn, reply={"role": "assistant", "content": f"r{name}{n}"},
                                   record={"turn": opened.turn})
            redis_store.get_history("shared")

    threads = [threading.Thread(target=taker, args=(name,)) for name in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    fresh = RedisStore(redis_store.client, prefix=redis_store.prefix).get_history("shared")
    assert len(fresh) == 320 and len({m["id"] for m in fresh}) == 320
    assert redis_store.get_history("shared") == fresh
    assert redis_store.open_turn("shared", {"role": "user", "content": "last"}).history == fresh
