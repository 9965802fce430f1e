"""The "summary" strategy inside a chat turn: the session's stored Summary, and who writes the next one.

The summary is a session artefact in the session meta: the current one under ``summary`` (reused on later
turns until the payload fills again; the next compaction summarises it plus the newly dropped turns), and
every version under ``summary:<id>`` so an older turn record's ``summary_id`` still resolves (lib.views.timeline
reads every meta field starting with "summary"). The stored history itself is never changed.

With the offline model the summary is extractive and free; with a real provider it is a separate, visible
request to the same provider and model (its body and usage kept on the Summary, its cost on the record).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from lib.context import ExtractiveSummarizer, ProviderSummarizer, Summarizer, Summary
from lib.core import Price
from lib.providers import Provider
from lib.sessions import SessionStore

Message = Mapping[str, Any]

META_SUMMARY = "summary"
META_SUMMARY_NEXT = "summary_next_id"  # not JSON: lib.views.timeline skips it when it looks for summaries
SUMMARY_VERSION_PREFIX = "summary:"


def stored_summary(meta: Mapping[str, str]) -> Summary | None:
    """The session's current summary, or None (none yet, or unreadable: then the turn starts afresh)."""
    return summary_from_text(meta.get(META_SUMMARY))


def summary_from_text(text: str | None) -> Summary | None:
    if not text:
        return None
    try:
        return Summary.from_json(json.loads(text))
    except ValueError:
        return None


def store_summary(store: SessionStore, session_id: str, summary: Summary, *, next_id: str | None) -> None:
    """Keep ``summary`` as the current one, and as a version that old records can still name.

    ``next_id``: the user message the summary stops before, so a later turn can check it still lines up.
    """
    text = json.dumps(summary.to_json(), ensure_ascii=False)
    store.set_meta(session_id, **{META_SUMMARY: text, SUMMARY_VERSION_PREFIX + summary.id: text,
                                  META_SUMMARY_NEXT: next_id})


def usable_summary(meta: Mapping[str, str], history: Sequence[Message]) -> tuple[Summary | None, str | None]:
    """The stored summary if it still lines up with ``history``, else (None, a note saying why not).

    lib.context.compaction counts a summary's turns by user messages from the start of the history. When the store's
    cap has removed the oldest messages since, that count points at other turns: the summary is not reused
    (turns that it does not cover would be skipped), and the next compaction writes a fresh one.
    """
    summary = stored_summary(meta)
    expected = meta.get(META_SUMMARY_NEXT)
    if summary is None or not expected:
        return summary, None
    users = [m for m in history if m.get("role") == "user"]
    if len(users) > summary.last_turn and users[summary.last_turn].get("id") == expected:
        return summary, None
    return None, (f"The stored summary ({summary.label}) no longer lines up with the stored history (its oldest "
                  "messages were removed); it was not sent, and a new one is written when the payload fills.")


def session_summaries(meta: Mapping[str, str]) -> dict[str, Summary]:
    """Every stored summary version by id (the page opens the one a record names)."""
    found: dict[str, Summary] = {}
    for name, value in meta.items():
        if name.startswith(SUMMARY_VERSION_PREFIX):
            summary = summary_from_text(value)
            if summary is not None:
                found[summary.id] = summary
    current = stored_summary(meta)
    if current is not None:
        found.setdefault(current.id, current)
    return found


def summarizer_for(provider: Provider, *, model: str, prices: Mapping[str, Price] | None = None) -> Summarizer:
    """Extractive for the offline model (no key, deterministic); otherwise the provider itself is asked."""
    if provider.capabilities.local:
        return ExtractiveSummarizer()
    return ProviderSummarizer(provider, model=model, prices=prices)


