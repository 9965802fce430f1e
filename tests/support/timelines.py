"""Play a conversation through the real turn with the offline model, and build its timeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.chat import TurnRequest, TurnResult, run_turn
from lib.providers import OfflineProvider
from lib.sessions import MemoryStore
from lib.views import Timeline, build_timeline

SYSTEM = "You are a patient tutor."
# ~1,500 tokens: a prefix long enough for OpenAI's automatic cache (1,024 tokens minimum).
LONG_SYSTEM = "You are a patient tutor who explains history step by step. " * 130


def play(texts: Sequence[str], *, strategy: str = "turns", budget: int = 400, system: str = SYSTEM,
         store: MemoryStore | None = None) -> tuple[MemoryStore, str, list[TurnResult]]:
    store = store or MemoryStore()
    provider = OfflineProvider(delay=0)
    session_id: str | None = None
    results = []
    for text in texts:
        result = run_turn(store, provider, TurnRequest(user_text=text, session_id=session_id, system_prompt=system,
                                                       strategy=strategy, budget=budget,
                                                       reference_model="gpt-4o-mini"))
        session_id = result.session_id
        results.append(result)
    assert session_id is not None
    return store, session_id, results


def timeline_of(store: MemoryStore, session_id: str, **options: Any) -> Timeline:
    return build_timeline(store.get_history(session_id), store.get_turns(session_id),
                          meta=store.get_meta(session_id), reference_model="gpt-4o-mini", **options)
