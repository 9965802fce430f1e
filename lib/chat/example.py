"""The "Play the example" script, as data: the seed's three turns, then a small budget until the model forgets.

The chat page plays it one step per rerun, through the same ``lib.chat.conversation`` turn as a typed message, so the
payload timeline fills up row by row and every figure is the real one:

    progress = ExampleProgress()
    while (step := next_step(progress)) is not None:
        result = ...send step.text (at step.budget when it has one)...
        progress = advance(progress, step, forgotten=fact_forgotten(result.record, history, fact_id))

After the seed's three turns the budget drops to ``SMALL_BUDGET``, the user states a fact, and short
fillers follow until the turn that holds the fact is trimmed away (at most ``MAX_FILLERS`` of them). Then
the user asks for the fact, and the offline model, which sees only its payload, says it cannot see it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from lib.core import TurnRecord

StepKind = Literal["seed", "fact", "filler", "question"]
SMALL_BUDGET = 200
MAX_FILLERS = 8


@dataclass(frozen=True)
class ExampleStep:
    """One message of the example and the one-line caption shown while it is sent."""

    text: str
    caption: str
    kind: StepKind = "seed"
    budget: int | None = None  # None: the budget chosen in the sidebar


SEED_TURNS: tuple[ExampleStep, ...] = (
    ExampleStep("Hello", "Turn 1: the payload is the system prompt plus your message."),
    ExampleStep("What's 2+2?", "Turn 2: the model is stateless, so turn 1 is sent again with the new message."),
    ExampleStep("And 4+4?", "Turn 3: everything is re-sent once more; the payload grows every turn."),
)
FACT = ExampleStep("Remember this: my favourite colour is teal.",
                   f"The budget drops to {SMALL_BUDGET} tokens, and you state a fact.", "fact", SMALL_BUDGET)
QUESTION = ExampleStep("What is my favourite colour?",
                       "You ask for the fact: its turn is no longer in the payload, so the model cannot see it.",
                       "question", SMALL_BUDGET)


def filler(n: int) -> ExampleStep:
    return ExampleStep(f"Tell me something about the number {n}.",
                       f"Filler {n}: the payload is full, so the oldest turns are trimmed.", "filler", SMALL_BUDGET)


@dataclass(frozen=True)
class ExampleProgress:
    """How far the example got: steps sent, fillers sent, and whether the fact has been trimmed yet."""

    sent: int = 0
    fillers: int = 0
    forgotten: bool = False
    asked: bool = False
    fact_id: str | None = None  # the stored id of the fact message, once sent


SCRIPTED: tuple[ExampleStep, ...] = (*SEED_TURNS, FACT)


def next_step(progress: ExampleProgress) -> ExampleStep | None:
    """The next message to send, or None when the example is over."""
    if progress.sent < len(SCRIPTED):
        return SCRIPTED[progress.sent]
    if progress.asked:
        return None
    if not progress.forgotten and progress.fillers < MAX_FILLERS:
        return filler(progress.fillers + 1)
    return QUESTION


def advance(progress: ExampleProgress, step: ExampleStep, *, message_id: str | None,
            forgotten: bool) -> ExampleProgress:
    """The progress after ``step`` was sent (``message_id``: its stored user message)."""
    return replace(
        progress, sent=progress.sent + 1, fillers=progress.fillers + (step.kind == "filler"),
        forgotten=progress.forgotten or forgotten, asked=progress.asked or step.kind == "question",
        fact_id=message_id if step.kind == "fact" else progress.fact_id,
    )


def fact_forgotten(record: TurnRecord, history: Sequence[Mapping[str, Any]], fact_id: str | None) -> bool:
    """True once the turn's payload no longer holds the fact message (it was sent, then trimmed away)."""
    if fact_id is None or record.failed:
        return False
    return fact_id in set(record.dropped_ids(history))


def total_steps_at_most() -> int:
    """An upper bound on the example's length, for a progress bar."""
    return len(SCRIPTED) + MAX_FILLERS + 1
