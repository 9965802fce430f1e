"""'You choose' in a chat: a pinned turn survives the budget, a left-out turn is never sent, and the record,
the timeline, the badges and the cache say so; the HTTP API takes the same choice by turn number."""

from __future__ import annotations

import pytest

from lib.chat import TurnRequest, run_turn
from lib.chat.choice import manual_choice, set_turn_state, user_turns
from lib.context import ChoiceConflict
from lib.core import read_turns
from lib.providers import get_provider
from lib.sessions import MemoryStore
from lib.views import build_timeline
from tests.support.api_inprocess import inprocess_api

WORDS = " word" * 40


def chat(store, session, text, **options):
    provider = get_provider("offline", delay=0)
    request = TurnRequest(user_text=text, session_id=session, budget=options.pop("budget", 400), **options)
    result = run_turn(store, provider, request)
    assert result.error is None, result.error
    return result


def opened(turns: int, *, words: str = WORDS, **options):
    store, session = MemoryStore(), "manual"
    for n in range(1, turns + 1):
        chat(store, session, f"turn {n} says{words}", budget=100_000, **options)
    return store, session


def user_id(store, session, turn):
    return user_turns(store.get_history(session), store.turn_count(session))[turn]


def test_a_pinned_turn_is_sent_whatever_the_budget_and_the_timeline_marks_it():
    store, session = opened(5)
    set_turn_state(store, session, user_id(store, session, 1), "pinned")
    result = chat(store, session, "what did turn 1 say?", budget=200)
    sent = [m["content"] for m in result.payload]
    assert sent[0].startswith("turn 1 says") and "turn 2 says" not in " ".join(sent)
    assert result.record.pinned and result.trim.pinned_ids
    timeline = build_timeline(store.get_history(session), store.get_turns(session), meta=store.get_meta(session))
    row = timeline.row(result.turn)
    pinned = [b for b in timeline.blocks(result.turn) if b.pinned]
    assert [b.message_turn for b in pinned] == [1, 1]
    assert any("pinned by you" in b.text for b in row.badges)
    assert timeline.pinned_tokens(result.turn) == sum(b.tokens for b in pinned)


def test_leaving_out_an_old_turn_drops_it_breaks_the_cache_and_the_badge_says_why():
    # Long enough turns that the prefix passes OpenAI's 1,024-token minimum and is cached at all.
    store, session = opened(3, words=WORDS * 10, reference_model="gpt-4o-mini")
    history = store.get_history(session)
    set_turn_state(store, session, user_id(store, session, 2), "left_out")
    result = chat(store, session, "next" + WORDS * 10, budget=100_000, reference_model="gpt-4o-mini")
    assert not any("turn 2 says" in str(m["content"]) for m in result.payload)
    assert {m["id"] for m in history[2:4]} == set(result.trim.left_out_ids)
    records = read_turns(store.get_turns(session))
    left_out = records[-1].left_out_ids(store.get_history(session))
    assert records[-1].left_out and left_out == [m["id"] for m in history[2:4]]
    timeline = build_timeline(store.get_history(session), store.get_turns(session), meta=store.get_meta(session))
    row = timeline.row(result.turn)
    assert [b.left_out for b in timeline.dropped_blocks(result.turn)] == [True, True]
    assert timeline.left_out_tokens(result.turn) == timeline.dropped_tokens(result.turn) > 0
    texts = [b.text for b in row.badges]
    assert any("left out by you: 2 messages never sent" in t for t in texts)
    # The previous request sent turn 2 right after turn 1: leaving it out changes the prefix there.
    cache = next((t for t in texts if t.startswith("cache")), texts)
    assert "cache broken" in cache and "turn 2 left out by you" in cache, cache


def test_the_choice_is_kept_in_the_session_meta_and_ignored_with_a_note_by_the_summary_strategy():
    store, session = opened(2)
    set_turn_state(store, session, user_id(store, session, 1), "left_out")
    assert manual_choice(store, session).left_out == {user_id(store, session, 1)}
    result = chat(store, session, "hi", strategy="summary")
    assert any("were not applied" in n for n in result.notes)
    assert any(m.get("content", "").startswith("turn 1 says") for m in result.payload)


def test_turn_numbers_that_do_not_exist_are_refused_before_anything_is_stored():
    store, session = opened(2)
    before = len(store.get_history(session))
    with pytest.raises(ChoiceConflict, match="not in this session"):
        chat(store, session, "x", pinned_turns=(9,))
    with pytest.raises(ChoiceConflict, match="whole-turn strategies"):
        chat(store, session, "x", left_out_turns=(1,), strategy="seed")
    assert len(store.get_history(session)) == before


def test_the_api_takes_pinned_and_left_out_turn_numbers(monkeypatch):
    post = inprocess_api(monkeypatch)
    session = None
    for n in range(1, 5):
        answer = post("/chat", {"message": f"turn {n} says{WORDS}", "sessionId": session, "budget": 100_000})
        assert answer.status_code == 200, answer.text
        session = answer.json()["sessionId"]
    answer = post("/chat", {"message": "and now?", "sessionId": session, "budget": 300, "pinned": [1],
                                "leftOut": [4]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["pinned"]) == 2 and len(body["leftOut"]) == 2
    assert not set(body["leftOut"]) & set(body["sent"]) and set(body["pinned"]) <= set(body["sent"])
    # Omitted next time: the stored choice still applies.
    again = post("/chat", {"message": "again?", "sessionId": session, "budget": 300}).json()
    assert again["pinned"] == body["pinned"] and again["leftOut"] == body["leftOut"]
    for bad, kind in (({"pinned": [99]}, "invalid_choice"), ({"pinned": [1], "leftOut": [1]}, "invalid_choice"),
                      ({"pinned": ["1"]}, "invalid_field"), ({"left_out": [1]}, "unknown_field")):
        refused = post("/chat", {"message": "x", "sessionId": session, **bad})
        assert refused.status_code == 400 and refused.json()["error"]["type"] == kind, refused.text
