"""lib.chat.lesson and lib.sessions.key_view: the Lesson's figures, computed by the real turn, trimmer and store."""

from __future__ import annotations

import json

from lib.chat import (
    CHAPTERS,
    FACT,
    LESSON_SYSTEM_PROMPT,
    QUESTION,
    SEED_TURNS,
    better_strategies,
    curl_lines,
    exact_budget,
    offline_model,
    payload_column,
    play_forgetting,
    restart_memory_store,
    run_seed_turns,
    seed_budget,
    trim_like_the_seed,
)
from lib.providers import FORGOTTEN_ANSWER
from lib.sessions import MemoryStore, projected_writes, seed_commands, seed_json, session_keys, writes_per_turn
from lib.tokens import count_chat_tokens, estimate_chat_tokens


def test_six_chapters_in_the_seeds_order_each_short():
    assert [c.key for c in CHAPTERS] == ["resend", "memory", "redis", "routes", "trimming", "server"]
    assert all(40 <= len(c.text.split()) <= 120 for c in CHAPTERS)


def test_the_seeds_three_turns_and_their_growing_payloads():
    results = run_seed_turns(MemoryStore(), offline_model())
    columns = [payload_column(r) for r in results]
    assert [c.reply for c in columns] == ["Hi!", "4", "8"]
    assert [[m.content for m in c.messages] for c in columns][-1] == [
        LESSON_SYSTEM_PROMPT, "Hello", "Hi!", "What's 2+2?", "4", "And 4+4?"]
    assert [c.exact for c in columns] == [r.record.exact for r in results]
    assert columns[0].exact < columns[1].exact < columns[2].exact


def test_a_restarted_memory_store_has_lost_the_session():
    store = MemoryStore()
    session_id = run_seed_turns(store, offline_model())[-1].session_id
    fresh = restart_memory_store(store)
    assert len(store.get_history(session_id)) == 6 and fresh.get_history(session_id) == []
    assert fresh is not store and not fresh.exists(session_id)


def test_the_seeds_trim_fits_by_its_estimate_is_refused_by_its_exact_count_and_starts_with_the_reply():
    payload = run_seed_turns(MemoryStore(), offline_model())[-1].payload
    budget = seed_budget(payload)
    assert budget == estimate_chat_tokens(payload) - 1
    view = trim_like_the_seed(payload, budget)
    assert [m["content"] for m in view.removed] == ["Hello"]  # index 1, as the seed's loop removes
    assert view.estimate <= budget < view.exact == count_chat_tokens(view.kept, "offline-teacher")
    assert view.kept[1]["role"] == "assistant" and "starts with an assistant message" in view.problems[0]
    assert view.refusal is not None and "maximum context length is" in view.refusal
    assert view.belief == (f"chars/4 said {view.estimate} ≤ {budget}, so the seed sent it; exact count {view.exact}; "
                           "the API refuses it")


def test_the_better_strategies_trim_the_same_payload_into_valid_payloads():
    payload = run_seed_turns(MemoryStore(), offline_model())[-1].payload
    budget = exact_budget(payload)
    views = better_strategies(payload, budget)
    assert [v.strategy for v in views] == ["turns", "cache-aware", "summary"]
    for view in views:
        assert view.error is None and not view.problems and view.exact is not None and view.exact <= budget
        assert view.kept[0]["role"] == "system" and view.kept[1]["role"] == "user" and view.dropped


def test_the_forgetting_plays_lib_examples_script_to_the_honest_answer():
    store = MemoryStore()
    session_id = run_seed_turns(store, offline_model())[-1].session_id
    steps = play_forgetting(store, offline_model(), session_id)
    assert steps[0].step == FACT and steps[-1].step == QUESTION
    assert steps[0].fact_sent and not steps[-1].fact_sent
    assert steps[-1].result.text.startswith(FORGOTTEN_ANSWER) and "teal" not in steps[-1].result.text


def test_curl_lines_name_the_session_and_this_server():
    lines = curl_lines("http://127.0.0.1:8765", "abc123", token=True)
    assert lines[1].endswith("""http://127.0.0.1:8765/api/chat -d '{"message": "Hello"}'""")
    assert "'{\"sessionId\": \"abc123\", \"message\": \"What'\\''s 2+2?\"}'" in lines[3]
    assert lines[-1] == 'curl -s -H "Authorization: Bearer $HISTORY_LAB_API_TOKEN" -X DELETE ' \
                        "http://127.0.0.1:8765/api/chat/abc123"
    assert len([line for line in lines if line.startswith("curl")]) == len(SEED_TURNS) + 2


def test_key_views_and_writes_per_turn_on_a_real_valkey(redis_store):
    session_id = run_seed_turns(redis_store, offline_model())[-1].session_id
    keys = {k.key.rsplit(":", 1)[1]: k for k in session_keys(redis_store, session_id)}
    assert keys["messages"].kind == "list" and keys["messages"].entries == 6
    assert keys["meta"].kind == "hash" and all(0 < k.ttl <= redis_store.ttl_seconds for k in keys.values() if k.ttl)
    writes = writes_per_turn(redis_store, session_id)
    history = redis_store.get_history(session_id)
    assert [w.seed_bytes for w in writes] == [len(seed_json(history[:n]).encode()) for n in (2, 4, 6)]
    raw = redis_store.client.lrange(redis_store.key(session_id, "messages"), 0, 1)
    record = redis_store.client.lrange(redis_store.key(session_id, "turns"), 0, 0)
    assert writes[0].our_bytes == sum(len(v if isinstance(v, bytes) else v.encode()) for v in [*raw, *record])
    seed_later, ours_later = projected_writes(writes, 500)
    assert seed_later > 100 * writes[-1].seed_bytes and ours_later < seed_later
    get, setex = seed_commands(session_id, history)
    assert get == f"GET session:{session_id}" and setex.startswith(f"SETEX session:{session_id} 86400 '[")
    assert json.loads(seed_json(history))[1] == {"role": "assistant", "content": "Hi!"}
