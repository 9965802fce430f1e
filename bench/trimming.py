"""Trimming cost: the turn-aware default against the seed's trimHistory, at growing history sizes.

Run: uv run python bench/trimming.py [sizes...]   (default 1000 10000 50000; the seed takes minutes at 50k)

Each history alternates user and assistant messages of varied length after one system prompt, and the
budget is half the history's size, so both strategies drop about half of it. "turns" is timed cold
(first tokenisation) and warm (per-text counts cached, as on every later rerun of a page). The growth
exponent is the slope of log(time) against log(size) between consecutive sizes: ~1 is linear, ~2 quadratic.
"""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.tokens import _count, count_chat_tokens, estimate_chat_tokens  # noqa: E402
from lib.trimming import trim_history  # noqa: E402

MODEL = "gpt-4o-mini"
WORDS = "history tokens budget payload store turn model context window trim seed redis".split()


def history(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    messages = [{"id": "sys", "role": "system", "content": "You are a concise assistant."}]
    for i in range(n - 1):
        role = "user" if i % 2 == 0 else "assistant"
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60)))
        messages.append({"id": f"m{i}", "role": role, "content": f"{i}: {text}"})
    if messages[-1]["role"] != "user":
        messages.append({"id": "last", "role": "user", "content": "And finally?"})
    return messages


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def exponent(sizes: list[int], times: list[float]) -> list[str]:
    out = ["-"]
    for (n0, t0), (n1, t1) in zip(zip(sizes, times, strict=True), zip(sizes[1:], times[1:], strict=True),
                                  strict=False):
        out.append(f"{math.log(t1 / t0) / math.log(n1 / n0):.2f}")
    return out


def main(sizes: list[int]) -> None:
    count_chat_tokens([{"role": "user", "content": "warm up"}], MODEL)  # load the encoding outside the timings
    rows = []
    for n in sizes:
        messages = history(n)
        _count.cache_clear()
        cold = timed(lambda m=messages: trim_history(m, count_chat_tokens(m, MODEL) // 2, model=MODEL))
        warm = min(timed(lambda m=messages: trim_history(m, count_chat_tokens(m, MODEL) // 2, model=MODEL))
                   for _ in range(3))
        seed_budget = estimate_chat_tokens(messages) // 2
        print(f"  {n:>6} messages: turns cold {cold * 1e3:.1f} ms, warm {warm * 1e3:.1f} ms; running seed...",
              file=sys.stderr, flush=True)
        seed = timed(lambda m=messages, b=seed_budget: trim_history(m, b, model=MODEL, strategy="seed"))
        rows.append((n, cold, warm, seed))

    sizes_, colds, warms, seeds = (list(col) for col in zip(*rows, strict=True))
    print(f"{'messages':>9} {'turns cold':>12} {'turns warm':>12} {'seed':>12} {'seed/warm':>10} "
          f"{'exp cold':>9} {'exp warm':>9} {'exp seed':>9}")
    for i, (n, cold, warm, seed) in enumerate(rows):
        print(f"{n:>9,} {cold * 1e3:>10.1f}ms {warm * 1e3:>10.1f}ms {seed * 1e3:>10.1f}ms {seed / warm:>9.0f}x "
              f"{exponent(sizes_, colds)[i]:>9} {exponent(sizes_, warms)[i]:>9} {exponent(sizes_, seeds)[i]:>9}")
    print("exp = growth exponent between this size and the previous one (1 = linear, 2 = quadratic)")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 10_000, 50_000])
