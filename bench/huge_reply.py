"""Huge replies: a 5 MB reply in 1 KB deltas, before and after the reply text is joined once and capped.

Run: uv run python bench/huge_reply.py [--before REV] [--mb 5] [--delta 1024] [--repeat 3]

REV (default b14da12, the last commit before the reply cap) is exported with ``git archive`` into a temporary
folder (nothing in this repository changes) and measured in a fresh process, then this tree. Each process
runs one turn through ``lib.chat.conversation.run_turn`` into a MemoryStore, two ways:

- **in-process**: a provider that yields the deltas from memory, so the figure is the accumulation and the
  saving alone;
- **SDK**: the ``openai-compatible`` provider (the real openai SDK) against tests/support/hostile_llm.py's "huge"
  mode on 127.0.0.1, as a misbehaving server would send it.

This tree is run twice: with its default cap (MAX_REPLY_CHARS), and with the cap lifted, to show what
joining once alone changes. Each figure is the best of ``--repeat`` runs; every process is bounded by
``--timeout`` seconds, and a run that exceeds it is printed as such.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BEFORE = "b14da12"


# -- measured in a child process (its sys.path points at the tree being measured) -------------------------


def _measure(mb: float, delta_chars: int, repeat: int, *, capped: bool) -> dict[str, Any]:
    from lib.chat import TurnRequest, run_turn
    from lib.providers import Provider, get_provider
    from lib.sessions import MemoryStore
    from tests.support.hostile_llm import HostileLLM

    try:
        from lib.core import Settings
    except ImportError:  # a tree from before the layered layout
        from lib.config import Settings  # type: ignore[no-redef]

    total = int(mb * 1_000_000)
    count = total // delta_chars

    class Chunks(Provider):
        name = "chunks"
        default_model = "m"

        def __init__(self, count: int) -> None:
            super().__init__()
            self.count = count

        def build_request(self, messages: Any, *, model: str, max_tokens: int, options: Any) -> dict[str, Any]:
            return {"model": model}

        def open_stream(self, request: dict[str, Any]) -> Any:
            block = "x" * delta_chars
            return (block for _ in range(self.count))

        def handle_event(self, event: Any, reply: Any) -> str:
            reply.stop_reason = "stop"
            return str(event)

    options: dict[str, Any] = {} if capped else {"max_reply_chars": None}
    try:
        TurnRequest(user_text="x", **options)
    except TypeError:  # a tree before the cap: nothing to lift
        options = {}
    figures: dict[str, Any] = {}
    run_turn(MemoryStore(), Chunks(1), TurnRequest(user_text="Hi", model="m"))  # loads the encoding: not timed
    hostile = HostileLLM().start()
    hostile.huge_chars, hostile.delta_chars = total, delta_chars
    try:
        sdk = get_provider("openai-compatible", Settings(), base_url=hostile.openai_url, max_retries=0)
        for name, provider, model in (("in-process", Chunks(count), "m"), ("SDK", sdk, "huge")):
            best, stored = float("inf"), 0
            for _ in range(repeat):
                store = MemoryStore()
                started = time.perf_counter()
                result = run_turn(store, provider, TurnRequest(user_text="Hi", model=model, **options))
                best = min(best, time.perf_counter() - started)
                if result.error is not None:
                    raise RuntimeError(f"{name}: {result.error}")
                stored = len(store.get_history(result.session_id)[1]["content"])
            figures[name] = {"seconds": best, "stored": stored}
    finally:
        hostile.stop()
    return figures


# -- the parent: export REV, run each tree in its own process -------------------------------------------


def _export(rev: str, into: Path) -> Path:
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "lib"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def _run(tree: Path, args: argparse.Namespace, *, capped: bool) -> dict[str, Any] | str:
    # The tree's lib first, then this repository for tests.support.hostile_llm (which the old tree may not have).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT)])}
    command = [sys.executable, str(Path(__file__)), "--child", str(tree), "--mb", str(args.mb), "--delta",
               str(args.delta), "--repeat", str(args.repeat), *([] if capped else ["--uncapped"])]
    try:
        done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, timeout=args.timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return f"did not finish within {args.timeout:g} s"
    if done.returncode != 0:
        return f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default=DEFAULT_BEFORE, help="the revision measured as 'before'")
    parser.add_argument("--mb", type=float, default=5.0, help="reply size in MB (millions of characters)")
    parser.add_argument("--delta", type=int, default=1024, help="characters per delta")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is printed")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per tree")
    parser.add_argument("--child", metavar="TREE", help=argparse.SUPPRESS)  # measure TREE's lib, print JSON
    parser.add_argument("--uncapped", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path[:0] = [args.child, str(ROOT)]
        print(json.dumps(_measure(args.mb, args.delta, args.repeat, capped=not args.uncapped)))
        return
    print(f"A {args.mb:g} MB reply in {args.delta:,}-character deltas "
          f"({int(args.mb * 1_000_000) // args.delta:,} deltas), one turn into a MemoryStore; best of {args.repeat}.")
    with tempfile.TemporaryDirectory(prefix="hl-huge-") as tmp:
        rows = [(f"before ({args.before}: joined per delta, no cap)", _run(_export(args.before, Path(tmp)), args,
                                                                         capped=True)),
                ("after (joined once, capped at MAX_REPLY_CHARS)", _run(ROOT, args, capped=True)),
                ("after, cap lifted (joined once only)", _run(ROOT, args, capped=False))]
    width = max(len(label) for label, _ in rows)
    print(f"{'':{width}}  {'in-process':>22}  {'SDK + hostile server':>22}")
    for label, figures in rows:
        if isinstance(figures, str):
            print(f"{label:{width}}  {figures}")
            continue
        cells = [f"{figures[k]['seconds']:7.3f} s {figures[k]['stored']:>11,} ch" for k in ("in-process", "SDK")]
        print(f"{label:{width}}  {cells[0]:>22}  {cells[1]:>22}")


if __name__ == "__main__":
    main()
