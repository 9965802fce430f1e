"""POST /api/chat on a session this server has already answered: it decides from the settings it saw there
last (no separate meta read), and the turn's opening store call checks them, so settings changed by another
writer in between (the chat page, another server) are still the ones the turn runs with."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx

from lib.core import SessionSettings, Settings
from lib.services import store_handle
from tests.support.api_inprocess import inprocess_api


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text[:500]
    return dict(response.json())


def test_settings_changed_by_another_writer_between_turns_are_the_ones_the_next_turn_runs_with(monkeypatch):
    post = inprocess_api(monkeypatch)
    first = _ok(post("/chat", {"message": "Hello", "provider": "offline", "strategy": "turns", "budget": 5000}))
    sid = first["sessionId"]
    assert _ok(post("/chat", {"message": "Again", "sessionId": sid}))["strategy"] == "turns"
    store = store_handle(Settings.from_env()).store
    # Another writer (the page, say) runs a turn under other settings: the session's settings are now these.
    changed = SessionSettings(strategy="cache-aware", budget=4000, reserve=0, provider="offline",
                              model="offline-teacher", system_prompt="Answer in French.")
    store.set_meta(sid, **changed.meta_fields())
    turn = _ok(post("/chat", {"message": "And now?", "sessionId": sid, "include": ["request"]}))
    assert (turn["strategy"], turn["model"]) == ("cache-aware", "offline-teacher")
    assert turn["request"]["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert SessionSettings.from_meta(store.get_meta(sid)) == changed  # and the turn stored the same again
    # What the body names still wins over what the session holds.
    assert _ok(post("/chat", {"message": "Seed?", "sessionId": sid, "strategy": "seed"}))["strategy"] == "seed"
