"""The sessions page under AppTest: list, export, import (once per upload; malformed refused), delete with
confirmation; and every page renders, without a traceback, sessions whose stored fields have odd types."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from lib.chat import TurnRequest, run_turn
from lib.providers import get_provider
from lib.sessions import RedisStore
from lib.transfer import export_json, import_session
from tests.support.apptest_helpers import APP, open_app, use_memory_store, use_redis_store

PAGE = "pages/sessions.py"
PAGES = ["pages/chat.py", "pages/inspector.py", "pages/compare.py", PAGE]


@pytest.fixture
def store(monkeypatch):
    use_memory_store(monkeypatch)
    from pages.ui import services

    return services.store_handle().store


def chat(store, text: str) -> str:
    return run_turn(store, get_provider("offline", delay=0), TurnRequest(user_text=text)).session_id


def test_lists_sessions_with_the_memory_warning(store):
    first, second = chat(store, "Alpha question"), chat(store, "Beta question")
    at = open_app(PAGE)
    assert not at.exception
    assert any("lost on restart" in w.value for w in at.warning)
    table = at.dataframe[0].value
    assert set(table["id"]) == {first, second}
    assert set(table["title"]) == {"Alpha question", "Beta question"}
    assert list(table["messages"]) == [2, 2] and list(table["turns"]) == [1, 1]
    assert all(ttl.startswith(("2 h", "1 h")) for ttl in table["TTL left"])


def test_titles_show_bidi_controls(store):
    sid = chat(store, "invoice\u202eexe.pdf please")
    at = open_app(PAGE, session=sid)
    assert list(at.dataframe[0].value["title"]) == ["invoice⟪U+202E⟫exe.pdf please"]
    assert "\u202e" not in at.selectbox(key="ses_pick").format_func(sid)


def test_export_button_offers_the_json_without_keys(store):
    sid = chat(store, "Export me")
    at = open_app(PAGE, session=sid)
    assert at.selectbox(key="ses_pick").value == sid
    exported = json.loads(export_json(store, sid))
    assert exported["messages"][0]["content"] == "Export me"
    assert "api_key" not in json.dumps(exported)
    assert at.get("download_button")  # the page offers it (built when clicked)


def test_delete_needs_confirmation(store):
    keep, doomed = chat(store, "Keep me"), chat(store, "Delete me")
    at = open_app(PAGE, session=doomed)
    at.button(key="ses_delete").click().run()
    assert store.exists(doomed) and any("cannot be undone" in w.value for w in at.warning)
    at.button(key="ses_delete_yes").click().run()
    assert not at.exception
    assert not store.exists(doomed) and store.exists(keep)
    assert any(f"Deleted session `{doomed}`" in s.value for s in at.success)
    assert set(at.dataframe[0].value["id"]) == {keep}


def test_imported_session_is_listed_and_opens(store):
    source = chat(store, "Original conversation")
    new_id = import_session(store, export_json(store, source))
    at = open_app(PAGE, session=new_id)
    assert new_id in set(at.dataframe[0].value["id"])
    at.button(key="ses_open").click().run()
    assert not at.exception
    assert at.session_state["hl_session_id"] == new_id


def _upload(at, name: str, data: bytes):
    return at.file_uploader(key="ses_import").set_value((name, data, "application/json")).run()


def test_upload_imports_a_good_file_and_rejects_a_malformed_one(store):
    source = chat(store, "Round trip through the uploader")
    at = open_app(PAGE)
    _upload(at, "broken.json", b"{not json")
    assert any("Nothing was imported" in e.value and "not valid JSON" in e.value for e in at.error)
    assert len(store.list_sessions()) == 1

    _upload(at, "good.json", export_json(store, source).encode())
    assert not at.exception
    message = next(s.value for s in at.success if "Imported as session" in s.value)
    new_id = message.split("`")[1]
    assert store.get_history(new_id) == store.get_history(source)
    assert new_id in set(at.dataframe[0].value["id"])  # listed on the run that imported it


def test_one_upload_and_three_clicks_make_one_session(store):
    """The file stays in the uploader, so every click reran the import (7 partial sessions)."""
    source = chat(store, "Import me once")
    data = export_json(store, source).encode()
    at = open_app(PAGE, session=source)
    _upload(at, "export.json", data)
    for _ in range(3):
        at.button(key="ses_delete").click().run()
        at.button(key="ses_delete_no").click().run()
    assert not at.exception
    assert len(store.list_sessions()) == 2
    _upload(at, "same-again.json", data)  # the same bytes again: still the session they became
    assert len(store.list_sessions()) == 2


# --- No tracebacks from stored data (13.11) ----------------------------------------------------------------

GOOD_USER = {"role": "user", "content": "hello", "id": "u1", "ts": 1.0}

# Nine crafted sessions, written straight into Valkey (as an old version, another tool or a hand edit
# could), each with fields of the wrong type. Keys: messages, turns, comparisons (raw JSON) and meta.
ODD_SESSIONS: dict[str, dict[str, list[object] | dict[str, str]]] = {
    "usage-many": {"messages": [GOOD_USER, {"role": "assistant", "content": "hi", "id": "a1",
                                            "meta": {"usage": {"input_tokens": "many"}, "timings": "fast"}}],
                   "turns": [{"turn": 1, "user_id": "u1", "usage": {"input_tokens": "many"}}]},
    "sent-ids-5": {"messages": [GOOD_USER], "turns": [{"turn": 1, "sent_ids": 5, "dropped_ids": "x",
                                                       "user_id": "u1", "error": 7}]},
    "content-dict": {"messages": [GOOD_USER, {"role": "assistant", "content": {"text": "hi"}, "id": "a1"}]},
    "role-unknown": {"messages": [{"role": "wizard", "content": "abracadabra", "id": "w1"}, GOOD_USER]},
    "ts-string": {"messages": [{**GOOD_USER, "ts": "yesterday"}], "turns": [{"turn": 1, "ts": "now"}]},
    "role-list": {"messages": [{"role": ["user"], "content": "x", "id": 5}, {"content": None}, [1, 2]]},
    "turn-fields": {"messages": [GOOD_USER], "turns": [{"turn": "one", "budget": "lots", "sent": [[1]],
                                                        "problems": "bad", "usage": [], "strategy": 3}, 7]},
    "comparison": {"messages": [GOOD_USER], "comparisons": [{"columns": "x", "new_message": 5},
                                                              {"columns": [{"usage": "x", "text": 5}]}]},
    "meta-and-images": {
        "messages": [{**GOOD_USER, "content": "![x](http://127.0.0.1:9/p.png) \u202e" + "y" * 5_000},
                     {"role": "assistant", "content": ["part", {"type": "text"}], "id": "a1", "meta": 5}],
        "meta": {"title": "\u202eevil", "system_prompt": "{not json", "budget": "lots", "strategy": "nope",
                 "previous_response_id": "[]", "turn_seq": "x"},
    },
}


@pytest.fixture
def odd_store(monkeypatch, valkey_server) -> Iterator[RedisStore]:
    """The app on a real Valkey with a private prefix, holding the nine odd sessions."""
    prefix = f"odd-{uuid.uuid4().hex[:8]}"
    use_redis_store(monkeypatch, valkey_server.url, prefix)
    store = RedisStore(valkey_server.url, prefix=prefix)
    for sid, parts in ODD_SESSIONS.items():
        store.append(sid, {"role": "user", "content": "listed", "id": "seed"})  # index, TTL, counters
        for part in ("messages", "turns", "comparisons"):
            entries = parts.get(part, [])
            assert isinstance(entries, list)
            if entries:
                store.client.rpush(store.key(sid, part), *(json.dumps(e) for e in entries))
        meta = parts.get("meta", {})
        assert isinstance(meta, dict)
        for field, value in meta.items():
            store.client.hset(store.key(sid, "meta"), field, value)
    yield store
    for key in store.client.scan_iter(match=f"{prefix}:*"):
        store.client.delete(key)
    store.client.close()


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("case", list(ODD_SESSIONS))
def test_every_page_renders_odd_stored_data(odd_store, case, page):
    # Straight to the page (open_app would run the chat page first, and report its exceptions here).
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["session"] = case
    at.switch_page(page).run()
    assert not at.exception, f"{page} on {case}: {at.exception[0].message if at.exception else ''}"
    assert not [e for e in at.error if "Unexpected error" in e.value], [e.value for e in at.error]
