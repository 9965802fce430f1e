"""What a trimmer returns, and what makes a payload one an API would refuse.

These live below the strategies (``lib.context.trimming`` and the fast seed in ``lib.context.seed``) so that
both can return a ``TrimResult`` without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lib.core import HistoryLabError, Message

# A tuple, not a set: a stored role of the wrong type (a list from a crafted import) must compare unequal, not raise.
SYSTEM_ROLES = ("system", "developer")


class ContextOverflowError(HistoryLabError, ValueError):
    """Even the system prompt plus the newest turn do not fit the budget."""

    def __init__(self, *, required: int, budget: int, max_tokens: int, reserve_tokens: int,
                 pinned_tokens: int = 0, tool_tokens: int = 0) -> None:
        self.required = required
        self.budget = budget
        self.max_tokens = max_tokens
        self.reserve_tokens = reserve_tokens
        self.pinned_tokens = pinned_tokens
        self.tool_tokens = tool_tokens
        parts = ["The system prompt", "the newest message"]
        fixes = ["Shorten the message or system prompt", "raise the token budget"]
        if tool_tokens:
            parts.append(f"the tool definitions ({tool_tokens:,} tokens)")
            fixes.insert(1, "turn the tool definitions off")
        if pinned_tokens:
            parts.append(f"the pinned turns ({pinned_tokens:,} tokens)")
            fixes.insert(1, "unpin a turn")
        need = ", ".join(parts[:-1]) + " plus " + parts[-1] if len(parts) > 2 else " plus ".join(parts)
        super().__init__(
            f"{need} need {required:,} tokens, but the budget leaves "
            f"{budget:,} ({max_tokens:,} max minus {reserve_tokens:,} reserved for the reply). "
            f"{', '.join(fixes[:-1])}, or {fixes[-1]}."
        )


@dataclass(frozen=True)
class TrimResult:
    kept: list[dict[str, Any]]
    dropped: list[dict[str, Any]]
    tokens_before: int
    tokens_after: int
    budget: int
    strategy: str
    # What the counts mean: an encoding name, or "chars/4" when exact counts were unavailable.
    counter: str = "chars/4"
    notes: list[str] = field(default_factory=list)
    # Id of the first message the strategy kept after the system prompt (and after any pinned turn before
    # it); "cache-aware" takes it back on the next turn.
    cut: str | None = None
    # "You choose" (lib.context.manual): ids of the messages sent because their turn is pinned, and of those
    # never sent because their turn was left out (they are in ``dropped`` too).
    pinned_ids: tuple[str, ...] = ()
    left_out_ids: tuple[str, ...] = ()
    # Tokens of the tool definitions sent with the payload (counted in tokens_before/after, never dropped).
    tool_tokens: int = 0

    @property
    def kept_ids(self) -> list[str]:
        return [m["id"] for m in self.kept if "id" in m]

    @property
    def dropped_ids(self) -> list[str]:
        return [m["id"] for m in self.dropped if "id" in m]


# The rules a payload can break, as the APIs state them; payload_problems names the one each problem breaks.
ASSISTANT_FIRST_RULE = ("Rule: the first message after the system prompt must be a user message (Anthropic rejects "
                        "this payload; OpenAI accepts it).")
TOOL_PAIR_RULE = ("Rule: a tool call and its result are sent together, the result straight after the call (OpenAI "
                  "and Anthropic reject this payload).")


def payload_problems(payload: Sequence[Message]) -> list[str]:
    """Reasons an API would reject this payload: a non-user first message, or a split tool pair."""
    problems: list[str] = []
    conversation = [m for m in payload if m.get("role") not in SYSTEM_ROLES]
    if conversation and conversation[0].get("role") != "user":
        role = str(conversation[0].get("role"))
        article = "an" if role[:1] in "aeiou" else "a"
        problems.append(f"The payload starts with {article} {role} message, not a user message. {ASSISTANT_FIRST_RULE}")
    called: set[str] = set()
    answered: set[str] = set()
    for m in conversation:
        for call in m.get("tool_calls") or []:
            if isinstance(call, Mapping) and call.get("id"):
                called.add(str(call["id"]))
        if m.get("role") == "tool":
            call_id = str(m.get("tool_call_id"))
            if call_id not in called:
                problems.append(f"Tool result {call_id} is sent without the assistant call that asked for it. "
                                f"{TOOL_PAIR_RULE}")
            answered.add(call_id)
    for call_id in sorted(called - answered):
        problems.append(f"Tool call {call_id} is sent without its result. {TOOL_PAIR_RULE}")
    return problems
