"""What the seed's trimHistory does, computed in O(n) instead of replayed in O(n²).

The seed (``lib.context.trimming.trim_seed_literal``, the loop as written) counts chars/4 of every content and,
while the total is over budget and more than 4 messages remain, removes index 1. After ``k`` removals the
payload is always ``messages[0]`` plus the suffix ``messages[k + 1:]``, and its total only falls as ``k``
grows, so:

- the number removed at a budget is a binary search over suffix sums (``SeedPlan.cut``);
- whether the payload an API would get is broken (lib.context.trimming.payload_problems: a non-user first message,
  a tool result without its call, a call without its result) is known for every ``k`` at once, from one
  interval per tool message and per tool call, swept in one pass (``SeedPlan.broken``);
- so the exact budget ranges where the seed breaks (``SeedPlan.breaking_ranges``) and the inspector's
  sampled breaking budgets (``seed_breaking_budgets``, same answer as lib.views.inspection's) cost O(n log n).

tests/test_seed_fast.py checks all of this against the literal seed on random histories.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.context.payload import SYSTEM_ROLES, TrimResult, payload_problems
from lib.tokens import estimate_tokens

Message = Mapping[str, Any]
MIN_KEPT = 4  # the seed stops once 4 messages remain, over budget or not


@dataclass(frozen=True)
class SeedCut:
    """The seed's result at one budget: messages 1..removed are dropped, everything else is kept."""

    removed: int
    tokens_before: int
    tokens_after: int
    budget: int

    def kept(self, messages: Sequence[Message]) -> list[Message]:
        return [*messages[:1], *messages[self.removed + 1:]]

    def dropped(self, messages: Sequence[Message]) -> list[Message]:
        return list(messages[1:self.removed + 1])


@dataclass(frozen=True)
class BudgetRange:
    """Budgets ``low <= budget < high`` (``high`` None: no upper end) at which the seed breaks the payload."""

    low: int
    high: int | None


def estimates_of(messages: Sequence[Message]) -> list[int]:
    """The seed's per-message estimate: chars/4 of the content, rounded up."""
    return [estimate_tokens(m.get("content", "")) for m in messages]


def seed_cut(estimates: Sequence[int], budget: int) -> SeedCut:
    """One budget, no plan kept: O(n) for the sums, O(log n) for the search."""
    return SeedPlan.from_estimates(estimates).cut(budget)


class SeedPlan:
    """Suffix sums of one history's estimates, plus (lazily) which removal counts break the payload."""

    def __init__(self, messages: Sequence[Message], estimates: Sequence[int] | None = None) -> None:
        self.messages = messages
        self._estimates = list(estimates) if estimates is not None else estimates_of(messages)
        # totals[k] = payload total after k removals = estimates[0] + sum(estimates[k + 1:])
        suffix = list(itertools.accumulate(reversed(self._estimates), initial=0))[::-1]
        n = len(self._estimates)
        self.max_removed = max(0, n - MIN_KEPT)
        head = self._estimates[0] if n else 0
        self.totals = [head + suffix[k + 1] if n else 0 for k in range(self.max_removed + 1)]
        self._broken: list[bool] | None = None

    @classmethod
    def from_estimates(cls, estimates: Sequence[int]) -> SeedPlan:
        return cls([], estimates)

    def removed_at(self, budget: int) -> int:
        """The smallest k with totals[k] <= budget, or the most the seed may remove."""
        # totals is non-increasing; its negation is sorted, as bisect needs.
        k = bisect.bisect_left(self.totals, -budget, key=operator.neg)
        return min(k, self.max_removed)

    def cut(self, budget: int) -> SeedCut:
        k = self.removed_at(budget)
        return SeedCut(k, self.totals[0], self.totals[k], budget)

    def broken(self, removed: int) -> bool:
        """Whether payload_problems would report anything for the payload after ``removed`` removals."""
        if self._broken is None:
            self._broken = _broken_by_start(self.messages)
        return self._broken[removed + 1]

    def breaking_ranges(self) -> list[BudgetRange]:
        """Every budget at which the seed's payload is one an API would reject, as merged ranges."""
        ranges: list[BudgetRange] = []
        for k in range(self.max_removed + 1):
            if not self.broken(k):
                continue
            # Budgets that stop at exactly k removals: [totals[k], totals[k-1]), open-ended at both ends.
            low = 0 if k == self.max_removed else self.totals[k]
            high = None if k == 0 else self.totals[k - 1]
            if high is not None and low >= high:
                continue  # k is passed through on the way to a later stop at every budget
            if ranges and ranges[-1].low == high:
                ranges[-1] = BudgetRange(low, ranges[-1].high)
            else:
                ranges.append(BudgetRange(low, high))
        return ranges


