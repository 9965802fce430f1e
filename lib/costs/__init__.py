"""What re-sent history costs: the prompt-cache model (profiles are data), a session replayed under each
strategy, and the running cost of a conversation.
"""

from __future__ import annotations

from lib.costs.cache_model import PromptCache, TurnCache, place_tools, simulate_session, wire_key
from lib.costs.cache_profiles import (
    ANTHROPIC_MIN_PREFIX,
    OPENAI_CACHE_OPTIONS_MODELS,
    PROFILES,
    get_profile,
    profile_for_model,
)
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
    "ANTHROPIC_MIN_PREFIX",
    "CacheComparison",
    "IMPLICIT_PROFILE",
    "OPENAI_CACHE_OPTIONS_MODELS",
    "PROFILES",
    "PromptCache",
    "REPLAY_STRATEGIES",
    "REUSE_MARGIN_S",
    "SessionTotals",
    "TurnCache",
    "compare_explicit_implicit",
    "get_profile",
    "place_tools",
    "plan_explicit",
    "profile_for_model",
    "replay_payloads",
    "running_costs",
    "session_costs",
    "simulate_session",
    "wire_key",
]
