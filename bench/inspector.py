"""Token inspector data-building time for a 1,000-turn session.

    uv run python bench/inspector.py

Cold: first build in a fresh process (every message tokenized once). Warm: a rerun of the page with the
same history, where lib.tokens' per-text cache answers (the page also caches whole frames with
st.cache_data, so a real rerun skips even this).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.chat import TurnRequest, run_turn  # noqa: E402
from lib.inspection import inspect, seed_breaking_budgets, what_if  # noqa: E402
from lib.pricing import DEFAULT_PRICES  # noqa: E402
from lib.providers import get_provider  # noqa: E402
from lib.sessions import MemoryStore  # noqa: E402
from lib.tokens import load_encoding  # noqa: E402

TURNS = 1_000
MODEL = "gpt-4o-mini"
PRICES = {p.model: p for p in DEFAULT_PRICES}


def ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    load_encoding("o200k_base")
    store, offline = MemoryStore(max_messages=10_000), get_provider("offline", delay=0)
    sid, built = None, time.perf_counter()
    for n in range(TURNS):
        text = f"Turn {n}: " + "a question about how much history is re-sent, with some detail. " * (1 + n % 5)
        sid = run_turn(store, offline, TurnRequest(user_text=text, session_id=sid, budget=4_000, model=MODEL,
                                                   system_prompt="Be brief.")).session_id
    history, turns = store.get_history(sid), store.get_turns(sid)
    print(f"session: {len(turns):,} turns, {len(history):,} messages (built in {time.perf_counter() - built:.1f} s)")

    def frames() -> None:
        inspect(history, turns, model=MODEL, system_prompt="Be brief.", prices=PRICES)

    cold = ms(frames)
    warm = statistics.median(ms(frames) for _ in range(5))
    whatif = statistics.median(
        ms(lambda: what_if(history, budget=20_000, strategy="turns", model=MODEL, system_prompt="Be brief."))
        for _ in range(5))
    seed = ms(lambda: seed_breaking_budgets(history, model=MODEL, system_prompt="Be brief."))
    print(f"frames (per turn, cumulative, messages)  cold {cold:8.1f} ms   warm {warm:8.1f} ms")
    print(f"what-if (turns, one budget)                         warm {whatif:8.1f} ms")
    print(f"seed breaking point (24 seed runs, O(n^2) each)          {seed:8.1f} ms")
    print(f"page data in all (warm): {warm + whatif + seed:.1f} ms")


if __name__ == "__main__":
    main()
