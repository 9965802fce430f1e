"""The store's guarantees on a real Valkey: resent writes, atomic turn numbers, all-or-nothing imports, TTLs, URLs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

import lib.sessions.redis.importer as redis_import
from lib.core import redact_url, url_passwords
from lib.sessions import RedisStore, StoreError, StoreUnavailable
from tests.support.redis_fixtures import ValkeyProcess, start_valkey

pytestmark = pytest.mark.redis

STALL = 1.2  # seconds of DEBUG SLEEP: four times the client's socket timeout below
TIMEOUT = 0.3


@pytest.fixture(scope="module")
def own_server(tmp_path_factory) -> Iterator[ValkeyProcess]:
    """A server of our own: these tests stall it, fill its memory and read its command stats."""
    server = start_valkey(tmp_path_factory.mktemp("hardening"), "--enable-debug-command", "yes")
    yield server
    server.stop()


def _impatient_client(server: ValkeyProcess) -> redis.Redis:
    # Times out long before the stall ends, then resends: redis-py's normal behaviour behind the fault.
    return redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True, socket_timeout=TIMEOUT,
                       retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.2), retries=20))


def _during_a_stall(server: ValkeyProcess, write):
    stall = threading.Thread(target=lambda: server.client().execute_command("DEBUG", "SLEEP", STALL))
    stall.start()
    time.sleep(0.1)  # the server is now asleep; the write's first attempt will time out
    started = time.monotonic()
    try:
        return write()
    finally:
        stall.join(timeout=30)
        assert time.monotonic() - started > TIMEOUT  # the write did wait past a timeout (and was resent)


def test_a_resent_write_after_a_stall_is_not_stored_twice(own_server):
    client = _impatient_client(own_server)
    control_key = "control:list"
    client.delete(control_key)
    _during_a_stall(own_server, lambda: client.rpush(control_key, "x"))
    assert client.llen(control_key) == 2  # the fault: a plain RPUSH resent by redis-py is stored twice

    store = RedisStore(client, prefix="stall")
    store.append("warm", {"role": "user", "content": "loads the scripts"})
    _during_a_stall(own_server, lambda: store.append("s1", {"role": "user", "content": "once", "id": "m1"}))
    _during_a_stall(own_server, lambda: store.append_turn("s1", {"turn": 1}))
    stored, turn = _during_a_stall(own_server, lambda: store.begin_turn("s1", {"role": "user", "content": "q"}))
    assert [m["id"] for m in store.get_history("s1")] == ["m1", stored["id"]]
    assert store.get_turns("s1") == [{"turn": 1}]
    assert turn == 1 and store.begin_turn("s1", {"role": "user", "content": "next"})[1] == 2


def _turn_taker(url: str, prefix: str, writer: int, results) -> None:
    store = RedisStore(url, prefix=prefix)
    results.put([store.begin_turn("shared", {"role": "user", "content": f"{writer}:{n}"})[1] for n in range(50)])


def test_two_processes_taking_50_turns_each_get_unique_gap_free_numbers(valkey_server, redis_store, spawn_context):
    context = spawn_context
    results = context.Queue()
    processes = [context.Process(target=_turn_taker, args=(valkey_server.url, redis_store.prefix, w, results))
                 for w in range(2)]
    for process in processes:
        process.start()
    numbers = [n for _ in processes for n in results.get(timeout=120)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sorted(numbers) == list(range(1, 101))
    assert len(redis_store.get_history("shared")) == 100


def _session_keys(store: RedisStore, session_id: str) -> list[str]:
    return list(store.client.scan_iter(match=f"{store.prefix}:{{{session_id}}}:*"))


def test_an_import_that_runs_out_of_memory_leaves_nothing(own_server):
    store = RedisStore(own_server.url, prefix="oom")
    client = store.client
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", str(used + 300_000))
    try:
        messages = [{"role": "user", "content": "x" * 1_000} for _ in range(2_000)]
        with pytest.raises(StoreError, match="out of memory.*nothing was written") as raised:
            store.import_session("big", messages=messages, turns=[{"turn": n} for n in range(1, 1_001)])
        assert "xxxxxxxx" not in str(raised.value)  # the refused command's content is not quoted back
    finally:
        client.config_set("maxmemory", "0")
    assert _session_keys(store, "big") == [] and store.list_sessions() == []
    store.import_session("big", messages=messages[:10])  # with memory again, the same import works
    assert len(store.get_history("big")) == 10


def test_an_import_that_fails_just_before_renaming_leaves_nothing(redis_store, monkeypatch):
    redis_store.append("other", {"role": "user", "content": "unrelated"})

    def server_gone(*_args, **_kwargs):
        raise redis.ConnectionError("server went away")

    monkeypatch.setattr(redis_import, "commit", server_gone)
    with pytest.raises(StoreUnavailable, match="nothing was written"):
        redis_store.import_session("imp", messages=[{"role": "user", "content": "hi"}], turns=[{"turn": 1}])
    assert _session_keys(redis_store, "imp") == []  # the staging keys went too
    assert [row.id for row in redis_store.list_sessions()] == ["other"]


def test_every_key_has_a_ttl_after_begin_turn_and_import(redis_store):
    redis_store.begin_turn("s1", {"role": "user", "content": "x"})
    redis_store.import_session("s2", messages=[{"role": "user", "content": "y"}], turns=[{"turn": 1}],
                               meta={"k": "v"}, comparisons=[{"c": 1}])
    keys = list(redis_store.client.scan_iter(match=f"{redis_store.prefix}:*"))
    assert {f"{redis_store.prefix}:{{s1}}:begun", f"{redis_store.prefix}:{{s2}}:turn_ids"} <= set(keys)
    assert all(redis_store.client.ttl(key) > 0 for key in keys)


def _expire_calls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_expire", {}).get("calls", 0))


def test_a_turns_reads_send_no_expire_but_a_stale_read_still_refreshes(own_server):
    store = RedisStore(own_server.url, prefix="touch")
    store.begin_turn("s1", {"role": "user", "content": "q"})
    before = _expire_calls(store.client)
    store.get_history("s1"), store.get_turns("s1"), store.get_turns("s1", -1), store.get_meta("s1")
    assert _expire_calls(store.client) == before  # the write just refreshed every key
    eager = RedisStore(store.client, prefix="touch", touch_interval=0)
    eager.get_history("s1")
    assert _expire_calls(store.client) > before


@pytest.mark.parametrize(("url", "shown", "passwords"), [
    ("redis://h/0?password=PW-secret", "redis://h/0?password=***", ["PW-secret"]),
    ("unix:///x.sock?password=PW-secret&db=2", "unix:///x.sock?password=***&db=2", ["PW-secret"]),
    ("redis://admin:hunter2@127.0.0.1:6379/0", "redis://admin:***@127.0.0.1:6379/0", ["hunter2"]),
    ("redis://admin:hunter2@127.0.0.1:notaport/0", "redis://admin:***@127.0.0.1:notaport/0", ["hunter2"]),
    ("redis://u:hunter2@[::1/0?password=zz", "redis://u:***@[::1/0?password=***", ["hunter2", "zz"]),
    ("rediss://:p%40ss@h:99999", "rediss://:***@h:99999", ["p@ss"]),
    ("unix:///tmp/valkey.sock", "unix:///tmp/valkey.sock", []),
])
def test_redact_url_hides_every_password_and_never_raises(url, shown, passwords):
    assert redact_url(url) == shown
    assert url_passwords(url) == passwords
