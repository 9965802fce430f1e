"""Token inspector data-building time for a 10,000-message session (the per-session cap).

    uv run python bench/inspector.py

The session (5,000 turns) is built directly, not chatted: every turn record says what "turns" sent at a
4,000-token budget, as id ranges, as lib.chat.conversation stores them
(replayed with lib.costs.strategy_costs, which makes the
same decisions as the trimmer). Its records carry no estimate or exact count, so the inspector sums them
itself: the slower path.

Cold: the first build in this process, with lib.tokens.counting' per-text count cache cleared (every message is
tokenized). Warm: a rerun with the same history (the page also caches whole frames with st.cache_data, so a
real rerun skips even this). Goal: frames for 10,000 messages in under 2 s cold.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.context import seed_breaking_budgets
from lib.core import (  # noqa: E402
    DEFAULT_PRICES,  # noqa: E402
    TurnRecord,
    id_positions,
    id_ranges,
)
from lib.costs import replay_payloads  # noqa: E402
from lib.sessions import new_session_id  # noqa: E402
from lib.tokens import clear_count_cache, load_encoding  # noqa: E402
from lib.views import (
    inspect,
    literal_seed_breaking_budgets,
    strategy_totals,  # noqa: E402
    what_if,
)

TURNS = 5_000
BUDGET = 4_000
MODEL = "gpt-4o-mini"
SYSTEM = "Be brief."
PRICES = {p.model: p for p in DEFAULT_PRICES}


def ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def session(turns: int) -> tuple[list[dict], list[dict]]:
    history: list[dict] = []
    for n in range(turns):
        text = f"Turn {n}: " + "a question about how much history is re-sent, with some detail. " * (1 + n % 5)
        history.append({"role": "user", "content": text, "id": new_session_id(), "ts": float(n * 60)})
        history.append({"role": "assistant", "content": f"Answer {n}: " + "noted. " * (3 + n % 7),
                        "id": new_session_id(), "ts": float(n * 60 + 5)})
    positions = id_positions(history)
    records = []
    for n, payload in enumerate(replay_payloads(history, model=MODEL, budget=BUDGET, strategy="turns",
                                                system_prompt=SYSTEM)):
        assert payload is not None
        sent = [m["id"] for m in payload if m.get("id")]
        first = positions[sent[0]]
        dropped = ((history[0]["id"], history[first - 1]["id"]),) if first else ()
        records.append(TurnRecord(turn=n + 1, user_id=history[2 * n]["id"], sent=id_ranges(sent, positions),
                                  dropped=dropped,
                                  sent_count=len(payload), dropped_count=first, system_sent=True,
                                  strategy="turns", budget=BUDGET, model=MODEL).to_json())
    return history, records


def main() -> None:
    load_encoding("o200k_base")
    built = time.perf_counter()
    history, turns = session(TURNS)
    print(f"session: {len(turns):,} turns, {len(history):,} messages (built in {time.perf_counter() - built:.1f} s)")

    def frames() -> None:
        inspect(history, turns, model=MODEL, system_prompt=SYSTEM, prices=PRICES)

    clear_count_cache()
    cold = ms(frames)
    warm = statistics.median(ms(frames) for _ in range(3))
    whatif = statistics.median(
        ms(lambda: what_if(history, budget=20_000, strategy="turns", model=MODEL, system_prompt=SYSTEM))
        for _ in range(3))
    seed_whatif = ms(lambda: what_if(history, budget=20_000, strategy="seed", model=MODEL, system_prompt=SYSTEM))
    seed = ms(lambda: seed_breaking_budgets(history, model=MODEL, system_prompt=SYSTEM))
    caching = ms(lambda: strategy_totals(history, model=MODEL, budget=BUDGET, system_prompt=SYSTEM, prices=PRICES))
    print(f"frames (per turn, cumulative, messages)   cold {cold:8.1f} ms   warm {warm:8.1f} ms   (goal: cold < 2,000)")
    print(f"what-if, turns, one budget                            warm {whatif:8.1f} ms")
    print(f"what-if, seed (lib.context.seed), one budget                  {seed_whatif:8.1f} ms")
    print(f"seed breaking points (lib.context.seed, exact)                {seed:8.1f} ms")
    print(f"caching: 4 strategies x caching on/off                     {caching:8.1f} ms")
    print(f"page data in all (warm): {warm + whatif + seed + caching:.1f} ms")
    small = history[:2_000]
    # The replay used to grow with the square of the session (32 s at 10,000 messages, 1.7 s at 2,000):
    # the ratio for 5x the messages shows whether it is linear now (5x) or not (25x).
    caching_small = ms(lambda: strategy_totals(small, model=MODEL, budget=BUDGET, system_prompt=SYSTEM,
                                               prices=PRICES))
    print(f"caching at 2,000 messages {caching_small:8.1f} ms, at {len(history):,} {caching:8.1f} ms: "
          f"x{caching / caching_small:.1f} for x{len(history) / len(small):.0f} the messages")
    literal = ms(lambda: literal_seed_breaking_budgets(small, model=MODEL, system_prompt=SYSTEM))
    fast = ms(lambda: seed_breaking_budgets(small, model=MODEL, system_prompt=SYSTEM))
    print(f"seed breaking points at 2,000 messages: literal (24 O(n^2) runs) {literal:8.1f} ms, fast {fast:6.1f} ms")


if __name__ == "__main__":
    main()
