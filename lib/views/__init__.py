"""Plain data the pages draw: the payload timeline (rows, blocks, badges, cache view), the inspector's
frames and costs, and the window of a long chat.
"""

from __future__ import annotations

from lib.views.badges import (
    COST_UNIT_NOTE,
    format_cost,
    reply_caption,
    running_total_text,
    seed_belief,
    truncation_caption,
    turn_badges,
)
from lib.views.chat_window import DEFAULT_WINDOW, Window
from lib.views.inspection import Inspection, error_series, inspect, kind_frame, latest_settings
from lib.views.inspection_costs import (
    cache_stack_frame,
    comparison_frame,
    cumulative_cost_frame,
    strategy_label,
    strategy_totals,
)
from lib.views.inspection_turns import models_used
from lib.views.paging import Page, page_count, page_of, thin
from lib.views.rows import Badge, Block, Level, TurnRow
from lib.views.timeline import Timeline, build_timeline
from lib.views.timeline_summary import TimelineSummary, summarize_timeline
from lib.views.what_if import WhatIf, literal_seed_breaking_budgets, what_if

__all__ = [
    "COST_UNIT_NOTE", "DEFAULT_WINDOW", "Badge", "Block", "Inspection", "Level", "Page", "Timeline", "TurnRow",
    "WhatIf", "Window", "build_timeline", "cache_stack_frame", "comparison_frame", "cumulative_cost_frame",
    "error_series", "format_cost", "inspect", "kind_frame", "latest_settings", "literal_seed_breaking_budgets",
    "page_count", "page_of", "reply_caption", "running_total_text", "strategy_label", "strategy_totals", "thin",
    "truncation_caption", "turn_badges", "what_if", "seed_belief", "models_used", "TimelineSummary",
    "summarize_timeline",
]
