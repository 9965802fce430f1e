"""lib.chat.compare: concurrent columns, timeouts, a failing column, request notes, records, continue-with."""

from __future__ import annotations

import json
import time

import pytest

from lib.chat import CompareConfig, comparison_record, continue_with, request_differences, run_comparison
from lib.core import ReplyMeta, Settings
from lib.providers import ProviderServerError, get_provider
from lib.sessions import MemoryStore

HISTORY = [{"id": "u1", "role": "user", "content": "Hello"}, {"id": "a1", "role": "assistant", "content": "Hi!"}]
KEY = "sk-test-SECRET123"


class SlowProvider:
    """The offline model with a pause before answering, or a failure."""

    def __init__(self, pause: float = 0.0, fail: bool = False) -> None:
        self.pause, self.fail = pause, fail
        self.offline = get_provider("offline", Settings(), delay=0)

    def stream(self, messages, **kwargs):
        time.sleep(self.pause)
        if self.fail:
            raise ProviderServerError("The provider had a server error (HTTP 500). Try again.", status=500)
        return self.offline.stream(messages, **kwargs)


def finished(events) -> dict[int, object]:
    done = {}
    order = []
    for event in events:
        if event.done:
            done[event.index] = event
            order.append(event.index)
    done["order"] = order
    return done


def test_a_slow_column_does_not_block_a_fast_one_and_a_failure_is_contained():
    providers = {"slow": SlowProvider(pause=0.6), "fast": SlowProvider(), "broken": SlowProvider(fail=True)}
    configs = [CompareConfig("slow", "gpt-4o-mini"), CompareConfig("fast", "gpt-4o-mini"),
               CompareConfig("broken", "gpt-4o-mini")]
    results = finished(run_comparison(HISTORY, "Compare me", configs, system_prompt="Be brief.",
                                      provider_factory=lambda c: providers[c.provider]))
    assert results["order"][-1] == 0  # the slow one finishes last: it never held up the others
    assert "I received 4 messages" in results[1].report[0] and results[1].ttft is not None
    assert results[2].error.startswith("The provider had a server error")
    assert results[2].error_type == "ProviderServerError"
    assert results[0].exact == results[1].exact > 0 and results[0].sent_messages == 4


def test_timeout_marks_only_the_hanging_column():
    providers = {"hang": SlowProvider(pause=3), "fast": SlowProvider()}
    configs = [CompareConfig("hang", "m"), CompareConfig("fast", "m")]
    results = finished(run_comparison(HISTORY, "Hi", configs, timeout=0.8,
                                      provider_factory=lambda c: providers[c.provider]))
    assert results[1].error is None and results[1].text
    assert results[0].error == "No answer within 0.8 s." and results[0].error_type == "Timeout"


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="2 to 4"):
        list(run_comparison(HISTORY, "Hi", [CompareConfig("offline", "m")], provider_factory=lambda c: None))
    with pytest.raises(ValueError, match="Type a message"):
        list(run_comparison(HISTORY, "  ", [CompareConfig("offline", "m")] * 2, provider_factory=lambda c: None))


def test_wire_providers_side_by_side_and_how_their_requests_differ(fake_llm):
    configs = [CompareConfig("openai", "gpt-4o-mini"), CompareConfig("anthropic", "claude-haiku-5-5",
                                                                      {"prompt_caching": True}),
               CompareConfig("openai-responses", "gpt-4o-mini")]

    def factory(config):
        url = fake_llm.anthropic_url if config.provider == "anthropic" else fake_llm.openai_url
        return get_provider(config.provider, Settings(), api_key=KEY, base_url=url, max_retries=0, **config.options)

    fake_llm.fail_next(500)  # the first request to arrive fails; the other two must still answer
    results = finished(run_comparison(HISTORY, "Which is best?", configs, system_prompt="Be brief.",
                                      provider_factory=factory))
    columns = [results[i] for i in range(3)]
    failed = [c for c in columns if c.error]
    assert len(failed) == 1 and "server error" in failed[0].error
    assert all(c.text.startswith("Fake reply") for c in columns if not c.error)
    notes = " ".join(request_differences(columns))
    assert "messages[0]" in notes and "top-level system field" in notes and "instructions field" in notes
    assert "cache_control" in notes
    for column in columns:  # "messages sent" is read from the body, so it agrees with the note
        assert f"{column.sent_note.split(' + ')[0]}" in notes
    responses = columns[2]
    assert responses.sent_items == len(responses.request["input"]) == 3  # the system prompt is `instructions`
    assert responses.sent_note == "3 input items + top-level instructions field" and responses.sent_messages == 4
    assert columns[1].count_label == "approximate (o200k_base stands in for claude-haiku-5-5)"
    assert columns[0].count_label == "exact (tiktoken, o200k_base)"
    record = comparison_record("Which is best?", configs, columns, system_prompt="Be brief.", strategy="turns",
                               budget=80_000)
    assert KEY not in json.dumps(record)


