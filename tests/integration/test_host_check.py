"""Not open to the network by default, against a live `streamlit run app.py`:

- .streamlit/config.toml binds to 127.0.0.1 (the server is started without --server.address);
- a foreign Host header is refused on pages, /api and the websocket handshake at /_stcore/stream
  (DNS rebinding), while localhost, 127.0.0.1, [::1] and the names in ALLOWED_HOSTS are answered.
"""

from __future__ import annotations

import base64
import os
import socket
import tomllib
from collections.abc import Iterator

import pytest

from tests.support.app_server import ROOT, AppServer

pytestmark = pytest.mark.server

EXTRA_HOST = "lab.example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[AppServer]:
    tmp = tmp_path_factory.mktemp("hosts")
    app = AppServer(tmp / "data", tmp / "app.log", address=None, HISTORY_LAB_STORE="memory",
                    ALLOWED_HOSTS=EXTRA_HOST)
    app.start()
    yield app
    app.stop()


def raw_request(port: int, host: str, path: str, *, websocket: bool = False, origin: str | None = None) -> str:
    """The status line of one request with exactly this Host header (clients would fix it up)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    if origin is not None:
        lines.insert(2, f"Origin: {origin}")
    if websocket:
        key = base64.b64encode(os.urandom(16)).decode()
        lines[-1] = "Connection: Upgrade"
        lines += ["Upgrade: websocket", "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Key: {key}",
                  f"Origin: http://{host}"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_config_toml_binds_to_loopback():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


def test_server_started_from_the_config_listens_on_127_0_0_1_only(server):
    addresses = listening_addresses(server.port)
    assert addresses == {"0100007F"}  # 127.0.0.1 in /proc's little-endian hex; not 00000000 (every interface)


@pytest.mark.parametrize("path", ["/", "/_stcore/health", "/api/health"])
def test_foreign_host_is_refused_on_every_route(server, path):
    assert " 400 " in raw_request(server.port, "evil.example", path) + " "
    assert " 400 " in raw_request(server.port, f"evil.example:{server.port}", path) + " "


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", EXTRA_HOST])
def test_allowed_hosts_are_answered(server, host):
    assert raw_request(server.port, f"{host}:{server.port}", "/_stcore/health").startswith("HTTP/1.1 200")
    assert raw_request(server.port, host, "/api/health").startswith("HTTP/1.1 200")


def test_websocket_handshake_with_a_foreign_host_is_refused(server):
    good = raw_request(server.port, f"localhost:{server.port}", "/_stcore/stream", websocket=True)
    assert good.startswith("HTTP/1.1 101"), good  # the same request with a good Host upgrades
    bad = raw_request(server.port, "evil.example", "/_stcore/stream", websocket=True)
    assert not bad.startswith("HTTP/1.1 101") and bad.split()[1] in {"400", "403"}, bad


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", EXTRA_HOST])
def test_api_answers_its_own_origin_under_every_allowed_name_and_refuses_others(server, host):
    named = f"{host}:{server.port}"
    assert raw_request(server.port, named, "/api/health", origin=f"http://{named}").startswith("HTTP/1.1 200")
    for foreign in ("http://evil.example", "null", f"http://{host}:{server.port + 1}"):
        assert raw_request(server.port, named, "/api/health", origin=foreign).startswith("HTTP/1.1 403"), foreign
