"""Export and import: a round trip under a new id; bad files rejected with nothing written; no keys."""

from __future__ import annotations

import json

import pytest

from lib.chat import TurnRequest, run_turn
from lib.providers import get_provider
from lib.transfer import InvalidExport, export_json, export_session, import_session


@pytest.fixture
def session(store) -> str:
    offline = get_provider("offline", delay=0)
    sid = None
    for text in ("First question", "请解释上下文窗口 🚀"):
        sid = run_turn(store, offline, TurnRequest(user_text=text, session_id=sid, system_prompt="Be brief.",
                                                   budget=400)).session_id
    store.append_comparison(sid, {"new_message": "compare me", "columns": [{"label": "offline"}]})
    return sid


def test_round_trip_creates_a_new_session_with_the_same_content(store, session):
    exported = export_json(store, session)
    new_id = import_session(store, exported.encode())
    assert new_id != session
    assert store.get_history(new_id) == store.get_history(session)
    assert store.get_turns(new_id) == store.get_turns(session)
    assert store.get_comparisons(new_id) == store.get_comparisons(session)
    meta = store.get_meta(new_id)
    assert meta["system_prompt"] == "Be brief." and meta["imported_from"] == session
    assert meta["title"] == store.get_meta(session)["title"]


def test_export_never_contains_a_key(store, session):
    store.set_meta(session, api_key="sk-live-abcdefghijkl", note="my key is sk-proj-abcdefghijklmnop")
    text = export_json(store, session)
    assert "sk-live" not in text and "sk-proj-abcdefghijklmnop" not in text and "api_key" not in text
    assert "[redacted key]" in text
    assert json.loads(text)["turns"][0]["usage"]["input_tokens"] > 0  # token counts are not "secrets"


@pytest.mark.parametrize(("data", "message"), [
    (b"{not json", "not valid JSON"),
    (b"[]", "not a History Lab session export"),
    (json.dumps({"format": "history-lab/session", "version": 9, "messages": []}), "version 9"),
    (json.dumps({"format": "history-lab/session", "version": 1, "messages": [{"role": "wizard"}]}), "role"),
    (json.dumps({"format": "history-lab/session", "version": 1, "messages": [{"role": "user", "content": 5}]}),
     "content must be text"),
    (json.dumps({"format": "history-lab/session", "version": 1, "messages": "nope"}), "must be a list"),
    (json.dumps({"format": "history-lab/session", "version": 1, "messages": []}), "nothing to import"),
    (b"\xff\xfe garbage", "not valid JSON"),
])
def test_malformed_files_are_rejected_and_nothing_is_written(store, data, message):
    before = store.list_sessions()
    with pytest.raises(InvalidExport, match=message):
        import_session(store, data)
    assert store.list_sessions() == before


def test_oversized_file_is_rejected(store, session):
    with pytest.raises(InvalidExport, match="limit is 1,000"):
        import_session(store, export_json(store, session), max_bytes=1_000)


def test_export_shape(store, session):
    data = export_session(store, session)
    assert data["format"] == "history-lab/session" and data["version"] == 1 and data["session_id"] == session
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"] * 2
