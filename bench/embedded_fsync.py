"""What durability costs per write on the embedded Valkey: AOF with appendfsync always vs everysec vs RDB only.

    uv run python bench/embedded_fsync.py           # starts its own embedded server in a temp data dir

One server, switched between policies with CONFIG SET; each row is the median of ROUNDS single-message
appends through RedisStore (one MULTI/EXEC each). bench/store.py can call ``report()`` to print the table.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.sessions import EmbeddedValkey, RedisStore  # noqa: E402

ROUNDS = 300
TEXT = ("History is re-sent on every request because the model keeps no state between calls. " * 4)[:300]
POLICIES = (  # (label, appendonly, appendfsync)
    ("AOF, appendfsync always (the default)", "yes", "always"),
    ("AOF, appendfsync everysec", "yes", "everysec"),
    ("RDB only (before issue 13)", "no", "everysec"),
)


def per_write_ms(store: RedisStore, session_id: str, rounds: int = ROUNDS) -> float:
    samples = []
    for n in range(rounds):
        start = time.perf_counter()
        store.append(session_id, {"role": "user", "content": f"{n}: {TEXT}"})
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def report(rounds: int = ROUNDS) -> dict[str, float]:
    """Print and return the median per-write cost (ms) of each persistence policy."""
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedValkey(Path(tmp) / "data")
        store = RedisStore(server.client(), prefix="bench", max_messages=1_000_000)
        try:
            print(f"embedded Valkey, ~300-character messages, median of {rounds} appends\n")
            for label, appendonly, fsync in POLICIES:
                server.start()
                store.client.config_set("appendonly", appendonly)
                store.client.config_set("appendfsync", fsync)
                results[label] = per_write_ms(store, f"s-{appendonly}-{fsync}", rounds)
                print(f"  {label:<40} {results[label]:7.3f} ms per write")
            always, rdb = results[POLICIES[0][0]], results[POLICIES[2][0]]
            print(f"\n  appendfsync always costs {always - rdb:+.3f} ms per acknowledged write ({always / rdb:.1f}x)")
        finally:
            server.stop(save=False)
    return results


if __name__ == "__main__":
    report()
