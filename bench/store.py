"""Per-turn store cost on a real valkey-server: ours (incremental reads, scripted writes) against the seed.

    uv run python bench/store.py            # starts its own valkey-servers; REDIS_URL to use another for part 1

Prints figures, asserts nothing. Four parts:
1. One turn at 10 / 100 / 1,000 / 5,000 stored messages (~300 characters each):
   - ours: get_history (warm cache: only the new tail) + begin_turn + append_messages(reply) + append_turn;
   - ours with a cold cache (a full read every turn, as with no read cache);
   - the seed: GET the whole JSON, append the user message and the reply, SETEX it back.
   Median of ROUNDS turns, growth ratio 10 -> 5,000, round trips and commands per turn (client side,
   and on the server including those run inside scripts and transactions), bytes sent per turn.
2. hiredis against redis-py's pure-Python RESP2 parser for an LRANGE of 5,000 messages (and the JSON decode).
3. The cost of one append under `appendfsync always`, `everysec` and `no`, each on its own server.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from redis._parsers import _HiredisParser, _RESP2Parser
from redis.client import Pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.sessions import RedisStore  # noqa: E402
from tests.support.redis_fixtures import ValkeyProcess, start_valkey  # noqa: E402

SIZES = (10, 100, 1_000, 5_000)
ROUNDS = 40
TEXT = ("History is re-sent on every request because the model keeps no state between calls. " * 4)[:300]


def message(n: int, role: str | None = None) -> dict[str, Any]:
    return {"role": role or ("user" if n % 2 == 0 else "assistant"), "content": f"{n}: {TEXT}",
            "id": uuid.uuid4().hex, "ts": time.time()}


def timed(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    """Median milliseconds of ``rounds`` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


# -- counting what a turn sends -------------------------------------------------------------------------


class Counter:
    """Round trips and commands the client sends (EVALSHA counts as one; a MULTI/EXEC block as its size)."""

    def __init__(self) -> None:
        self.round_trips = 0
        self.commands = 0

    @contextmanager
    def counting(self) -> Iterator[None]:
        single, batch = redis.Redis.execute_command, Pipeline.execute

        def execute_command(client: redis.Redis, *args: Any, **options: Any) -> Any:
            self.round_trips += 1
            self.commands += 1
            return single(client, *args, **options)

        def execute(pipe: Pipeline, raise_on_error: bool = True) -> list[Any]:
            self.round_trips += 1
            in_transaction = getattr(pipe, "transaction", False) is True  # the attribute, not the method
            self.commands += len(pipe.command_stack) + (2 if in_transaction else 0)
            return batch(pipe, raise_on_error)

        setattr(redis.Redis, "execute_command", execute_command)  # noqa: B010 (mypy refuses the plain form)
        setattr(Pipeline, "execute", execute)  # noqa: B010
        try:
            yield
        finally:
            setattr(redis.Redis, "execute_command", single)  # noqa: B010
            setattr(Pipeline, "execute", batch)  # noqa: B010


def server_figures(client: redis.Redis) -> tuple[int, int]:
    """(commands run by the server so far, bytes it has received), leaving out the INFO calls themselves."""
    stats = client.info("commandstats")
    commands = sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")
    return commands, int(client.info("stats")["total_net_input_bytes"])


def per_turn(client: redis.Redis, turn: Callable[[], object], rounds: int) -> tuple[float, float, float, float]:
    """(client round trips, client commands, server commands, bytes sent) per turn, averaged over ``rounds``."""
    counter = Counter()
    commands, received = server_figures(client)
    with counter.counting():
        for _ in range(rounds):
            turn()
    commands_after, received_after = server_figures(client)
    return (counter.round_trips / rounds, counter.commands / rounds, (commands_after - commands) / rounds,
            (received_after - received) / rounds)


# -- part 1: one turn ---------------------------------------------------------------------------------------


def ours_turn(store: RedisStore, sid: str) -> Callable[[], None]:
    def turn() -> None:
        history = store.get_history(sid)
        _, number = store.begin_turn(sid, message(len(history), "user"))
        reply = store.append_messages(sid, message(len(history) + 1, "assistant"))[0]
        store.append_turn(sid, {"turn": number, "sent": [[history[0]["id"] if history else "", reply["id"]]],
                                "sent_count": len(history) + 1, "strategy": "turns", "budget": 80_000,
                                "estimate": 1234, "exact": 1200, "provider": "offline", "model": "offline"})
    return turn


def cold_turn(store: RedisStore, sid: str) -> Callable[[], None]:
    """Our turn with a full read first, as every turn did before the incremental cache."""
    turn = ours_turn(store, sid)

    def cold() -> None:
        RedisStore(store.client, prefix=store.prefix, max_messages=store.max_messages).get_history(sid)
        turn()
    return cold


def seed_turn(client: redis.Redis, key: str) -> Callable[[], None]:
    # The seed's pattern: read everything, parse, push, write everything back (and lose concurrent appends).
    def turn() -> None:
        history = json.loads(client.get(key) or "[]")
        history += [message(len(history), "user"), message(len(history) + 1, "assistant")]
        client.set(key, json.dumps(history), ex=86_400)  # SETEX; redis-py deprecates the setex() spelling
    return turn


