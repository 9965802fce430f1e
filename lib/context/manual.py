""""You choose": turns pinned (never trimmed) or left out (never sent) by hand, layered over a whole-turn strategy.

A choice names turns by the id of the user message that starts them, so it survives the store's cap and
needs no turn counter. The trimmer (``lib.context.trimming.trim_history`` with ``choice=``) keeps every
guarantee it has without one: whole turns only (a pinned or left-out turn is the user message and everything
up to the next user message, tool calls and results included), the newest user message always sent, and the
payload after the system prompt starting with a user message.

Leaving out an old turn removes it from the middle of the payload, so the prompt's prefix changes from that
point on and the provider's cache misses there: the timeline's cache badge says so.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.core import HistoryLabError

# Session meta field holding the choice as JSON: {"pinned": [user ids], "left_out": [user ids]}.
META_MANUAL_CHOICE = "manual_choice"
# Strategies the choice layers over: the ones that drop whole turns from a history index.
MANUAL_STRATEGIES: tuple[str, ...] = ("turns", "cache-aware")
MANUAL_LABEL = "You choose"
MANUAL_HELP = ("Pin a turn to keep it in every payload whatever the budget, or leave it out so it is never "
               "sent. The strategy above trims the rest, whole turns at a time.")
# A choice names at most this many turns, so the meta field and a record's ranges stay small.
MAX_CHOSEN_TURNS = 1_000


class ChoiceConflict(HistoryLabError, ValueError):
    """A turn was both pinned and left out, or the choice names a turn that does not exist."""


@dataclass(frozen=True)
class ManualChoice:
    """Turns pinned and left out, each named by the id of its user message."""

    pinned: frozenset[str] = frozenset()
    left_out: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        both = self.pinned & self.left_out
        if both:
            raise ChoiceConflict(f"{len(both)} turn(s) are both pinned and left out; a turn is either kept "
                                 "always or never sent. Choose one for each.")
        if len(self.pinned) + len(self.left_out) > MAX_CHOSEN_TURNS:
            raise ChoiceConflict(f"A choice names at most {MAX_CHOSEN_TURNS:,} turns; got "
                                 f"{len(self.pinned) + len(self.left_out):,}.")

    def __bool__(self) -> bool:
        return bool(self.pinned or self.left_out)

    @classmethod
    def of(cls, *, pinned: Iterable[str] = (), left_out: Iterable[str] = ()) -> ManualChoice:
        return cls(frozenset(pinned), frozenset(left_out))

    def with_turn(self, user_id: str, state: str | None) -> ManualChoice:
        """The choice with one turn set to "pinned", "left_out" or None (the strategy decides)."""
        pinned, left_out = set(self.pinned) - {user_id}, set(self.left_out) - {user_id}
        if state == "pinned":
            pinned.add(user_id)
        elif state == "left_out":
            left_out.add(user_id)
        elif state is not None:
            raise ValueError(f"A turn is 'pinned', 'left_out' or None, not {state!r}.")
        return ManualChoice(frozenset(pinned), frozenset(left_out))

    def state_of(self, user_id: str) -> str | None:
        return "pinned" if user_id in self.pinned else "left_out" if user_id in self.left_out else None

    def to_meta(self) -> str:
        return json.dumps({"pinned": sorted(self.pinned), "left_out": sorted(self.left_out)})

    @classmethod
    def from_meta(cls, meta: Mapping[str, str]) -> ManualChoice:
        """The stored choice; a missing or malformed field reads as no choice (never raises)."""
        raw = meta.get(META_MANUAL_CHOICE)
        try:
            data = json.loads(raw) if isinstance(raw, str) and raw else {}
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        pinned, left_out = _ids(data.get("pinned")), _ids(data.get("left_out"))
        try:
            return cls(pinned, left_out - pinned)
        except ChoiceConflict:
            return cls()

    @classmethod
    def from_turns(cls, *, pinned: Collection[int], left_out: Collection[int],
                   user_ids: Mapping[int, str]) -> ManualChoice:
        """The choice for turn numbers (the API's form); ``user_ids`` maps each existing turn to its user id."""
        unknown = sorted(t for t in {*pinned, *left_out} if t not in user_ids)
        if unknown:
            known = sorted(user_ids)
            have = f"turns {known[0]}–{known[-1]}" if known else "no earlier turns"
            raise ChoiceConflict(f"Turn(s) {', '.join(map(str, unknown[:10]))} are not in this session's history "
                                 f"(it has {have}). Pin or leave out only earlier turns of this session.")
        both = sorted(set(pinned) & set(left_out))
        if both:
            raise ChoiceConflict(f"Turn(s) {', '.join(map(str, both[:10]))} are both pinned and left out; "
                                 "choose one for each turn.")
        return cls(frozenset(user_ids[t] for t in pinned), frozenset(user_ids[t] for t in left_out))


def _ids(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value[:MAX_CHOSEN_TURNS] if isinstance(v, str))


@dataclass(frozen=True)
class ChosenTurns:
    """Where a choice falls in one candidate list: positions of each pinned and each left-out message."""

    pinned: frozenset[int]
    left_out: frozenset[int]
    notes: tuple[str, ...] = ()


def locate(messages: Sequence[Mapping[str, Any]], choice: ManualChoice, *, system_roles: Collection[str],
           newest: int) -> ChosenTurns:
    """The message positions of every chosen turn (its user message up to the next user message; system
    messages are never part of a turn's choice). The newest turn is always sent, so it is never left out."""
    pinned: set[int] = set()
    left_out: set[int] = set()
    notes: list[str] = []
    state: str | None = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "user":
            state = choice.state_of(str(message.get("id"))) if message.get("id") is not None else None
            if i == newest and state == "left_out":
                notes.append("The newest message cannot be left out: it is the one being sent.")
                state = None
            elif i == newest:
                state = None  # pinned or not, the newest turn is always sent
        if role in system_roles or state is None:
            continue
        (pinned if state == "pinned" else left_out).add(i)
    return ChosenTurns(frozenset(pinned), frozenset(left_out), tuple(notes))
