"""The sessions page under AppTest: list, export, import (good and malformed), delete with confirmation."""

from __future__ import annotations

import json

import pytest

from lib.chat import TurnRequest, run_turn
from lib.providers import get_provider
from lib.transfer import export_json, import_session
from tests.apptest_helpers import open_app, use_memory_store

PAGE = "pages/sessions.py"


@pytest.fixture
def store(monkeypatch):
    use_memory_store(monkeypatch)
    from pages import services

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


def test_export_button_offers_the_json_without_keys(store):
    sid = chat(store, "Export me")
    at = open_app(PAGE, session=sid)
    assert at.selectbox(key="ses_pick").value == sid
    exported = json.loads(export_json(store, sid))
    assert exported["messages"][0]["content"] == "Export me"
    assert "api_key" not in json.dumps(exported)
    assert at.get("download_button")  # the page offers it


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


def test_upload_imports_a_good_file_and_rejects_a_malformed_one(store):
    source = chat(store, "Round trip through the uploader")
    at = open_app(PAGE)
    at.file_uploader(key="ses_import").set_value(("broken.json", b"{not json", "application/json")).run()
    assert any("Nothing was imported" in e.value and "not valid JSON" in e.value for e in at.error)
    assert len(store.list_sessions()) == 1

    at.file_uploader(key="ses_import").set_value(
        ("good.json", export_json(store, source).encode(), "application/json")).run()
    assert not at.exception
    message = next(s.value for s in at.success if "Imported as session" in s.value)
    new_id = message.split("`")[1]
    assert store.get_history(new_id) == store.get_history(source)
    at.run()  # the uploader keeps the file; a rerun must not import it twice
    assert len(store.list_sessions()) == 2
