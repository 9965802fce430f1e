"""Per-turn store cost: RedisStore (RPUSH + EXPIRE in MULTI/EXEC) against the seed (GET + SETEX of the JSON).

    uv run python bench/store.py            # starts its own valkey-server; REDIS_URL to use another

Both run on the same server in one run, with ~300-character messages, at 10 / 100 / 1,000 / 5,000 stored
messages. "write" is the store's own work for one turn; "turn" adds the history read every turn needs.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.sessions import RedisStore  # noqa: E402
from tests.redis_fixtures import start_valkey  # noqa: E402

SIZES = (10, 100, 1_000, 5_000)
ROUNDS = 40
TEXT = ("History is re-sent on every request because the model keeps no state between calls. " * 4)[:300]


def message(n: int) -> dict:
    return {"role": "user" if n % 2 == 0 else "assistant", "content": f"{n}: {TEXT}", "id": uuid.uuid4().hex,
            "ts": time.time()}


def seed_write(client, key: str, new: dict) -> None:
    # The seed's pattern: read everything, parse, push, write everything back (and lose concurrent appends).
    history = json.loads(client.get(key) or "[]")
    history.append(new)
    client.set(key, json.dumps(history), ex=86_400)  # SETEX; redis-py deprecates the setex() spelling


def timed(fn, rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def run(url: str) -> None:
    store = RedisStore(url, prefix=f"bench-{uuid.uuid4().hex[:6]}", max_messages=1_000_000)
    client = store.client
    rtt = timed(client.ping, 200)
    print(f"server {url}   round trip {rtt * 1000:.0f} µs   median of {ROUNDS} turns per size\n")
    print(f"{'messages':>9} | {'ours write':>10} {'seed write':>10} {'ratio':>6} | {'ours turn':>9} {'seed turn':>9} "
          f"{'ratio':>6} | {'ours bytes':>10} {'seed bytes':>11}")
    for size in SIZES:
        measure(store, size)


def measure(store: RedisStore, size: int) -> None:
    client = store.client
    sid, seed_key = f"s{size}", f"seed:{size}"
    history = [message(n) for n in range(size)]
    store.append(sid, *history)
    client.set(seed_key, json.dumps(history), ex=86_400)
    # Bytes written for one turn at this size (the timed rounds below grow both histories a little).
    sent = {"ours": len(json.dumps(message(size)).encode()),
            "seed": len(json.dumps([*history, message(size)]).encode())}

    def ours_write() -> None:
        store.append(sid, message(size))

    def seed_only() -> None:
        seed_write(client, seed_key, message(size))

    def ours_turn() -> None:
        store.get_history(sid)
        ours_write()

    ow, sw = timed(ours_write), timed(seed_only)
    ot, st = timed(ours_turn), timed(seed_only)  # the seed's read is part of its write
    print(f"{size:>9,} | {ow:>8.3f}ms {sw:>8.3f}ms {sw / ow:>5.1f}x | {ot:>7.3f}ms {st:>7.3f}ms {st / ot:>5.1f}x | "
          f"{sent['ours']:>10,} {sent['seed']:>11,}")
    store.clear_history(sid)
    client.delete(seed_key)


def main() -> None:
    if os.environ.get("REDIS_URL"):
        run(os.environ["REDIS_URL"])
        return
    server = start_valkey(Path(tempfile.mkdtemp(prefix="bench-valkey-")))
    try:
        run(server.url)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
