"""Payload timeline build time for long sessions (lib.views.timeline.build_timeline), and the chart frames.

Run: uv run python bench/timeline.py [turns ...]   (default 200 1000 2000)

Workload: a synthetic session stored as the chat stores it (user ~30 tokens, assistant ~120 tokens), with
"turns" records trimmed to a 4,000-token budget (the payload keeps the newest ~26 turns), plus one untrimmed
session (every record sends the whole history: the worst case for the per-message cache replay). Counts are
warmed first, as on a page rerun; the cold figure includes counting every message once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.tokens import clear_count_cache  # noqa: E402
from lib.views import build_timeline  # noqa: E402

USER = "Tell me about the year {n} and what happened in the history of tokens, budgets and payloads then."
REPLY = ("In {n} the payload grew again: the model is stateless, so every earlier message was re-sent, and the "
         "budget decided which of them fit. ") * 4


def session(turns: int, *, keep_turns: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    history: list[dict[str, Any]] = []
    records = []
    for t in range(1, turns + 1):
        user = {"id": f"u{t}", "role": "user", "content": USER.format(n=1800 + t)}
        history.append(user)
        first = 1 if keep_turns is None else max(1, t - keep_turns + 1)
        sent = [[f"u{first}", f"a{t - 1}"], [f"u{t}", f"u{t}"]] if t > first else [[f"u{t}", f"u{t}"]]
        dropped = [["u1", f"a{first - 1}"]] if first > 1 else []
        records.append({"turn": t, "user_id": f"u{t}", "assistant_id": f"a{t}", "sent": sent, "dropped": dropped,
                        "sent_count": 2 * (t - first) + 2, "dropped_count": 2 * (first - 1), "system_sent": True,
                        "system_hash": "s", "model": "gpt-4o-mini", "provider": "openai", "strategy": "turns",
                        "budget": 4_000, "max_tokens": 1024, "ts": 1_000.0 + 10 * t})
        history.append({"id": f"a{t}", "role": "assistant", "content": REPLY.format(n=1800 + t)})
    return history, records


def timed(history: list[dict[str, Any]], records: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    data = build_timeline(history, records, meta={"system:s": "You are a patient history tutor."})
    for turn in data.turns[-60:]:  # what a page draws: the newest rows' blocks
        data.blocks(turn)
    return time.perf_counter() - start


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [200, 1000, 2000]
    for label, keep in (("trimmed to ~26 turns", 26), ("untrimmed", None)):
        previous: tuple[int, float] | None = None
        for turns in sizes:
            history, records = session(turns, keep_turns=keep)
            clear_count_cache()
            cold = timed(history, records)
            warm = min(timed(history, records) for _ in range(3))
            growth = ""
            if previous:
                growth = f"  x{warm / previous[1]:.1f} time for x{turns / previous[0]:.1f} turns"
            print(f"{label:22} {turns:6,} turns  cold {cold * 1000:8.1f} ms  warm {warm * 1000:8.1f} ms{growth}")
            previous = (turns, warm)


if __name__ == "__main__":
    main()
