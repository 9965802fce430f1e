"""A turn says which kind of history it sent, and a turn that made no request claims nothing.

Server-kept history (previous_response_id, Conversations) reads "sent 1 new message · the server re-read N ·
billed M", never "trimmed" or "dropped", and the inspector neither counts the server's re-read as saved nor
prices it below the billed figure. A refused turn (over the budget: stored, never sent) has no body, no trim,
no diff and no cost. Real openai SDK against tests/support/fake_llm.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from lib.chat import TurnRequest, run_turn
from lib.core import Settings, default_table
from lib.providers import get_provider
from lib.views import build_timeline, inspect

KEY = "sk-test-KINDS0123456789"
MODEL = "gpt-5.4-mini"
SYSTEM = "Be brief."
TEXTS = ["Tell me about the Nile, please.", "And the Amazon river?", "Which one is longer?", "Name a third one.",
         "Thanks, that is all."]


@pytest.fixture
def responses(fake_llm):
    return get_provider("openai-responses", Settings(), api_key=KEY, base_url=fake_llm.openai_url, max_retries=0)


def chat(store, provider, texts: list[str], sid: str | None = None, **options: Any) -> str:
    for text in texts:
        result = run_turn(store, provider, TurnRequest(user_text=text, session_id=sid, system_prompt=SYSTEM,
                                                       model=MODEL, **options))
        sid = result.session_id
    assert sid is not None
    return sid


def timeline(store, sid: str):
    return build_timeline(store.get_history(sid), store.get_turns(sid), meta=store.get_meta(sid))


def texts_of(row) -> str:
    return " | ".join(b.text for b in row.badges)


@pytest.mark.parametrize("mode", ["previous_response", "conversation"])
def test_a_server_kept_turn_says_what_it_sent_and_what_the_server_re_read_and_billed(
        memory_store, fake_llm, responses, mode):
    sid = chat(memory_store, responses, TEXTS, server_state=mode)
    data = timeline(memory_store, sid)
    kept = [row for row in data.rows if row.record.server_state]
    assert len(kept) == (len(TEXTS) - 1 if mode == "previous_response" else len(TEXTS))
    for row in kept:
        badges = texts_of(row)
        assert "trimmed" not in badges and "dropped" not in badges, badges
        assert "dropped" not in row.diff.text and row.diff.removed == 0
        assert data.changes(row.turn)[1] == []  # nothing listed as removed from the payload
        held = 2 * (row.turn - 1)  # every earlier question and reply
        billed = row.record.usage.prompt_total
        assert f"sent 1 new message + system prompt · {row.tokens:,} tokens" in badges
        assert f"the server re-read {held}" in badges and f"billed {billed:,} input tokens" in badges
        assert billed > row.tokens or not held  # small, not cheap: the server bills what it re-read
        assert f"{held} kept by the server" in row.diff.text
        assert len(row.record.server_held) <= 1  # one range however long the chain: the record stays small


def test_the_inspector_does_not_count_the_servers_re_read_as_saved_and_prices_the_billed_figure(
        memory_store, fake_llm, responses):
    sid = chat(memory_store, responses, TEXTS)
    data = inspect(memory_store.get_history(sid), memory_store.get_turns(sid), model=MODEL, system_prompt=SYSTEM,
                   prices=default_table())
    cumulative = data.cumulative
    assert cumulative["saved"].iloc[-1] == 0  # nothing was trimmed: the server re-read all of it
    assert (cumulative["read"] > cumulative["sent"]).iloc[1:].all()  # turns 2-5 sent little but read more
    billed = data.turns["provider"].astype(float)
    price = default_table()[MODEL]
    expected = (cumulative["read"].iloc[0] + billed.iloc[1:].sum()) * price.input / 1e6
    assert cumulative["cost"].iloc[-1] == pytest.approx(expected)


def test_a_broken_chain_that_re_sends_everything_is_not_server_kept(memory_store, fake_llm, responses):
    sid = chat(memory_store, responses, TEXTS[:2])
    chat(memory_store, get_provider("offline", delay=0), TEXTS[2:3], sid)  # the server never saw this turn
    chat(memory_store, responses, TEXTS[3:4], sid)
    row = timeline(memory_store, sid).rows[-1]
    assert row.record.server_state is None and row.server_kept is None
    assert f"sent {row.record.sent_count} (system prompt included)" in texts_of(row)


def test_a_refused_turn_claims_nothing_that_did_not_happen(memory_store, fake_llm, responses):
    sid = chat(memory_store, get_provider("offline", delay=0), TEXTS[:3], budget=400)
    chat(memory_store, get_provider("offline", delay=0), ["word " * 2_000], sid, budget=400)  # over the budget
    chat(memory_store, get_provider("offline", delay=0), TEXTS[3:4], sid, budget=400)
    data = timeline(memory_store, sid)
    refused, after = data.rows[3], data.rows[4]
    assert refused.record.failed and not refused.made_request
    assert [b.text.split(":")[0] for b in refused.badges] == ["not sent"]  # no sent, dropped, trimmed or cost
    assert refused.diff.text.startswith("no request was made") and data.changes(4) == ([], [])
    assert refused.cost is None and "no request was made" in refused.cost_source
    assert data.request_body(4).body is None and "No request was made in turn 4" in data.request_body(4).note
    # The next turn is compared with the last request that was made (turn 3), not with the refused one. The
    # refused message is stored, too large for the budget, so turn 5 drops it with everything before it.
    assert after.previous_runs == data.rows[2].context_runs
    assert (after.diff.added, after.diff.removed) == (1, 5)  # turn 5's question in; turn 3's five messages out
    assert after.record.dropped_count == 7
    data_inspector = inspect(memory_store.get_history(sid), memory_store.get_turns(sid), model=MODEL,
                             system_prompt=SYSTEM)
    row = data_inspector.turns.iloc[3]
    assert row["exact"] == 0 and row["untrimmed_exact"] == 0 and row["sent"] == 0
