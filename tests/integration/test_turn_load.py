"""Load over SSE against a live `streamlit run app.py`: many slow provider streams cannot starve the server,
and once their clients leave no provider connection stays open. The provider is tests/support/hostile_llm.py, which
sends one token a second and counts the connections it holds."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from lib.core import MAX_CONCURRENT_TURNS
from tests.support.app_server import AppServer
from tests.support.hostile_llm import HostileLLM

pytestmark = pytest.mark.server

CLIENTS = 40
FIRST_ANSWER_S = 10.0  # each client gets a delta or a 503 within this
CLOSED_S = 10.0  # after the clients leave, every provider connection is closed within this


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[AppServer, HostileLLM]]:
    hostile = HostileLLM().start()
    server = AppServer(tmp_path / "data", tmp_path / "app.log", OPENAI_COMPATIBLE_BASE_URL=hostile.openai_url,
                       DEFAULT_PROVIDER="openai-compatible", PROVIDER_MAX_RETRIES="0")
    server.start()
    try:
        yield server, hostile
    finally:
        server.stop()
        hostile.stop()


async def _client(http: httpx.AsyncClient, sid: str, outcome: asyncio.Future[tuple[str, float, Any]],
                  leave: asyncio.Event) -> None:
    """One SSE turn: report its first answer (a delta or a 503), keep the stream open until told to leave."""
    started = time.monotonic()
    body = {"message": "Tell me a long story", "model": "slow", "sessionId": sid, "stream": True}
    try:
        async with http.stream("POST", "/api/chat", json=body) as response:
            if response.status_code != 200:
                data = (await response.aread()).decode()
                outcome.set_result((f"status {response.status_code}", time.monotonic() - started, data))
                return
            # Held, not left with `break`: a dropped line iterator is finalised later and hangs up early.
            lines = response.aiter_lines()
            while not outcome.done():
                line = await anext(lines)
                if line.startswith("event: "):
                    outcome.set_result((line[len("event: "):], time.monotonic() - started, None))
            await leave.wait()  # the client stays until every client has its first answer; then all hang up
            await lines.aclose()
    except Exception as exc:  # noqa: BLE001 - reported as this client's outcome
        if not outcome.done():
            outcome.set_result((f"failed: {exc!r}", time.monotonic() - started, None))


async def _load(url: str) -> tuple[list[tuple[str, float, Any]], float]:
    """Each client's (first answer, seconds to it, session id or 503 body), and when the clients were told
    to leave (time.monotonic())."""
    limits = httpx.Limits(max_connections=CLIENTS + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(60), limits=limits) as http:
        loop = asyncio.get_running_loop()
        leave = asyncio.Event()
        outcomes = [loop.create_future() for _ in range(CLIENTS)]
        sessions = [uuid.uuid4().hex for _ in range(CLIENTS)]
        tasks = [asyncio.create_task(_client(http, sid, outcome, leave))
                 for sid, outcome in zip(sessions, outcomes, strict=True)]
        done, _ = await asyncio.wait(outcomes, timeout=FIRST_ANSWER_S + 5)
        results = [o.result() if o in done else ("nothing", float("inf"), None) for o in outcomes]
        leave.set()
        left = time.monotonic()
        for task in tasks:
            task.cancel()  # a client still waiting for its first answer gives up too
        await asyncio.wait(tasks, timeout=30)
        return [(kind, took, sid) if kind == "delta" else (kind, took, data)
                for (kind, took, data), sid in zip(results, sessions, strict=True)], left


def test_forty_slow_streams_each_get_a_delta_or_a_503_and_no_provider_connection_outlives_its_client(live):
    server, hostile = live
    # One ordinary turn first, so the figures below are those of a running server, not of its first import.
    warm = httpx.post(f"{server.url}/api/chat", json={"message": "Hi", "model": "normal"}, timeout=60)
    assert warm.status_code == 200, warm.text
    results, left = asyncio.run(_load(server.url))

    deltas = [r for r in results if r[0] == "delta"]
    busy = [r for r in results if r[0] == "status 503"]
    others = [r for r in results if r[0] not in ("delta", "status 503")]
    slowest_delta = max(took for _, took, _ in deltas)
    slowest_busy = max((took for _, took, _ in busy), default=0.0)
    print(f"\n{CLIENTS} slow streams: {len(deltas)} got a delta (slowest after {slowest_delta:.2f} s), "
          f"{len(busy)} got a 503 (slowest after {slowest_busy:.2f} s), {len(others)} neither")
    assert not others, others[:3]
    assert all(took <= FIRST_ANSWER_S for _, took, _ in results), sorted(took for _, took, _ in results)[-5:]
    assert len(deltas) == min(CLIENTS, MAX_CONCURRENT_TURNS)
    for _, _, data in busy:
        assert '"type":"server_busy"' in data and "MAX_CONCURRENT_TURNS" in data
    # The refused turns never reached the provider: one request per stream that got a delta, plus the warm-up.
    assert hostile.requests == len(deltas) + 1

    closed = hostile.wait_closed(CLOSED_S)
    print(f"{hostile.open_connections} provider connections open {time.monotonic() - left:.2f} s after the clients "
          "were told to leave")
    assert closed, f"{hostile.open_connections} provider connections still open {CLOSED_S} s after the clients left"

    # Each turn that was running is recorded as interrupted, and the pool has room again.
    with httpx.Client(base_url=server.url, timeout=30) as http:
        deadline = time.monotonic() + 30
        for _, _, sid in deltas[:5]:
            while True:
                turns = http.get(f"/api/chat/{sid}").json()["turns"]
                if turns or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert [t.get("error_type") for t in turns] == ["TurnInterrupted"], turns
        again = http.post("/api/chat", json={"message": "Hi", "model": "normal"})
        assert again.status_code == 200, again.text
