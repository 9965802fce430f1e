"""Redis commands per chat turn, by command name, counted by the server (``INFO commandstats`` deltas).

    uv run python bench/commands_per_turn.py                          # this tree
    uv run python bench/commands_per_turn.py --compare-before HEAD~3  # REV (a temporary git worktree), then this tree
    uv run python bench/commands_per_turn.py --sizes 10,2000 --turns 5

For each checkout (in a child process whose ``PYTHONPATH`` is that checkout, so it runs its own ``lib``), this
starts a private valkey-server on 127.0.0.1 and the fake OpenAI-compatible server from ``tests/``, seeds one
session per size (messages alternating user/assistant, one turn record per user message), and measures:

- ``api offline`` and ``api openai-compatible``: ``POST /api/chat`` on the /api application in that process
  (the same routes ``streamlit run app.py`` serves, through an in-process ASGI transport), with the session's
  history already read once by the process, as on a server that has been answering that session; and
  ``api offline cache-aware``, whose turn also reads the previous turn's record (its cut);
- ``page offline``: the chat page (``app.py`` under ``streamlit.testing.v1.AppTest``) opened on the session,
  then one message sent: everything that page run does (sidebar, history, the turn, the timeline after it).
  AppTest runs the whole script where a browser reruns only the chat input's fragment, so the sidebar's
  reads (one TTL) count twice here: a browser's turn costs one command less.

Commands run inside scripts and MULTI/EXEC count one by one, as the server counts them; EVALSHA, MULTI and
EXEC count too. The goal is at most 20 commands per turn. Figures only, never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from checkouts import worktree  # this folder's bench/checkouts.py

ROOT = Path(__file__).resolve().parents[1]
GOAL = 20
TEXT = ("History is re-sent on every request because the model keeps no state between calls. " * 3)[:200]


# == measure mode: runs INSIDE the checkout being measured (PYTHONPATH = that checkout) =========================


def _command_calls(client: Any) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()
                    if name != "cmdstat_info"})


def _seed(url: str, prefix: str, session_id: str, size: int) -> None:
    from lib.sessions import RedisStore

    now = time.time() - size
    messages = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"{n}: {TEXT}", "id": uuid.uuid4().hex,
                 "ts": now + n} for n in range(size)]
    turns = [{"turn": n // 2 + 1, "ts": now + n, "user_id": messages[n]["id"], "strategy": "turns",
              "provider": "offline", "model": "offline", "budget": 80_000, "estimate": 100, "exact": 90}
             for n in range(0, size, 2)]
    store = RedisStore(url, prefix=prefix, max_messages=max(10_000, size * 2))
    store.import_session(session_id, messages=messages, turns=turns, meta={"system_prompt": ""})
    store.client.close()


def _api_turns(url: str, prefix: str, provider: str, size: int, turns: int, *,
               strategy: str = "turns") -> dict[str, Any]:
    import httpx2 as httpx
    import redis

    from lib.api import api_app

    app = api_app()
    client = redis.Redis.from_url(url, decode_responses=True)
    session_id = f"{provider.replace('-', '')}{strategy.replace('-', '')}{size}"
    _seed(url, prefix, session_id, size)

    async def post(body: dict[str, Any]) -> None:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=300) as http:
            response = await http.post("/chat", json=body)  # api_app is mounted at /api
            if response.status_code != 200:
                raise RuntimeError(f"POST /api/chat answered {response.status_code}: {response.text[:300]}")

    def one_turn(n: int) -> None:
        asyncio.run(post({"sessionId": session_id, "message": f"question {n}: {TEXT}", "provider": provider,
                          "model": "gpt-4o-mini" if provider != "offline" else None, "budget": 10_000_000,
                          "strategy": strategy}))

    one_turn(0)  # the process reads the session once (a server that has been answering it)
    per_turn: list[Counter[str]] = []
    for n in range(1, turns + 1):
        before = _command_calls(client)
        one_turn(n)
        per_turn.append(_command_calls(client) - before)
    client.close()
    return _summary(per_turn)


def _page_turns(url: str, prefix: str, size: int, turns: int) -> dict[str, Any]:
    import redis
    from streamlit.testing.v1 import AppTest

    client = redis.Redis.from_url(url, decode_responses=True)
    session_id = f"page{size}"
    _seed(url, prefix, session_id, size)
    at = AppTest.from_file(str(Path.cwd() / "app.py"), default_timeout=300)
    at.query_params["session"] = session_id
    at.run()
    per_turn: list[Counter[str]] = []
    for n in range(turns):
        before = _command_calls(client)
        at.chat_input(key="chat_input").set_value(f"page question {n}: {TEXT}").run()
        if at.exception:
            raise RuntimeError(f"the chat page raised: {at.exception}")
        per_turn.append(_command_calls(client) - before)
    client.close()
    return _summary(per_turn)


def _summary(per_turn: list[Counter[str]]) -> dict[str, Any]:
    total: Counter[str] = Counter()
    for counts in per_turn:
        total.update(counts)
    return {"turns": len(per_turn), "mean": sum(total.values()) / len(per_turn),
            "max": max(sum(c.values()) for c in per_turn),
            "by_command": {name: calls / len(per_turn) for name, calls in total.most_common()}}


def measure(sizes: list[int], turns: int, *, page: bool) -> dict[str, Any]:
    try:
        from tests.support.fake_llm import FakeLLM
        from tests.support.redis_fixtures import start_valkey
    except ImportError:  # a checkout from before tests/support/
        from tests.fake_llm import FakeLLM  # type: ignore[no-redef]
        from tests.redis_fixtures import start_valkey  # type: ignore[no-redef]

    directory = Path(tempfile.mkdtemp(prefix="hl-commands-"))
    server = start_valkey(directory)
    fake = FakeLLM().start()
    prefix = f"cmds-{uuid.uuid4().hex[:6]}"
    for name in ("HISTORY_LAB_STORE", "HISTORY_LAB_API_TOKEN", "REDIS_CLUSTER", "DEFAULT_PROVIDER", "OPENAI_API_KEY",
                 "ANTHROPIC_API_KEY", "TOKEN_BUDGET"):
        os.environ.pop(name, None)
    os.environ.update({"REDIS_URL": server.url, "REDIS_PREFIX": prefix, "OFFLINE_DELAY": "0",
                       "OPENAI_COMPATIBLE_BASE_URL": fake.openai_url, "OPENAI_COMPATIBLE_API_KEY": "sk-bench"})
    results: dict[str, Any] = {}
    try:
        for size in sizes:
            for provider in ("offline", "openai-compatible"):
                results[f"api {provider} @ {size:,}"] = _api_turns(server.url, prefix, provider, size, turns)
                fake.requests.clear()
            results[f"api offline cache-aware @ {size:,}"] = _api_turns(server.url, prefix, "offline", size, turns,
                                                                        strategy="cache-aware")
            if page:
                results[f"page offline @ {size:,}"] = _page_turns(server.url, prefix, size, turns)
    finally:
        fake.stop()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return results


# == driver: one child process per checkout, then the tables ==================================================


def run_checkout(checkout: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = Path(tempfile.mkstemp(prefix="hl-commands-", suffix=".json")[1])
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", str(out), "--sizes", args.sizes,
               "--turns", str(args.turns), *([] if args.page else ["--no-page"])]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    try:
        subprocess.run(command, cwd=checkout, env=env, check=True, timeout=args.timeout)
        results: dict[str, Any] = json.loads(out.read_text())
        return results
    finally:
        out.unlink(missing_ok=True)


def print_tables(runs: dict[str, dict[str, Any]]) -> None:
    labels = list(runs)
    cases = list(next(iter(runs.values())))
    for case in cases:
        print(f"\n{case}: commands per turn (mean of {runs[labels[-1]][case]['turns']} turns; max in brackets)")
        names = sorted({name for run in runs.values() for name in run[case]["by_command"]},
                       key=lambda name: -max(run[case]["by_command"].get(name, 0) for run in runs.values()))
        print(f"  {'command':<18}" + "".join(f"{label:>16}" for label in labels))
        for name in names:
            print(f"  {name:<18}" + "".join(f"{runs[label][case]['by_command'].get(name, 0):>16.1f}"
                                           for label in labels))
        print(f"  {'total':<18}" + "".join(
            f"{runs[label][case]['mean']:>9.1f} [{runs[label][case]['max']:>3}]" + " " * 2 for label in labels))
    print(f"\ngoal: at most {GOAL} commands per turn (counted by the server, script and transaction bodies included)")
    for label, run in runs.items():
        api = [case for case in run if case.startswith("api")]
        worst = max(run[case]["max"] for case in api)
        print(f"  {label}: worst POST /api/chat turn {worst} commands -> {'met' if worst <= GOAL else 'not met'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,2000", help="session sizes in messages, comma-separated")
    parser.add_argument("--turns", type=int, default=5, help="measured turns per case")
    parser.add_argument("--compare-before", metavar="REV", help="also measure REV (a temporary git worktree) first")
    parser.add_argument("--no-page", dest="page", action="store_false", help="skip the chat page (AppTest)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds each checkout's run may take")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: child mode, writes JSON
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    if not 1 <= args.turns <= 50 or not all(1 <= size <= 20_000 for size in sizes):
        parser.error("--turns must be 1..50 and each size 1..20,000")
    if args.measure:
        import logging

        # The checkout comes first, and bench/ (where pages.py would shadow the app's pages package) goes.
        here = Path(__file__).resolve().parent
        sys.path[:] = [str(Path.cwd()), *(p for p in sys.path if p and Path(p).resolve() != here)]

        logging.disable(logging.WARNING)  # the page's own logging would bury the figures
        args.measure.write_text(json.dumps(measure(sizes, args.turns, page=args.page)))
        return
    runs: dict[str, dict[str, Any]] = {}
    if args.compare_before:
        with worktree(args.compare_before) as before:
            runs[f"before {args.compare_before}"[:15]] = run_checkout(before, args)
    runs["this tree"] = run_checkout(ROOT, args)
    print_tables(runs)


if __name__ == "__main__":
    main()