def measure_turns(url: str) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    store = RedisStore(url, prefix=prefix, max_messages=1_000_000)
    client = store.client
    assert isinstance(client, redis.Redis)
    print(f"server {url}   round trip {timed(client.ping, 200) * 1000:.0f} µs   median of {ROUNDS} turns per size\n")
    print(f"{'messages':>9} | {'ours':>8} {'ours cold':>9} {'seed':>8} | {'ours':>34} | {'seed':>18} | "
          f"{'bytes sent':>17}")
    print(f"{'':>9} | {'ms/turn':>8} {'ms/turn':>9} {'ms/turn':>8} | {'trips cmds server-cmds':>34} | "
          f"{'trips server-cmds':>18} | {'ours':>8} {'seed':>8}")
    results: dict[int, tuple[float, float, float]] = {}
    for size in SIZES:
        sid, seed_key = f"s{size}", f"{prefix}:seed:{size}"
        history = [message(n) for n in range(size)]
        store.import_session(sid, messages=history)
        client.set(seed_key, json.dumps(history), ex=86_400)
        turn = ours_turn(store, sid)
        turn()  # warms the cache (and loads the scripts)
        ours = timed(turn)
        ours_cold, seed = timed(cold_turn(store, sid)), timed(seed_turn(client, seed_key))
        trips, commands, server_commands, sent = per_turn(client, turn, 10)
        seed_trips, _, seed_server, seed_sent = per_turn(client, seed_turn(client, seed_key), 10)
        results[size] = (ours, ours_cold, seed)
        print(f"{size:>9,} | {ours:>8.3f} {ours_cold:>9.3f} {seed:>8.3f} | {trips:>10.0f} {commands:>5.0f} "
              f"{server_commands:>17.0f} | {seed_trips:>5.0f} {seed_server:>12.0f} | {sent:>8,.0f} {seed_sent:>8,.0f}")
        store.clear_history(sid)
        client.delete(seed_key)
    first, last = results[SIZES[0]], results[SIZES[-1]]
    print(f"\ngrowth {SIZES[0]} -> {SIZES[-1]:,} messages: ours x{last[0] / first[0]:.1f} (goal: within x2), "
          f"ours cold x{last[1] / first[1]:.1f}, seed x{last[2] / first[2]:.1f}")
    print(f"at {SIZES[-1]:,} messages the seed's turn costs x{last[2] / last[0]:.1f} ours")


# -- part 2: parsers ----------------------------------------------------------------------------------------


def measure_parsers(server: ValkeyProcess) -> None:
    key = f"bench-parser:{uuid.uuid4().hex[:6]}"
    writer = server.client()
    writer.rpush(key, *[json.dumps(message(n)) for n in range(5_000)])
    print(f"\nLRANGE of 5,000 messages ({sum(len(e) for e in writer.lrange(key, 0, -1)):,} bytes), median of 30:")
    figures = {}
    for name, parser in (("hiredis", _HiredisParser), ("pure Python", _RESP2Parser)):
        pool = redis.ConnectionPool(host="127.0.0.1", port=server.port, decode_responses=True, parser_class=parser)
        client = redis.Redis(connection_pool=pool)
        figures[name] = timed(functools.partial(client.lrange, key, 0, -1), 30)
        print(f"  {name:<12} {figures[name]:7.2f} ms")
        client.close()
    raw = writer.lrange(key, 0, -1)
    decode = timed(lambda: [json.loads(entry) for entry in raw], 30)
    print(f"  hiredis is x{figures['pure Python'] / figures['hiredis']:.1f} faster; json.loads of the 5,000 "
          f"entries takes {decode:.2f} ms more (done once per process with the incremental cache)")
    writer.delete(key)


# -- part 3: appendfsync ------------------------------------------------------------------------------------


def aof_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*.aof*") if f.is_file())


def measure_fsync(root: Path) -> None:
    print(f"\nOne append (one message) with AOF on, median of 200, data in {root} (same disk as the app's .data):")
    for mode in ("always", "everysec", "no"):
        directory = root / mode
        server = start_valkey(directory, "--appendonly", "yes", "--appendfsync", mode)
        try:
            store = RedisStore(server.url, prefix="fsync")
            store.append("s1", message(0))
            before = aof_bytes(directory)
            cost = timed(functools.partial(store.append, "s1", message(1)), 200)
            grown = (aof_bytes(directory) - before) / 200
            print(f"  appendfsync {mode:<9} {cost:7.3f} ms per write   {grown:,.0f} AOF bytes per write")
        finally:
            server.stop()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-valkey-") as temp:
        root = Path(temp)
        server = start_valkey(root / "main")
        try:
            measure_turns(os.environ.get("REDIS_URL") or server.url)
            measure_parsers(server)
        finally:
            server.stop()
        measure_fsync(root / "fsync")


if __name__ == "__main__":
    main()
