"""Export and import: a round trip under a new id, on MemoryStore and a real Valkey; every bad file refused
with a clear InvalidExport and nothing written; an import is one transaction; exports mask every secret."""

from __future__ import annotations

import json
import uuid

import pytest

from lib.chat import TurnRequest, run_turn
from lib.core import HistoryLabError, Settings, TurnRecord
from lib.providers import get_provider
from lib.sessions import MemoryStore, RedisStore
from lib.transfer import MAX_DEPTH, UNCHECKED, InvalidExport, export_json, export_session, import_session
from tests.support.redis_fixtures import start_valkey


@pytest.fixture
def session(store) -> str:
    offline = get_provider("offline", delay=0)
    sid = None
    for text in ("First question", "请解释上下文窗口 🚀"):
        sid = run_turn(store, offline, TurnRequest(user_text=text, session_id=sid, system_prompt="Be brief.",
                                                   budget=400)).session_id
    assert sid is not None
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
    assert meta["imported_from"] == session
    assert meta["title"] == store.get_meta(session)["title"]
    system = TurnRecord.from_json(store.get_turns(new_id)[0]).system_text(meta)
    assert system == "Be brief."


def test_an_export_of_an_imported_session_imports_again(store, session):
    """An imported session carries ``imported_from``; exporting and importing it again writes it once, whole."""
    first = import_session(store, export_json(store, session))
    second = import_session(store, export_json(store, first))
    third = import_session(store, export_json(store, second))
    assert store.get_history(third) == store.get_history(session)
    assert store.get_meta(third)["imported_from"] == second
    assert len(store.list_sessions()) == 4


@pytest.mark.parametrize("name", ["session_id", "self", "imported_from", "imported_at", "store", "meta"])
def test_meta_keys_are_data_never_keyword_arguments(store, session, name):
    data = export_session(store, session)
    data["meta"][name] = "from the file"
    new_id = import_session(store, json.dumps(data))
    meta = store.get_meta(new_id)
    if name in ("imported_from", "imported_at"):
        assert meta[name] != "from the file"  # the import's own values win
    else:
        assert meta[name] == "from the file"


def _export(**fields) -> str:
    data = {"format": "history-lab/session", "version": 1, "session_id": "abc",
            "messages": [{"role": "user", "content": "hi", "id": "m1", "ts": 1.0}], "turns": [], "meta": {}}
    data.update(fields)
    return json.dumps(data)


def _with_message(**fields) -> str:
    return _export(messages=[{"role": "user", "content": "hi", "id": "m1", "ts": 1.0, **fields}])


def _with_turn(**fields) -> str:
    return _export(turns=[{"turn": 1, "user_id": "m1", **fields}])


def _deep(depth: int) -> str:
    return '{"format": "history-lab/session", "version": 1, "messages": ' + "[" * depth + "]" * depth + "}"


BAD_FILES = [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe garbage", "not UTF-8"),
    (b"[]", "not a History Lab session export"),
    (_deep(100_000), "nests 100,001 levels deep"),
    (_deep(MAX_DEPTH), "nests"),
    (_export(version=9), "version 9 is not supported"),
    (_export(version=True), "version true is not supported"),
    (_export(version=1.0), "version 1.0 is not supported"),
    (_export(version="1"), 'version "1" is not supported'),
    (_export(messages="nope"), "messages is the text 'nope'; expected a list"),
    (_export(messages=[]), "nothing to import"),
    (_export(messages=[5]), r"messages\[0\] is the number 5; expected an object"),
    (_with_message(role=["user"]), r"messages\[0\].role is a list; expected one of"),
    (_with_message(role="wizard"), r"messages\[0\].role is the text 'wizard'"),
    (_with_message(content={"text": "hi"}), r"messages\[0\].content is an object; expected a list"),
    (_with_message(content=5), r"messages\[0\].content is the number 5"),
    (_with_message(content=["part"]), r"messages\[0\].content\[0\] is the text 'part'; expected an object"),
    (_with_message(ts="yesterday"), r"messages\[0\].ts is the text 'yesterday'; expected a number"),
    (_with_message(id="has space"), r"messages\[0\].id is the text 'has space'"),
    (_with_message(meta={"usage": {"input_tokens": "many"}}), r"messages\[0\].meta.usage.input_tokens"),
    (_with_message(meta={"timings": {"ttft": "fast"}}), r"messages\[0\].meta.timings.ttft"),
    (_with_message(meta="nope"), r"messages\[0\].meta is the text 'nope'; expected an object"),
    (_export(messages=[{"role": "user", "id": "a"}, {"role": "assistant", "id": "a"}]), "repeats the id 'a'"),
    ('{"format": "history-lab/session", "version": 1, "messages": [{"role": "user", "ts": NaN}]}', "NaN"),
    ('{"format": "history-lab/session", "version": 1, "messages": [{"role": "user", "ts": Infinity}]}',
     "Infinity"),
    ('{"format": "history-lab/session", "version": 1, "messages": [{"role": "user", "ts": -Infinity}]}',
     "-Infinity"),
    ('{"format": "history-lab/session", "version": 1, "messages": [{"role": "user", "ts": 1e999}]}', "1e999"),
    (_with_turn(sent_ids=5), r"turns\[0\].sent_ids is the number 5; expected a list"),
    (_with_turn(usage={"input_tokens": "many"}), r"turns\[0\].usage.input_tokens is the text 'many'"),
    (_with_turn(turn="1"), r"turns\[0\].turn is the text '1'; expected a whole number"),
    (_with_turn(sent=[["m1"]]), r"turns\[0\].sent\[0\] is a list; expected a pair"),
    (_with_turn(problems=[1]), r"turns\[0\].problems\[0\] is the number 1; expected text"),
    (_with_turn(system_sent="yes"), r"turns\[0\].system_sent is the text 'yes'; expected true or false"),
    (_export(turns=["x"]), r"turns\[0\] is the text 'x'; expected an object"),
    (_export(comparisons=[{"columns": "x"}]), r"comparisons\[0\].columns is the text 'x'; expected a list"),
    (_export(comparisons=[{"columns": [{"usage": {"output_tokens": []}}]}]),
     r"comparisons\[0\].columns\[0\].usage.output_tokens is a list"),
    (_export(meta=[]), "meta is a list; expected an object"),
    (_export(meta={"title": {"nested": 1}}), "meta.title is an object"),
    (_export(session_id=["x"]), "session_id is a list; expected a session id"),
]