def test_offline_columns_are_priced_as_the_reference_model():
    offline = get_provider("offline", Settings(), delay=0)
    configs = [CompareConfig("offline", "offline-teacher"), CompareConfig("offline", "offline-teacher")]
    results = finished(run_comparison(HISTORY, "Price me", configs, provider_factory=lambda c: offline,
                                      reference_model="gpt-4o-mini"))
    assert results[0].cost is not None and results[0].cost > 0
    assert results[0].cost_source == "priced as gpt-4o-mini"
    assert results[0].count_label.startswith("approximate (o200k_base stands in for offline-teacher")
    unpriced = finished(run_comparison(HISTORY, "Price me", configs, provider_factory=lambda c: offline))
    assert unpriced[0].cost is None and unpriced[0].cost_source == "no price for offline-teacher"


def test_record_is_saved_apart_and_continue_with_appends_the_chosen_reply():
    store = MemoryStore()
    store.append("s1", *HISTORY)
    configs = [CompareConfig("offline", "a"), CompareConfig("offline", "b")]
    offline = get_provider("offline", Settings(), delay=0)
    results = finished(run_comparison(HISTORY, "Pick me", configs, provider_factory=lambda c: offline))
    record = comparison_record("Pick me", configs, [results[0], results[1]], system_prompt="", strategy="turns",
                               budget=1000)
    store.append_comparison("s1", record)
    assert len(store.get_history("s1")) == 2 and store.get_comparisons("s1")[0]["id"] == record["id"]
    continue_with(store, "s1", record, 1)
    history = store.get_history("s1")
    assert [m["role"] for m in history] == ["user", "assistant"] * 2
    assert history[2]["content"] == "Pick me" and history[3]["content"] == results[1].text
    assert history[3]["meta"]["comparison_id"] == record["id"] and history[3]["meta"]["model"] == "b"
    meta = ReplyMeta.from_json(history[3]["meta"])
    assert meta.usage is not None and meta.usage.input_tokens == results[1].usage["input_tokens"]


def test_continue_with_refuses_an_odd_record_with_a_clear_error():
    store = MemoryStore()
    for record, column in [({"columns": "x"}, 0), ({"columns": [{"text": 5}], "new_message": "q"}, 0),
                           ({"columns": [{"text": "ok"}]}, 3)]:
        with pytest.raises(ValueError, match="no reply to continue with"):
            continue_with(store, "s1", record, column)
    assert store.get_history("s1") == []


def test_server_side_options_are_sent_and_what_comes_back_is_shown(fake_llm):
    from lib.chat import summary_table

    configs = [CompareConfig("openai", "gpt-4o-mini"),
               CompareConfig("openai-responses", "gpt-4o-mini", call={"compaction_threshold": 1, "truncation": "auto"})]

    def factory(config):
        return get_provider(config.provider, Settings(), api_key=KEY, base_url=fake_llm.openai_url, max_retries=0)

    results = finished(run_comparison(HISTORY, "Compact?", configs, provider_factory=factory))
    responses = results[1]
    assert responses.error is None, responses.error
    body = fake_llm.bodies("/responses")[-1]
    assert body["context_management"] == [{"type": "compaction", "compact_threshold": 1}]
    assert body["truncation"] == "auto" and responses.request == body
    assert responses.response_id and responses.server_context[0]["kind"] == "compaction"
    table = summary_table([results[0], responses])
    column = table["2. openai-responses / gpt-4o-mini (compaction_threshold=1, truncation=auto)"]
    assert column["server-side context"].startswith("compaction item (")
    assert table["1. openai / gpt-4o-mini"]["server-side context"] == "—"
    assert "None" not in json.dumps(table)
    record = comparison_record("Compact?", configs, [results[0], responses], system_prompt="", strategy="turns",
                               budget=1000)
    assert record["configs"][1]["call"] == {"compaction_threshold": 1, "truncation": "auto"}


