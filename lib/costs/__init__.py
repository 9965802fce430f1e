"""What re-sent history costs: the prompt-cache model (profiles are data), a session replayed under each
strategy, and the running cost of a conversation.
"""

from __future__ import annotations

from lib.costs.cache_model import PROFILES, PromptCache, TurnCache, get_profile, simulate_session, wire_key
from lib.costs.context_cache import (
    IMPLICIT_PROFILE,
    REUSE_MARGIN_S,
    CacheComparison,
    compare_explicit_implicit,
    plan_explicit,
)
from lib.costs.running import running_costs
from lib.costs.strategy_costs import REPLAY_STRATEGIES, SessionTotals, replay_payloads, session_costs

__all__ = [
    "PROFILES", "REPLAY_STRATEGIES", "PromptCache", "SessionTotals", "TurnCache", "get_profile",
    "replay_payloads", "running_costs", "session_costs", "simulate_session", "wire_key",
    "CacheComparison",
    "IMPLICIT_PROFILE",
    "REUSE_MARGIN_S",
    "compare_explicit_implicit",
    "plan_explicit",
]
