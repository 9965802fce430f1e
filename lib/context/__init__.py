"""What goes into the context window: the trimming strategies (each returns a ``TrimResult``), the fast
equivalent of the seed's loop, compaction into a summary, and the difference between two payloads.
"""

from __future__ import annotations

from lib.context.compaction import (
    SUMMARY_INSTRUCTION,
    CompactionResult,
    ExtractiveSummarizer,
    ProviderSummarizer,
    Summarizer,
    Summary,
    compact_history,
    render_turns,
)
from lib.context.diff import body_shape, highlights, pretty, unified_diff
from lib.context.manual import (
    MANUAL_HELP,
    MANUAL_LABEL,
    MANUAL_STRATEGIES,
    META_MANUAL_CHOICE,
    ChoiceConflict,
    ManualChoice,
)
from lib.context.payload import ASSISTANT_FIRST_RULE, SYSTEM_ROLES, ContextOverflowError, TrimResult, payload_problems
from lib.context.seed import (
    BudgetRange,
    SeedPlan,
    belief_text,
    estimates_of,
    seed_breaking_budgets,
    seed_cut,
    seed_trim,
)
from lib.context.trimming import (
    DEFAULT_LOW_WATER,
    LITERAL_SEED_MAX_MESSAGES,
    STRATEGIES,
    STRATEGY_HELP,
    STRATEGY_LABELS,
    HistoryIndex,
    LiteralSeedTooLarge,
    per_message_counts,
    plan_cache_aware,
    plan_turns,
    trim_history,
    trim_seed_literal,
)

__all__ = [
    "DEFAULT_LOW_WATER", "LITERAL_SEED_MAX_MESSAGES", "MANUAL_HELP", "MANUAL_LABEL", "MANUAL_STRATEGIES",
    "META_MANUAL_CHOICE", "ChoiceConflict", "ManualChoice", "STRATEGIES", "STRATEGY_HELP", "STRATEGY_LABELS",
    "SUMMARY_INSTRUCTION", "SYSTEM_ROLES", "BudgetRange", "CompactionResult", "ContextOverflowError",
    "ExtractiveSummarizer", "HistoryIndex", "LiteralSeedTooLarge", "ProviderSummarizer", "SeedPlan",
    "Summarizer", "Summary", "TrimResult", "body_shape", "compact_history", "estimates_of", "highlights",
    "payload_problems", "per_message_counts", "plan_cache_aware", "plan_turns", "pretty", "render_turns",
    "seed_breaking_budgets", "seed_cut", "seed_trim", "trim_history", "trim_seed_literal", "unified_diff",
    "ASSISTANT_FIRST_RULE",
    "belief_text",
]
