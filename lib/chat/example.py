"""The "Play the example" script, as data: the seed's three turns, then a small budget until the model forgets.

The chat page plays it one step per rerun, and the Lesson page (lib.chat.lesson) plays the same steps, both
through the same ``lib.chat.conversation`` turn as a typed message, so every figure is the real one:

    progress = ExampleProgress()
    while (step := next_step(progress)) is not None:
        result = ...send step.text (at step.budget when it has one)...
        progress = after(progress, step, result, history)   # or advance(...) with the ids

After the seed's three turns ("Hello" -> "Hi!", "What's 2+2?" -> "4", "And 4+4?" -> "8") the budget drops
to ``SMALL_BUDGET``, the user states a fact (the model says it back), and short fillers follow until no
message holding the fact is sent any more, the model's own reply included (at most ``MAX_FILLERS`` of
them). Then the user asks for the fact, and the offline model, which sees only its payload, says it can't
see it any more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from lib.chat.turn import TurnResult
from lib.core import TurnRecord

StepKind = Literal["seed", "fact", "filler", "question"]
SMALL_BUDGET = 200
MAX_FILLERS = 12  # at 200 tokens the fact's turn is trimmed after 8 fillers without a system prompt


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
                       "You ask for the fact: no message holding it is in the payload any more, so the model "
                       "can't see it.", "question", SMALL_BUDGET)


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
    fact_ids: tuple[str, ...] = ()  # the stored ids of the fact message and the reply that said it back


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
            forgotten: bool, reply_id: str | None = None) -> ExampleProgress:
    """The progress after ``step`` was sent (``message_id``: its stored user message; ``reply_id``: the reply)."""
    ids = tuple(i for i in (message_id, reply_id) if i)
    return replace(
        progress, sent=progress.sent + 1, fillers=progress.fillers + (step.kind == "filler"),
        forgotten=progress.forgotten or forgotten, asked=progress.asked or step.kind == "question",
        fact_ids=ids if step.kind == "fact" else progress.fact_ids,
    )


def after(progress: ExampleProgress, step: ExampleStep, result: TurnResult,
          history: Sequence[Mapping[str, Any]]) -> ExampleProgress:
    """``advance`` for a finished turn: its message and reply ids, and whether the fact is gone from its payload."""
    reply = result.assistant_message or {}
    return advance(progress, step, message_id=str(result.user_message.get("id")), reply_id=reply.get("id"),
                   forgotten=fact_forgotten(result.record, history, progress.fact_ids))


def fact_forgotten(record: TurnRecord, history: Sequence[Mapping[str, Any]], fact_ids: Sequence[str]) -> bool:
    """True once the turn's payload holds none of the fact's messages (they were sent, then all trimmed away):
    the model's reply that said the fact back counts as much as the user's message."""
    if not fact_ids or record.failed:
        return False
    return set(fact_ids) <= set(record.dropped_ids(history))


def total_steps_at_most() -> int:
    """An upper bound on the example's length, for a progress bar."""
    return len(SCRIPTED) + MAX_FILLERS + 1