@pytest.mark.parametrize(("data", "message"), BAD_FILES)
def test_bad_files_are_refused_clearly_and_nothing_is_written(store, data, message):
    before = store.list_sessions()
    with pytest.raises(InvalidExport, match=message) as refused:
        import_session(store, data)
    assert isinstance(refused.value, HistoryLabError)
    assert store.list_sessions() == before


def test_more_messages_than_the_cap_are_refused_with_the_numbers():
    store = MemoryStore(max_messages=5)
    messages = [{"role": "user", "content": str(n), "id": f"m{n}"} for n in range(6)]
    with pytest.raises(InvalidExport, match=r"holds 6 messages; this store keeps at most 5 .*SESSION_MAX_MESSAGES"):
        import_session(store, _export(messages=messages))
    assert store.list_sessions() == []
    import_session(store, _export(messages=messages[:5]))  # at the cap: kept whole, nothing cut
    assert [len(store.get_history(s.id)) for s in store.list_sessions()] == [5]


def test_old_records_with_repeated_turn_numbers_are_renumbered_not_dropped(store):
    turns = [{"turn": n, "sent_ids": ["m1"], "strategy": "turns"} for n in (1, 2, 2, None)]
    new_id = import_session(store, _export(turns=turns))
    assert [t["turn"] for t in store.get_turns(new_id)] == [1, 2, 3, 4]
    assert [TurnRecord.from_json(t).sent for t in store.get_turns(new_id)] == [(("m1", "m1"),)] * 4


def test_oversized_file_is_rejected(store, session):
    with pytest.raises(InvalidExport, match="limit is 1,000"):
        import_session(store, export_json(store, session), max_bytes=1_000)


def test_every_record_field_type_has_an_import_check():
    assert UNCHECKED == []


def test_an_import_the_server_cannot_hold_leaves_nothing(tmp_path):
    """A real Valkey out of memory half-way: the store's one transaction leaves nothing listed."""
    server = start_valkey(tmp_path, "--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
    try:
        store = RedisStore(server.url, prefix=f"t-{uuid.uuid4().hex[:8]}", max_messages=10_000)
        messages = [{"role": "user", "content": "x" * 2_000, "id": f"m{n}"} for n in range(3_000)]
        with pytest.raises(HistoryLabError):
            import_session(store, _export(messages=messages), max_bytes=50_000_000)
        assert store.list_sessions() == []
        assert server.client().dbsize() == 0
        store.client.close()
    finally:
        server.stop()


def test_export_masks_every_configured_secret(store, session, monkeypatch):
    key = "vllm-token-abc123xyz"  # not shaped like sk-...: only the configured value can find it
    Settings.from_env({"OPENAI_COMPATIBLE_API_KEY": key})
    record = dict(store.get_turns(session)[-1])
    record.update(turn=99, error=f"401 Unauthorized: invalid key {key}", error_type="ProviderError")
    store.append_turn(session, record)
    store.set_meta(session, note=f"key {key}", **{f"field {key}": "x"})
    store.append(session, {"role": "assistant", "content": f"The gateway said {key}", "meta": {"model": key}})
    store.append_comparison(session, {"columns": [{"error": f"bad {key}", "request": {"headers": key}}]})
    store.set_meta(session, api_key="sk-live-abcdefghijkl")
    text = export_json(store, session)
    assert key not in text and "abc123xyz" not in text
    assert text.count("***") >= 6
    assert "sk-live" not in text and "api_key" not in text
    assert json.loads(text)["turns"][0]["usage"]["input_tokens"] > 0  # token counts are not "secrets"


def test_export_of_odd_stored_numbers_is_still_valid_json(redis_store):
    """The store refuses NaN, but an entry written by hand (or by another tool) may hold one."""
    sid = uuid.uuid4().hex
    redis_store.client.rpush(redis_store.key(sid, "messages"),
                             '{"role": "user", "content": "x", "id": "m1", "meta": {"cost": NaN}}')
    data = json.loads(export_json(redis_store, sid))
    assert data["messages"][-1]["meta"]["cost"] is None
    import_session(redis_store, json.dumps(data))


def test_export_shape(store, session):
    data = export_session(store, session)
    assert data["format"] == "history-lab/session" and data["version"] == 1 and data["session_id"] == session
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"] * 2
