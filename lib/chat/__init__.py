"""One turn end to end (the seed's POST route as a function), saving through store outages, server-side
history chains, summaries, comparisons, the scripts of the example and the demo, and the Lesson's chapters.
"""

from __future__ import annotations

from lib.chat.bodies import TurnBody, read_turn_body, turn_body, turn_payload
from lib.chat.compare import (
    MAX_COLUMNS,
    MIN_COLUMNS,
    CompareConfig,
    column_name,
    comparison_record,
    continue_with,
    micro_dollars,
    request_differences,
    run_comparison,
    seconds_text,
    server_context_text,
    summary_table,
    tokens_text,
)
from lib.chat.conversation import (
    CHAT_STRATEGIES,
    MAX_MESSAGE_CHARS,
    EmptyMessage,
    MessageTooLarge,
    run_turn,
    save_reply_again,
    start_turn,
    turn_numbers,
)
from lib.chat.demo import DEMO_BUDGET, demo_data, load_demo
from lib.chat.example import (
    FACT,
    MAX_FILLERS,
    QUESTION,
    SEED_TURNS,
    SMALL_BUDGET,
    ExampleProgress,
    ExampleStep,
    advance,
    after,
    fact_forgotten,
    filler,
    next_step,
    total_steps_at_most,
)
from lib.chat.interrupted import (
    MESSAGE,
    META_RUNNER,
    STALE_TURN_SECONDS,
    STATUS,
    interrupted_turns,
    runner_token,
    unanswered,
    with_interrupted,
)
from lib.chat.lesson import (
    CHAPTERS,
    LESSON_MODEL,
    LESSON_SYSTEM_PROMPT,
    better_strategies,
    curl_lines,
    exact_budget,
    offline_model,
    payload_column,
    play_forgetting,
    restart_memory_store,
    run_seed_turns,
    seed_budget,
    trim_like_the_seed,
)
from lib.chat.saving import MessageNotSent, ReplyNotSaved
from lib.chat.server_state import META_CONVERSATION, META_CONVERSATION_MESSAGE, META_PREVIOUS_RESPONSE
from lib.chat.strategies import (
    PLACEHOLDER_RESPONSE_ID,
    SIMULATED_SERVER,
    StrategyComparison,
    chain_messages,
    compare_strategies,
    conversation_payloads,
    spans,
    with_counted_billing,
    with_reported_usage,
)
from lib.chat.summary import META_SUMMARY, session_summaries, stored_summary
from lib.chat.turn import PreparedTurn, TurnInterrupted, TurnRequest, TurnResult, payload_counts

__all__ = [
    "CHAT_STRATEGIES", "DEMO_BUDGET", "FACT", "MAX_COLUMNS", "MAX_FILLERS", "MAX_MESSAGE_CHARS", "MESSAGE",
    "META_CONVERSATION", "META_CONVERSATION_MESSAGE", "META_PREVIOUS_RESPONSE", "META_RUNNER", "META_SUMMARY",
    "MIN_COLUMNS", "PLACEHOLDER_RESPONSE_ID", "QUESTION", "SEED_TURNS", "SIMULATED_SERVER", "SMALL_BUDGET",
    "STALE_TURN_SECONDS", "STATUS", "CompareConfig", "EmptyMessage", "ExampleProgress", "ExampleStep",
    "TurnBody", "read_turn_body", "turn_body", "turn_payload",
    "MessageNotSent", "MessageTooLarge", "PreparedTurn", "ReplyNotSaved", "StrategyComparison",
    "TurnInterrupted", "TurnRequest", "TurnResult", "advance", "chain_messages", "column_name",
    "compare_strategies", "comparison_record", "continue_with", "demo_data", "fact_forgotten",
    "interrupted_turns", "load_demo", "micro_dollars", "next_step", "payload_counts", "request_differences",
    "run_comparison", "run_turn", "runner_token", "save_reply_again", "seconds_text", "server_context_text",
    "session_summaries", "spans", "start_turn", "stored_summary", "summary_table", "tokens_text",
    "total_steps_at_most", "turn_numbers", "unanswered", "with_counted_billing", "with_interrupted",
    "with_reported_usage",
    "conversation_payloads",
    "CHAPTERS",
    "LESSON_MODEL",
    "LESSON_SYSTEM_PROMPT",
    "after",
    "better_strategies",
    "curl_lines",
    "exact_budget",
    "filler",
    "offline_model",
    "payload_column",
    "play_forgetting",
    "restart_memory_store",
    "run_seed_turns",
    "seed_budget",
    "trim_like_the_seed",
]
