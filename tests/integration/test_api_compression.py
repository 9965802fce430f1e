"""On the live server, the API's answers are not gzipped even for a client that accepts gzip (httpx, requests
and browsers all do by default): the server's gzip step, at level 9, cost a turn at 2,000 messages about
2.5 ms (lib.api.compression)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from tests.support.app_server import AppServer

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def port(tmp_path_factory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("compression")
    server = AppServer(tmp / "data", tmp / "app.log", HISTORY_LAB_STORE="memory")
    server.start()
    yield int(server.url.rsplit(":", 1)[1])
    server.stop()


def test_a_turn_answer_goes_out_uncompressed_to_a_client_that_accepts_gzip(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/api/chat", body=json.dumps({"message": "Hello"}),
                           headers={"Content-Type": "application/json", "Accept-Encoding": "gzip, deflate"})
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, body[:300]
        assert response.getheader("content-encoding") is None
        assert len(body) > 500  # over the size the server would otherwise have compressed
        assert json.loads(body)["reply"]
    finally:
        connection.close()
