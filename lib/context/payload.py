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

    def __init__(self, *, required: int, budget: int, max_tokens: int, reserve_tokens: int) -> None:
        self.required = required
        self.budget = budget
        self.max_tokens = max_tokens
        self.reserve_tokens = reserve_tokens
        super().__init__(
            f"The system prompt plus the newest message need {required:,} tokens, but the budget leaves "
            f"{budget:,} ({max_tokens:,} max minus {reserve_tokens:,} reserved for the reply). "
            "Shorten the message or system prompt, or raise the token budget."
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
    # Id of the first non-system message in the payload; "cache-aware" takes it back on the next turn.
    cut: str | None = None

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
