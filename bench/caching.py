"""Prompt caching: what a long conversation costs under "turns" and "cache-aware", with each cache profile.

Run: uv run python bench/caching.py [turns] [budget]   (default 200 turns, 20,000-token budget)

Workload: a synthetic conversation of about 400 tokens per turn (user ~150, assistant ~250) after
a 2,000-token system prompt, replayed turn by turn as the chat sends it, plus the bundled demo conversation
at the demo's own budget. Costs are input-side US$ from lib.core.pricing's list prices,
SIMULATED by lib.costs.cache_model
(caching on); output cost is left out because it does not depend on the strategy.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.chat import DEMO_BUDGET, demo_data  # noqa: E402
from lib.costs import SessionTotals, session_costs  # noqa: E402
from lib.tokens import count_tokens  # noqa: E402

WORDS = ("history tokens budget payload store turn model context window trim cache prefix provider "
         "latency request reply summary system prompt message").split()
# (profile, model it is priced with). OpenAI's saving is capped by the model's cached-input discount
# (gpt-4o reads at 50% of the input price, gpt-5 at 10%), so both are shown.
PROFILE_MODELS = (("anthropic-5m", "claude-sonnet-4-5"), ("anthropic-1h", "claude-sonnet-4-5"),
                  ("openai", "gpt-4o"), ("openai", "gpt-5"))
SYSTEM_TOKENS = 2_000


def words(rng: random.Random, tokens: int, model: str) -> str:
    """Random prose of about ``tokens`` tokens (each of these words is one token, with its space)."""
    text = " ".join(rng.choice(WORDS) for _ in range(tokens))
    while count_tokens(text, model) > tokens:
        text = text.rsplit(" ", 1)[0]
    return text


def synthetic(turns: int, *, model: str = "gpt-4o", seed: int = 15) -> tuple[str, list[dict]]:
    """A system prompt of ~2,000 tokens and ``turns`` turns of ~400 tokens, one minute apart."""
    rng = random.Random(seed)
    system = words(rng, SYSTEM_TOKENS, model)
    history: list[dict] = []
    for t in range(turns):
        history.append({"id": f"u{t}", "role": "user", "content": f"Turn {t}: " + words(rng, 140, model),
                        "ts": 60.0 * t})
        history.append({"id": f"a{t}", "role": "assistant", "content": words(rng, 250, model),
                        "ts": 60.0 * t + 20})
    return system, history


def rows(history: list[dict], system: str, budget: int) -> list[tuple[str, str, SessionTotals]]:
    out = []
    for profile, model in PROFILE_MODELS:
        for totals in session_costs(history, model=model, budget=budget, system_prompt=system,
                                    strategies=("turns", "cache-aware", "seed", "none"), profiles=(profile,)):
            out.append((profile, model, totals))
    return out


def report(title: str, history: list[dict], system: str, budget: int) -> None:
    start = time.perf_counter()
    results = rows(history, system, budget)
    elapsed = time.perf_counter() - start
    turns = sum(m["role"] == "user" for m in history)
    print(f"\n{title}: {turns} turns, budget {budget:,} tokens (replayed in {elapsed:.1f}s)")
    print(f"{'profile':<13} {'model':<18} {'strategy':<12} {'tokens sent':>12} {'cached':>6} {'cost $':>9} "
          f"{'max payload':>12} {'overflow':>8}")
    by_key = {(p, m, t.strategy): t for p, m, t in results}
    for profile, model, t in results:
        cost = "n/a" if t.cost is None else f"{t.cost:.4f}"
        print(f"{profile:<13} {model:<18} {t.strategy:<12} {t.tokens_sent:>12,} {t.hit_rate:>6.0%} {cost:>9} "
              f"{t.max_payload:>12,} {t.overflowed:>8}")
    for profile, model in PROFILE_MODELS:
        plain, aware = by_key[(profile, model, "turns")], by_key[(profile, model, "cache-aware")]
        if plain.cost and aware.cost is not None:
            print(f"  {profile} ({model}): cache-aware costs {1 - aware.cost / plain.cost:.0%} less than turns "
                  f"(${aware.cost:.2f} vs ${plain.cost:.2f}; max payload {aware.max_payload:,} / budget {budget:,})")


def main(argv: list[str]) -> None:
    turns = int(argv[0]) if argv else 200
    budget = int(argv[1]) if len(argv) > 1 else 20_000
    system, history = synthetic(turns)
    report("Synthetic conversation", history, system, budget)
    demo = demo_data()
    messages = [{**m, "id": m.get("id") or f"d{i}"} for i, m in enumerate(demo["messages"])]
    report("Demo conversation", messages, demo["system_prompt"], DEMO_BUDGET)


if __name__ == "__main__":
    main(sys.argv[1:])
