"""Redis commands per chat turn, counted by the server (``INFO commandstats``): at most 20, one TTL refresh per key.

A count, not a timing: every command the server runs for one ``POST /api/chat`` turn, those inside scripts
and transactions included, on a Valkey of its own so nothing else is counted. bench/commands_per_turn.py
prints the same figures by command name.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
import redis

from lib.api import api_app
from lib.sessions import RedisStore
from tests.support.fake_llm import FakeLLM
from tests.support.redis_fixtures import ValkeyProcess, start_valkey

pytestmark = pytest.mark.redis
GOAL = 20


@pytest.fixture(scope="module")
def own_server(tmp_path_factory) -> Iterator[ValkeyProcess]:
    server = start_valkey(tmp_path_factory.mktemp("commands"))
    yield server
    server.stop()


def _calls(client: redis.Redis) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()
                    if name != "cmdstat_info"})


def _seed(url: str, prefix: str, session_id: str, size: int) -> None:
    messages = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"message {n}", "id": uuid.uuid4().hex,
                 "ts": 1_700_000_000.0 + n} for n in range(size)]
    turns = [{"turn": n // 2 + 1, "user_id": messages[n]["id"], "strategy": "cache-aware", "cut": None}
             for n in range(0, size, 2)]
    store = RedisStore(url, prefix=prefix)
    store.import_session(session_id, messages=messages, turns=turns, meta={"system_prompt": ""})
    store.client.close()


@pytest.mark.parametrize("provider", ["offline", "openai-compatible"])
def test_a_chat_turn_costs_at_most_20_redis_commands(own_server, monkeypatch, provider):
    fake = FakeLLM().start()
    prefix = f"cmds-{uuid.uuid4().hex[:8]}"
    for name in ("HISTORY_LAB_STORE", "HISTORY_LAB_API_TOKEN", "REDIS_CLUSTER", "DEFAULT_PROVIDER", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"REDIS_URL": own_server.url, "REDIS_PREFIX": prefix, "OFFLINE_DELAY": "0",
                        "OPENAI_COMPATIBLE_BASE_URL": fake.openai_url, "OPENAI_COMPATIBLE_API_KEY": "sk-test"}.items():
        monkeypatch.setenv(name, value)
    app = api_app()
    client = own_server.client()

    async def post(body: dict[str, Any]) -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=120) as http:
            response = await http.post("/chat", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def counted_turn(session_id: str | None, strategy: str) -> tuple[str, Counter[str]]:
        before = _calls(client)
        body = asyncio.run(post({"message": "What did I say first?", "provider": provider, "strategy": strategy,
                                 "budget": 1_000_000, **({"sessionId": session_id} if session_id else {}),
                                 **({"model": "gpt-4o-mini"} if provider != "offline" else {})}))
        return body["sessionId"], _calls(client) - before

    try:
        counts: dict[str, Counter[str]] = {}
        counted_turn(None, "turns")  # the process opens its store and loads the scripts: not a turn's cost
        session_id, counts["a new session's first turn"] = counted_turn(None, "turns")
        counts["its second turn"] = counted_turn(session_id, "turns")[1]
        for size in (10, 2_000):
            seeded = f"seeded{size}{provider.replace('-', '')}"
            _seed(own_server.url, prefix, seeded, size)
            counted_turn(seeded, "turns")  # this process reads the session once, as a server answering it has
            for n in range(2):
                counts[f"turn {n + 1} at {size:,} messages"] = counted_turn(seeded, "turns")[1]
            counts[f"a cache-aware turn at {size:,} messages"] = counted_turn(seeded, "cache-aware")[1]
        over = {case: dict(c) for case, c in counts.items() if sum(c.values()) > GOAL}
        assert not over, f"more than {GOAL} Redis commands in a turn: {over}"
        # The TTL is refreshed once per turn, in one place: one EXPIRE per session key plus the index (and, in a
        # session's first turn, one for the turn-record list its closing write creates).
        expires = {case: c["expire"] for case, c in counts.items()}
        assert expires.pop("a new session's first turn") <= 6 and all(n <= 5 for n in expires.values()), expires
        # The session's meta is read once per turn, by the turn's opening script (which also checks the settings
        # this server decided from): no separate read before it on a session this server has answered.
        reads = {case: c["hgetall"] for case, c in counts.items()}
        assert all(n == 1 for n in reads.values()), reads
        # Nor is the history read back: this server holds it, the messages its own turns stored included.
        tails = {case: c["lrange"] for case, c in counts.items()}
        assert not any(tails.values()), tails
    finally:
        fake.stop()
        client.close()
