"""Trimming cost: the turn-aware default against the seed's trimHistory, at growing history sizes.

Run: uv run python bench/trimming.py [sizes...]   (default 1000 10000; add 50000 to see the seed's
quadratic growth, which takes minutes there)

Each history alternates user and assistant messages of varied length after one system prompt, and the
budget is half the history's size, so both strategies drop about half of it. "turns" is timed cold
(first tokenisation) and warm (per-text counts cached, as on every later rerun of a page), beside
"tiktoken alone": encoding every text once, the floor any exact trim pays. Tiktoken alone and cold are
the best of 5 interleaved runs, warm the best of 3. The growth exponent is the slope of log(time)
against log(size) between consecutive sizes: ~1 is linear, ~2 quadratic.
"""

from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.context import estimates_of, seed_cut, trim_history, trim_seed_literal  # noqa: E402
from lib.tokens import choose_encoding, clear_count_cache, count_chat_tokens, estimate_chat_tokens, load_encoding

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


def tiktoken_alone(messages: list[dict]) -> float:
    """The floor: encode every distinct wire text once with the loaded encoding, nothing else."""
    encoding = load_encoding(choose_encoding(MODEL).name)
    texts = {str(m[k]) for m in messages for k in ("role", "content") if m.get(k) is not None}

    def encode_all() -> None:
        for text in texts:  # the lengths only, as a count keeps: no list of token lists to allocate
            len(encoding.encode_ordinary(text))

    return timed(encode_all)


def cold_trim(messages: list[dict], budget: int) -> float:
    clear_count_cache()  # per-text counts forgotten; the encoding itself stays loaded, as in a running app
    return timed(lambda: trim_history(messages, budget, model=MODEL))


def main(sizes: list[int]) -> None:
    count_chat_tokens([{"role": "user", "content": "warm up"}], MODEL)  # load the encoding outside the timings
    rows = []
    for n in sizes:
        messages = history(n)
        budget = count_chat_tokens(messages, MODEL) // 2
        # Interleaved, so a busy moment on a shared machine hits both figures alike.
        pairs = [(tiktoken_alone(messages), cold_trim(messages, budget)) for _ in range(5)]
        alone, cold = min(a for a, _ in pairs), min(c for _, c in pairs)
        warm = min(timed(lambda m=messages, b=budget: trim_history(m, b, model=MODEL)) for _ in range(3))
        seed_budget = estimate_chat_tokens(messages) // 2
        print(f"  {n:>6} messages: tiktoken alone {alone * 1e3:.1f} ms, turns cold {cold * 1e3:.1f} ms, "
              f"warm {warm * 1e3:.1f} ms; running seed...", file=sys.stderr, flush=True)
        fast = timed(lambda m=messages, b=seed_budget: seed_cut(estimates_of(m), b))
        # The loop's cap is lifted on purpose: measuring its quadratic growth is the point here.
        seed = timed(lambda m=messages, b=seed_budget: trim_seed_literal(m, b, max_messages=len(m)))
        rows.append((n, alone, cold, warm, seed, fast))

    sizes_, _, colds, warms, seeds, _ = (list(col) for col in zip(*rows, strict=True))
    print(f"{'messages':>9} {'tiktoken':>10} {'turns cold':>11} {'cold/tk':>8} {'turns warm':>11} {'seed':>11} "
          f"{'seed fast':>10} {'exp cold':>9} {'exp warm':>9} {'exp seed':>9}")
    for i, (n, alone, cold, warm, seed, fast) in enumerate(rows):
        print(f"{n:>9,} {alone * 1e3:>8.1f}ms {cold * 1e3:>9.1f}ms {cold / alone:>7.2f}x {warm * 1e3:>9.1f}ms "
              f"{seed * 1e3:>9.1f}ms {fast * 1e3:>8.2f}ms {exponent(sizes_, colds)[i]:>9} "
              f"{exponent(sizes_, warms)[i]:>9} {exponent(sizes_, seeds)[i]:>9}")
    print("tiktoken = encode every distinct text once (the floor); cold = first trim with per-text counts")
    print("forgotten (goal: at most 1.5x tiktoken); warm = counts cached, as on every later rerun;")
    print("seed = the literal quadratic port (trim_seed_literal); seed fast = lib.context.seed.seed_cut on the same")
    print("history and budget (what trim_history(strategy='seed') runs);")
    print("exp = growth exponent between this size and the previous one (1 = linear, 2 = quadratic)")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 10_000])
