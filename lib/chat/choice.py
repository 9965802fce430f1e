"""The session's "You choose" layer: which turns are pinned or left out, kept in the session meta.

The chat page sets one turn at a time (``set_turn_state``); ``POST /api/chat`` sends turn numbers
(``choice_from_turns``), which replace the stored choice. Either way the next payload is built from it by
``lib.context.trim_history(..., choice=...)``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from lib.context import MANUAL_STRATEGIES, META_MANUAL_CHOICE, ChoiceConflict, ManualChoice
from lib.sessions import SessionStore

Message = Mapping[str, Any]


def manual_choice(store: SessionStore, session_id: str) -> ManualChoice:
    return ManualChoice.from_meta(store.get_meta(session_id))


def save_manual_choice(store: SessionStore, session_id: str, choice: ManualChoice) -> None:
    store.set_meta(session_id, **{META_MANUAL_CHOICE: choice.to_meta()})


def set_turn_state(store: SessionStore, session_id: str, user_id: str, state: str | None) -> ManualChoice:
    """Pin a turn ("pinned"), leave it out ("left_out") or hand it back to the strategy (None)."""
    choice = manual_choice(store, session_id).with_turn(user_id, state)
    save_manual_choice(store, session_id, choice)
    return choice


def user_turns(history: Sequence[Message], turn_count: int) -> dict[int, str]:
    """{turn number: id of its user message} for a stored history whose newest turn is ``turn_count``.

    Counted back from the newest turn, as ``lib.chat.conversation.turn_numbers`` numbers the payload, so it
    stays right after the store's cap removed the oldest messages.
    """
    ids = [str(m["id"]) for m in history if m.get("role") == "user" and isinstance(m.get("id"), str)]
    first = turn_count - len(ids) + 1
    return {first + n: user_id for n, user_id in enumerate(ids) if first + n >= 1}


def choice_from_turns(history: Sequence[Message], turn_count: int, *, pinned: Collection[int],
                      left_out: Collection[int], strategy: str) -> ManualChoice:
    """The API's choice by turn numbers, checked before anything is stored (raises ChoiceConflict)."""
    choice = ManualChoice.from_turns(pinned=pinned, left_out=left_out, user_ids=user_turns(history, turn_count))
    if choice and strategy not in MANUAL_STRATEGIES:
        raise ChoiceConflict(f"Pinned and left-out turns layer over the whole-turn strategies "
                             f"({', '.join(MANUAL_STRATEGIES)}); the {strategy!r} strategy cannot honour them. "
                             "Choose 'turns' or 'cache-aware', or send no pinned/left_out.")
    return choice


def ignored_note(choice: ManualChoice, *, strategy: str, server_side: bool) -> str | None:
    """Why a stored choice did not shape this payload, in words (None when it did, or there is none)."""
    if not choice:
        return None
    if server_side:
        return ("Pinned and left-out turns were not applied: with server-side history the server holds every "
                "earlier turn. Turn server-side history off to choose what is re-sent.")
    if strategy not in MANUAL_STRATEGIES:
        return (f"Pinned and left-out turns were not applied: they layer over the whole-turn strategies "
                f"({', '.join(MANUAL_STRATEGIES)}), and this turn used {strategy!r}.")
    return None
