"""Shape the payload to fit the context window. The stored history is never trimmed.

Two strategies:
- ``"turns"`` (default) drops whole turns, oldest first, on exact chat-format counts.
- ``"seed"`` is the seed's ``trimHistory``, kept verbatim so its faults can be shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lib.tokens import (
    REPLY_PRIMING,
    EncodingUnavailable,
    choose_encoding,
    encoding_for,
    estimate_tokens,
    message_tokens,
)

Strategy = Literal["turns", "seed"]
STRATEGIES: tuple[Strategy, ...] = ("turns", "seed")
SYSTEM_ROLES = frozenset({"system", "developer"})
Message = Mapping[str, Any]


class ContextOverflowError(ValueError):
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

    @property
    def kept_ids(self) -> list[str]:
        return [m["id"] for m in self.kept if "id" in m]

    @property
    def dropped_ids(self) -> list[str]:
        return [m["id"] for m in self.dropped if "id" in m]


def trim_history(
    messages: Sequence[Message],
    max_tokens: int = 80_000,
    *,
    model: str = "gpt-4o-mini",
    strategy: str = "turns",
    reserve_tokens: int = 0,
) -> TrimResult:
    """Choose which messages go into the payload. Never mutates ``messages``."""
    if max_tokens <= 0 or reserve_tokens < 0:
        raise ValueError("max_tokens must be positive and reserve_tokens must not be negative")
    budget = max_tokens - reserve_tokens
    if strategy == "seed":
        return _trim_seed(messages, budget)
    if strategy == "turns":
        return _trim_turns(messages, budget, model=model, max_tokens=max_tokens, reserve_tokens=reserve_tokens)
    raise ValueError(f"Unknown trimming strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def _trim_seed(messages: Sequence[Message], budget: int) -> TrimResult:
    # A literal port of the seed: recount everything, splice index 1, repeat. O(n^2) on purpose.
    work = list(messages)
    removed: set[int] = set()
    positions = list(range(len(work)))

    def total() -> int:
        return sum(estimate_tokens(m.get("content", "")) for m in work)

    before = total()
    current = before
    while current > budget and len(work) > 4:
        del work[1]
        removed.add(positions.pop(1))
        current = total()
    kept = [dict(m) for i, m in enumerate(messages) if i not in removed]
    dropped = [dict(m) for i, m in enumerate(messages) if i in removed]
    return TrimResult(kept, dropped, before, current, budget, "seed", counter="chars/4",
                      notes=payload_problems(kept))


def _trim_turns(
    messages: Sequence[Message], budget: int, *, model: str, max_tokens: int, reserve_tokens: int
) -> TrimResult:
    counts, counter = _per_message_counts(messages, model)
    system_idx = [i for i, m in enumerate(messages) if m.get("role") in SYSTEM_ROLES]
    user_idx = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not user_idx:
        raise ValueError("Nothing to send: the history has no user message.")

    # Turn starts: every user message. Anything before the first one (other than system) is an
    # orphan reply that would make the payload start with the assistant, so it always goes.
    keep = [False] * len(messages)
    for i in system_idx:
        keep[i] = True
    newest = user_idx[-1]
    for i in range(newest, len(messages)):
        keep[i] = True
    required = REPLY_PRIMING + sum(counts[i] for i in range(len(messages)) if keep[i])
    if required > budget:
        raise ContextOverflowError(required=required, budget=budget, max_tokens=max_tokens,
                                   reserve_tokens=reserve_tokens)

    # Add whole turns back, newest first, while they fit: the same as dropping oldest first.
    used = required
    bounds = list(zip(user_idx, user_idx[1:], strict=False))  # (start, end) of every turn but the newest
    for start, end in reversed(bounds):
        cost = sum(counts[i] for i in range(start, end) if not keep[i])
        if used + cost > budget:
            break
        used += cost
        for i in range(start, end):
            keep[i] = True

    before = REPLY_PRIMING + sum(counts)
    kept = [dict(m) for i, m in enumerate(messages) if keep[i]]
    dropped = [dict(m) for i, m in enumerate(messages) if not keep[i]]
    return TrimResult(kept, dropped, before, used, budget, "turns", counter=counter)


def _per_message_counts(messages: Sequence[Message], model: str) -> tuple[list[int], str]:
    try:
        encoding_for(model)
    except EncodingUnavailable:
        # Degrade to the estimate (plus framing) rather than refuse to build a payload.
        return [estimate_tokens(m.get("content", "")) + 3 for m in messages], "chars/4"
    return [message_tokens(m, model) for m in messages], choose_encoding(model).name


def payload_problems(payload: Sequence[Message]) -> list[str]:
    """Reasons an API would reject this payload: a non-user first message, or a split tool pair."""
    problems: list[str] = []
    conversation = [m for m in payload if m.get("role") not in SYSTEM_ROLES]
    if conversation and conversation[0].get("role") != "user":
        role = str(conversation[0].get("role"))
        article = "an" if role[:1] in "aeiou" else "a"
        problems.append(f"The payload starts with {article} {role} message, not a user message.")
    called: set[str] = set()
    answered: set[str] = set()
    for m in conversation:
        for call in m.get("tool_calls") or []:
            if isinstance(call, Mapping) and call.get("id"):
                called.add(str(call["id"]))
        if m.get("role") == "tool":
            call_id = str(m.get("tool_call_id"))
            if call_id not in called:
                problems.append(f"Tool result {call_id} is sent without the assistant call that asked for it.")
            answered.add(call_id)
    for call_id in sorted(called - answered):
        problems.append(f"Tool call {call_id} is sent without its result.")
    return problems
