"""The inspector's prompt-caching frames: one history replayed under each strategy, caching on and off.

Built on lib.costs.strategy_costs (the replay) and lib.costs.cache_model (the cache model). Every figure here is
SIMULATED from the provider's published caching rules; the page labels it so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lib.context import STRATEGY_LABELS
from lib.core import Price
from lib.costs import REPLAY_STRATEGIES, SessionTotals, get_profile, session_costs

Message = Mapping[str, Any]
PARTS = ("cached", "written", "uncached")
NO_TRIMMING = "No trimming (everything re-sent)"


def strategy_label(strategy: str) -> str:
    return STRATEGY_LABELS.get(strategy, NO_TRIMMING if strategy == "none" else strategy)


def strategy_totals(
    history: Sequence[Message], *, model: str, budget: int, system_prompt: str = "", profile: str = "openai",
    prices: Mapping[str, Price] | None = None,
) -> list[SessionTotals]:
    """Each of "turns", "cache-aware", "seed" and "none", with caching on (``profile``) and off."""
    get_profile(profile)  # an unknown profile fails here, with the list of known ones
    return session_costs(history, model=model, budget=budget, system_prompt=system_prompt,
                         strategies=REPLAY_STRATEGIES, profiles=(profile, None), prices=prices)


def comparison_frame(totals: Sequence[SessionTotals]) -> pd.DataFrame:
    """One row per strategy and caching setting: tokens sent, cache hit rate, total input cost."""
    rows = [{
        "strategy": strategy_label(t.strategy),
        "caching": "off" if t.profile is None else "on",
        "tokens_sent": t.tokens_sent,
        "hit_rate": round(t.hit_rate * 100, 1) if t.profile is not None else None,
        "cost": t.cost,
        "largest_payload": t.max_payload,
        "overflowed": t.overflowed,
    } for t in totals]
    return pd.DataFrame(rows, columns=["strategy", "caching", "tokens_sent", "hit_rate", "cost", "largest_payload",
                                       "overflowed"])


def cumulative_cost_frame(totals: Sequence[SessionTotals]) -> pd.DataFrame:
    """Long frame: turn, strategy, caching, cumulative input cost (rows without a price are left out)."""
    rows = [{"turn": n, "strategy": strategy_label(t.strategy), "caching": "off" if t.profile is None else "on",
             "cost": cost}
            for t in totals for n, cost in enumerate(t.cumulative_cost(), start=1) if cost is not None]
    return pd.DataFrame(rows, columns=["turn", "strategy", "caching", "cost"])


def cache_stack_frame(totals: SessionTotals, *, max_points: int = 150) -> pd.DataFrame:
    """Long frame for a stacked chart: per turn (or group of turns), cached / written / uncached tokens.

    Above ``max_points`` turns, consecutive turns are summed in groups, labelled "first–last".
    """
    rows = [(n, n, t.cached_tokens, t.write_tokens, t.uncached_tokens, t.label)
            for n, t in enumerate(totals.turns, start=1) if t is not None]
    wide = pd.DataFrame(rows, columns=["turn", "last", *PARTS, "status"])
    if len(wide) > max_points:
        size = -(-len(wide) // max_points)
        groups = wide.groupby(lambda i: i // size)
        wide = groups.agg(turn=("turn", "min"), last=("last", "max"), cached=("cached", "sum"),
                          written=("written", "sum"), uncached=("uncached", "sum"))
        wide["status"] = "turns " + wide["turn"].astype(str) + "–" + wide["last"].astype(str)
    return wide.melt(id_vars=["turn", "last", "status"], value_vars=list(PARTS), var_name="part",
                     value_name="tokens")
