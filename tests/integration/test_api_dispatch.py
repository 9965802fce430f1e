"""On the live server, /api is served past the pages' middleware (lib.api.dispatch): its answers are not
gzipped even for a client that accepts gzip (httpx, requests and browsers all do by default; the pages'
gzip step, at level 9, cost a turn at 2,000 messages about 2.5 ms), the Host check still applies, and the
pages keep their own middleware."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from tests.support.app_server import AppServer

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def port(tmp_path_factory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("dispatch")
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


def _get(port: int, path: str, **headers: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_the_host_check_still_applies_to_the_api_and_unknown_api_paths_are_json_404s(port):
    assert _get(port, "/api/health").status == 200
    assert _get(port, "/api/health", Host="evil.example").status == 400
    missing = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    missing.request("GET", "/api/nope")
    response = missing.getresponse()
    assert response.status == 404 and json.loads(response.read())["error"]["type"] == "not_found"
    missing.close()


def test_the_pages_keep_their_own_middleware(port):
    # Streamlit's path check still answers for its routes, and its gzip step still compresses what it serves.
    assert _get(port, "//server/share").status == 400
    assert _get(port, "/_stcore/health").status == 200