def seed_trim(messages: Sequence[Message], budget: int) -> TrimResult:
    """What the literal seed loop returns, without the loop: ``trim_history(..., strategy="seed")`` runs this."""
    cut = SeedPlan(messages).cut(budget)
    kept = [dict(m) for m in cut.kept(messages)]
    first = next((m for m in kept if m.get("role") not in SYSTEM_ROLES), None)
    return TrimResult(kept, [dict(m) for m in cut.dropped(messages)], cut.tokens_before, cut.tokens_after,
                      budget, "seed", counter="chars/4", notes=payload_problems(kept),
                      cut=None if first is None or first.get("id") is None else str(first["id"]))


def seed_breaking_budgets(
    history: Sequence[Message], *, model: str = "", system_prompt: str = "", steps: int = 24
) -> list[tuple[int, list[str]]]:
    """lib.views.inspection.seed_breaking_budgets' exact answer (same sampled budgets, same problems, same order).

    ``model`` is accepted for the same signature; the seed counts chars/4 whatever the model.
    """
    del model
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    messages = [*system, *history]
    plan = SeedPlan(messages)
    total = plan.totals[0]
    problems_at: dict[int, list[str]] = {}
    found = []
    for step in range(steps, 0, -1):
        budget = max(1, total * step // steps)
        k = plan.removed_at(budget)
        if not plan.broken(k):
            continue
        if k not in problems_at:
            problems_at[k] = payload_problems(SeedCut(k, total, plan.totals[k], budget).kept(messages))
        found.append((budget, problems_at[k]))
    return found


def _call_ids(message: Message) -> list[str]:
    return [str(call["id"]) for call in message.get("tool_calls") or []
            if isinstance(call, Mapping) and call.get("id")]


def _broken_by_start(messages: Sequence[Message]) -> list[bool]:
    """broken[s] for the payload messages[0] + messages[s:], for every s in 1..n (index 0 unused).

    Each rule of payload_problems becomes a range of s where it fires; a difference array sums them.
    """
    n = len(messages)
    marks = [0] * (n + 2)

    def fire(first: int, last: int) -> None:  # the rule fires for every s in [first, last]
        if first <= last:
            marks[first] += 1
            marks[last + 1] -= 1

    head = messages[0] if n else {}
    head_in = n > 0 and head.get("role") not in SYSTEM_ROLES
    head_calls = set(_call_ids(head)) if head_in else set()
    head_answers = str(head.get("tool_call_id")) if head_in and head.get("role") == "tool" else None
    if head_in and head.get("role") != "user":
        fire(1, n)
    if head_answers is not None and head_answers not in head_calls:
        fire(1, n)  # the head's own result has no call before it, whatever follows

    last_result: dict[str, int] = {}  # call id -> last index >= 1 of a tool result for it
    for j in range(1, n):
        if messages[j].get("role") == "tool":
            last_result[str(messages[j].get("tool_call_id"))] = j
    for call_id in head_calls:
        if call_id != head_answers:
            fire(last_result.get(call_id, 0) + 1, n)  # unanswered once every result for it is gone

    _fire_first_message_rule(messages, head_in, fire)
    last_call: dict[str, int] = {}
    for j in range(1, n):
        message = messages[j]
        if message.get("role") in SYSTEM_ROLES:
            continue  # a system message's tool_calls are not part of the conversation
        calls = _call_ids(message)
        for call_id in calls:
            last_call[call_id] = j
        if message.get("role") == "tool":
            call_id = str(message.get("tool_call_id"))
            if call_id not in head_calls:
                fire(last_call.get(call_id, 0) + 1, j)  # a result kept without any earlier kept call
        for call_id in set(calls):
            if call_id != head_answers:
                fire(last_result.get(call_id, 0) + 1, j)  # a call kept after all its results are gone
    running = 0
    broken = [False] * (n + 2)  # s = n + 1 only arises for an empty history: nothing to break
    for s in range(1, n + 1):
        running += marks[s]
        broken[s] = running > 0
    return broken


def _fire_first_message_rule(
    messages: Sequence[Message], head_in: bool, fire: Callable[[int, int], None]
) -> None:
    """Without a conversational head, the first kept non-system message must be a user message."""
    if head_in:
        return
    seen = False
    first_role: Any = None  # role of the first non-system message at or after s (None is a role too)
    for s in range(len(messages) - 1, 0, -1):
        if messages[s].get("role") not in SYSTEM_ROLES:
            seen, first_role = True, messages[s].get("role")
        if seen and first_role != "user":
            fire(s, s)


def belief_text(estimate: int, limit: int, exact: int | None, *, refused: bool) -> str:
    """The seed's estimate against ``limit``, then the exact count and what the API made of the payload."""
    if estimate <= limit:
        believed = f"chars/4 said {estimate:,} ≤ {limit:,}, so the seed sent it"
    else:  # the seed stops removing at 4 messages, whatever the total
        believed = f"chars/4 said {estimate:,} > {limit:,}, but the seed never trims below 4 messages, so it sent it"
    if exact is None:
        return f"{believed}; no exact count (the encoding is unavailable)"
    if refused:
        verdict = "the API refuses it"
    elif exact > limit:
        verdict = f"over the budget of {limit:,}"
    else:
        verdict = "it fits"
    return f"{believed}; exact count {exact:,}; {verdict}"