def test_summary_table_of_a_failed_column_has_no_raw_none():
    from lib.chat import summary_table
    from lib.core import ColumnResult

    failed = ColumnResult(0, "x / y", "x", "y", done=True, error="boom", error_type="ProviderError")
    cells = summary_table([failed])["1. x / y"]
    assert cells["status"] == "failed (ProviderError)"
    assert all(isinstance(v, str) and v and "None" not in v for v in cells.values())
    assert cells["cost (µ$, millionths of a US$)"] == cells["time to first token (s)"] == "—"


def test_gemini_is_a_third_body_shape_beside_chat_and_messages(fake_llm):
    from lib.chat import summary_table
    from lib.context import body_shape, highlights

    configs = [CompareConfig("openai", "gpt-4o-mini"), CompareConfig("anthropic", "claude-haiku-5-5"),
               CompareConfig("gemini", "gemini-2.5-flash")]
    urls = {"anthropic": fake_llm.anthropic_url, "gemini": fake_llm.gemini_url}

    def factory(config):
        return get_provider(config.provider, Settings(), api_key=KEY, base_url=urls.get(config.provider,
                            fake_llm.openai_url), max_retries=0, **config.options)

    results = finished(run_comparison(HISTORY, "Which is best?", configs, system_prompt="Be brief.",
                                      provider_factory=factory))
    chat, messages, gemini = (results[i] for i in range(3))
    assert gemini.error is None and gemini.text.startswith("Fake reply")
    assert [c["role"] for c in gemini.request["contents"]] == ["user", "model", "user"]
    assert gemini.sent_note == "3 contents + top-level systemInstruction field"
    assert gemini.count_label == "approximate (o200k_base stands in for gemini-2.5-flash)"
    notes = request_differences([chat, messages, gemini])
    assert any("Gemini generateContent" in n and "systemInstruction" in n and "roles user/model" in n for n in notes)
    assert body_shape(gemini.request).api == "Gemini generateContent"
    assert "API: Gemini generateContent instead of Chat Completions." in highlights(chat.request, gemini.request)
    table = summary_table([chat, messages, gemini])
    assert table["3. gemini / gemini-2.5-flash"]["output tokens"] == "9"  # thinking is billed as output


def test_a_gemini_column_with_an_explicit_cache_shows_the_body_that_was_sent(fake_llm):
    from lib.chat import summary_table

    long_history = [{"id": "u1", "role": "user", "content": "Read this. " + "Words to keep. " * 1200},
                    {"id": "a1", "role": "assistant", "content": "Read."}]
    configs = [CompareConfig("gemini", "gemini-2.5-flash", {"prompt_caching": True}),
               CompareConfig("gemini", "gemini-2.5-flash")]

    def factory(config):
        return get_provider("gemini", Settings(), api_key=KEY, base_url=fake_llm.gemini_url, max_retries=0,
                            **config.options)

    results = finished(run_comparison(long_history, "Summarise it.", configs, provider_factory=factory))
    cached, plain = results[0], results[1]
    assert cached.request["cachedContent"] and len(cached.request["contents"]) == 1
    assert cached.sent_note == "1 contents after the explicit cache `cachedContent`"
    assert plain.sent_note == "3 contents"
    notes = " ".join(request_differences([cached, plain]))
    assert "after the explicit context cache" in notes and "with no explicit cache" in notes
    row = summary_table([cached, plain])["1. gemini / gemini-2.5-flash (prompt_caching=True)"]
    assert row["explicit cache created (tokens × TTL)"] == "20 tokens × 5 min (billed once, then storage)"
