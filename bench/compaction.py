"""Compaction: tokens sent, cost and what the model can still see, for "turns", "cache-aware" and "summary".

Run: uv run python bench/compaction.py [turns] [budget]   (default 200 turns, 20,000-token budget)

Workload: the synthetic conversation of bench/caching.py with a fact planted in each of the
first 10 turns ("CODE-3 is the code word for item 3."), and the bundled demo at its own budget. Every turn
is replayed as the chat sends it; "summary" uses the offline extractive summariser and stores its summary
between turns. Costs are input-side US$ SIMULATED by lib.costs.cache_model (caching on); the summarisation requests
are counted and priced as if the same model had written them (input + output tokens, no cache).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.caching import synthetic  # noqa: E402
from lib.chat import DEMO_BUDGET, demo_data  # noqa: E402
from lib.context import SUMMARY_INSTRUCTION, ExtractiveSummarizer, Summary, compact_history, render_turns  # noqa: E402
from lib.core import estimate_cost  # noqa: E402
from lib.costs import (
    PromptCache,  # noqa: E402
    replay_payloads,  # noqa: E402
)
from lib.tokens import count_tokens  # noqa: E402

PROFILES = (("anthropic-5m", "claude-sonnet-4-5"), ("openai", "gpt-5"))
FACTS = 10


def planted(turns: int) -> tuple[str, list[dict], list[str]]:
    system, history = synthetic(turns)
    facts = []
    for k in range(min(FACTS, turns)):
        fact = f"CODE-{k + 1} is the code word for item {k + 1}."
        history[2 * k] = {**history[2 * k], "content": f"{fact} {history[2 * k]['content']}"}
        facts.append(f"CODE-{k + 1} ")
    return system, history, facts


def summary_payloads(
    history: list[dict], system: str, budget: int, model: str
) -> tuple[list[list[dict]], list[tuple[int, int]]]:
    """Every turn's payload under "summary", and (input, output) tokens of each summarisation request."""
    summarizer, stored = ExtractiveSummarizer(), None
    payloads: list[list[dict]] = []
    requests: list[tuple[int, int]] = []
    candidates_system = [{"role": "system", "content": system}] if system.strip() else []
    users = [i for i, m in enumerate(history) if m["role"] == "user"]
    for user in users:
        previous: Summary | None = stored
        result = compact_history([*candidates_system, *history[: user + 1]], budget, model=model,
                                 summarizer=summarizer, summary=stored)
        if result.compacted and result.summary:
            covered = [(t, m) for t, m in _turns(history, user) if previous is None or t > previous.last_turn]
            covered = [(t, m) for t, m in covered if t <= result.summary.last_turn]
            prompt = "\n".join([SUMMARY_INSTRUCTION, previous.text if previous else "", *render_turns(covered)])
            requests.append((count_tokens(prompt, model), result.summary.tokens))
        stored = result.summary
        payloads.append(result.payload)
    return payloads, requests


def _turns(history: list[dict], upto: int) -> list[tuple[int, dict]]:
    out, turn = [], 0
    for m in history[:upto]:
        turn += m["role"] == "user"
        out.append((turn, m))
    return out


def visible(payload: list[dict], facts: list[str]) -> str:
    """Share of the planted facts whose code word is still in the payload ("n/a" when none were planted)."""
    if not facts:
        return "n/a"
    text = "\n".join(str(m.get("content")) for m in payload)
    return f"{sum(f in text for f in facts) / len(facts):.0%}"


def report(title: str, history: list[dict], system: str, budget: int, facts: list[str]) -> None:
    print(f"\n{title}: {sum(m['role'] == 'user' for m in history)} turns, budget {budget:,} tokens")
    print(f"{'strategy':<12} {'profile':<13} {'tokens sent':>12} {'cached':>6} {'cost $':>8} {'summ. req':>9} "
          f"{'summ. $':>8} {'total $':>8} {'max payload':>11} {'facts seen':>10}")
    for profile, model in PROFILES:
        start = time.perf_counter()
        runs: dict[str, tuple[list, list[tuple[int, int]]]] = {
            s: (replay_payloads(history, model=model, budget=budget, strategy=s, system_prompt=system), [])
            for s in ("turns", "cache-aware")}
        runs["summary"] = summary_payloads(history, system, budget, model)
        for strategy, (payloads, requests) in runs.items():
            cache = PromptCache(profile, model=model)
            sent = [cache.request(p) for p in payloads if p is not None]
            cost = sum(t.cost or 0.0 for t in sent)
            summ_cost = sum(estimate_cost(model, input_tokens=n, output_tokens=out) or 0.0 for n, out in requests)
            final = next((p for p in reversed(payloads) if p is not None), [])
            print(f"{strategy:<12} {profile:<13} {sum(t.input_tokens for t in sent):>12,} "
                  f"{sum(t.cached_tokens for t in sent) / max(1, sum(t.input_tokens for t in sent)):>6.0%} "
                  f"{cost:>8.3f} {len(requests):>9} {summ_cost:>8.3f} {cost + summ_cost:>8.3f} "
                  f"{max(t.input_tokens for t in sent):>11,} {visible(final, facts):>10}")
        print(f"  ({profile}: replayed in {time.perf_counter() - start:.1f}s)")


def main(argv: list[str]) -> None:
    turns = int(argv[0]) if argv else 200
    budget = int(argv[1]) if len(argv) > 1 else 20_000
    system, history, facts = planted(turns)
    report("Synthetic conversation (facts planted in turns 1-10)", history, system, budget, facts)
    demo = demo_data()
    messages = [{**m, "id": m.get("id") or f"d{i}"} for i, m in enumerate(demo["messages"])]
    report("Demo conversation", messages, demo["system_prompt"], DEMO_BUDGET, [])


if __name__ == "__main__":
    main(sys.argv[1:])
