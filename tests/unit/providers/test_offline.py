"""The offline teaching model: true of its payload, quotes only the current message, validates like an API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from lib.costs import PromptCache
from lib.providers import (
    DEFAULT_REFERENCE_MODEL,
    FORGOT_PHRASE,
    FORGOTTEN_ANSWER,
    WHOLE_PHRASE,
    BadRequest,
    ContextLengthExceeded,
    InvalidPayload,
    OfflineProvider,
    Provider,
    ProviderError,
    ProviderOptions,
    Reply,
    arithmetic,
    cache_profile_id,
    compose_reply,
    key_words,
    payload_tokens,
    reset_simulated_caches,
    simulate_cache,
    tool_pairing_problem,
)
from lib.tokens import count_chat_tokens

MODEL = "offline-teacher"
SYSTEM = {"role": "system", "content": "Be brief."}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": text, **extra}


def ask(messages: list[dict[str, Any]], **options: Any) -> Reply:
    reply = OfflineProvider(delay=0).stream(messages, model=MODEL, options=ProviderOptions(**options))
    for _ in reply:
        pass
    return reply


def text_of(messages: list[dict[str, Any]], **options: Any) -> str:
    return ask(messages, **options).text


def report_of(messages: list[dict[str, Any]], **options: Any) -> str:
    return "\n".join(ask(messages, **options).report)


def test_it_is_a_real_provider_that_answers_and_reports_beside_the_answer():
    assert isinstance(OfflineProvider(), Provider)
    info = OfflineProvider().info
    assert info.capabilities.strict_validation and info.capabilities.simulated_cache
    assert not info.capabilities.needs_key and info.configured
    payload = [SYSTEM, user("Hi"), assistant("Hello"), user("How are you?")]
    reply = ask(payload, turn_numbers=(0, 1, 1, 2), current_turn=2, context_window=500)
    tokens = count_chat_tokens(payload, MODEL)
    assert reply.report[0] == (f"I received 4 messages ({tokens} tokens of my 500-token context window): "
                               "1 system, 2 user, 1 assistant.")
    assert "The oldest message I can see is the user message of turn 1." in reply.report
    assert WHOLE_PHRASE in reply.report and not any(FORGOT_PHRASE in line for line in reply.report)
    # The report is beside the reply, never in it: the reply is what a later payload re-sends.
    assert "I received" not in reply.text and "turn" not in reply.text
    assert reply.usage is not None and reply.usage.input_tokens == tokens and reply.usage.output_tokens
    # The request body is what any provider would show: no options or turn numbers inside it.
    assert json.loads(json.dumps(reply.request)) == {"model": MODEL, "messages": payload, "max_tokens": 1024}


def test_the_seeds_three_turns_give_the_seeds_listing():
    payload: list[dict[str, Any]] = []
    for turn, (question, expected) in enumerate((("Hello", "Hi!"), ("What's 2+2?", "4"), ("And 4+4?", "8")), 1):
        payload.append(user(question))
        numbers = tuple(n // 2 + 1 for n in range(len(payload)))
        reply = ask(payload, turn_numbers=numbers, current_turn=turn)
        assert reply.text == expected
        payload.append(assistant(reply.text))
    assert [m["content"] for m in payload] == ["Hello", "Hi!", "What's 2+2?", "4", "And 4+4?", "8"]


@pytest.mark.parametrize(("question", "expected"), [
    ("What is 6 x 7?", "42"), ("What's 10 / 4?", "2.5"), ("What is (1 + 2) * 3?", "9"), ("what is 3 plus 4", "7"),
    ("What's 0.1+0.2?", "0.3"), ("What is 1/3?", "about 0.3333333333"), ("What is 5/0?", "That divides by zero"),
    ("Compute 2*-3.", "-6"),
])
def test_arithmetic_is_exact(question, expected):
    assert text_of([user(question)]).startswith(expected)


def test_arithmetic_is_not_read_into_statements_or_dates():
    assert arithmetic("What's the date?") is None and arithmetic("Call 555 1234") is None
    assert text_of([user("My birthday is 2024-05-01.")]) == "Noted: your birthday is 2024-05-01."


def test_a_greeting_is_answered_with_a_greeting_and_the_rest_too():
    assert text_of([user("Hello")]) == "Hi!"
    assert text_of([user("hi there!")]) == "Hi!"
    assert text_of([user("Hello, what's 3+3?")]) == "Hi! 6"


def test_it_streams_in_small_deterministic_chunks():
    payload = [user("Remember this: my favourite colour is teal and my dog is called Rex.")]
    first = OfflineProvider(delay=0).stream(payload, model=MODEL)
    chunks = list(first)
    assert len(chunks) > 5 and "".join(chunks) == first.text
    assert text_of(payload) == first.text


def test_a_stated_fact_is_said_back_and_recalled_while_a_message_holding_it_is_sent():
    stated = [user("Remember this: my favourite colour is teal."), assistant("Noted: your favourite colour is teal.")]
    question = user("What is my favourite colour?")
    reply = ask([*stated, question], turn_numbers=(1, 1, 2), current_turn=2)
    assert reply.text == "Your favourite colour is teal."
    assert "My answer: recalled from turn 1 (assistant)." in reply.report
    # Its own reply counts: with only the reply left (the seed removes single messages), it still sees it.
    alone = ask([stated[1], question], turn_numbers=(1, 2), current_turn=2)
    assert alone.text == "Your favourite colour is teal."
    # The user's message alone holds it too.
    assert text_of([stated[0], question], turn_numbers=(1, 2), current_turn=2) == "Your favourite colour is teal."


def test_once_no_message_holds_the_fact_it_says_it_cannot_see_it_any_more():
    payload = [user("Tell me something about the number 5."), assistant("5 is odd, and prime."),
               user("What is my favourite colour?")]
    text = text_of(payload, turn_numbers=(5, 5, 6), current_turn=6)
    assert text == f"{FORGOTTEN_ANSWER}: nothing in my payload says what your favourite colour is."
    # Nothing trimmed: it was never told, and it says only that nothing in its payload says so.
    never = text_of(payload, turn_numbers=(1, 1, 2), current_turn=2)
    assert never == "Nothing in my payload says what your favourite colour is."
    assert FORGOTTEN_ANSWER not in never


def test_the_newest_statement_of_a_fact_wins():
    payload = [user("My favourite colour is teal."), assistant("Noted: your favourite colour is teal."),
               user("Actually my favourite colour is red."), assistant("Noted: your favourite colour is red."),
               user("What's my favourite colour?")]
    assert text_of(payload) == "Your favourite colour is red."


def test_the_secret_word_and_the_system_prompt_are_places_too():
    payload = [user("Remember the word PINEAPPLE."), assistant("Noted: the word is PINEAPPLE."),
               user("What was the word?")]
    assert text_of(payload) == "The word is PINEAPPLE."
    text = text_of([{"role": "system", "content": "The secret colour is teal."}, user("What colour is secret?")],
                   turn_numbers=(0, 1), current_turn=1)
    assert text == "The secret colour is teal."
    assert "the system prompt" in report_of([{"role": "system", "content": "The secret colour is teal."},
                                             user("What colour is secret?")])


def test_a_users_your_and_a_replys_my_are_not_read_as_the_users_facts():
    payload = [user("Your name is Bob."), assistant("OK."), user("What is my name?")]
    text = text_of(payload)
    assert "Bob" not in text and text == "I can see “name” in a user message."


def test_a_question_without_a_fact_says_where_a_word_occurs():
    payload = [user("I walked past the gym today."), assistant("OK."), user("Do you remember the gym")]
    text = text_of(payload, turn_numbers=(3, 3, 4), current_turn=4)
    assert text == "I can see “gym” in turn 3 (user)."
    missing = text_of([user("Tell me about Lisbon."), assistant("OK."), user("Do you remember swordfish?")],
                      turn_numbers=(2, 2, 3), current_turn=3)
    assert missing == f"{FORGOTTEN_ANSWER}: nothing in my payload mentions “swordfish”."


def test_other_messages_get_short_true_answers():
    assert text_of([user("Tell me something about the number 7.")]) == "7 is odd, and prime."
    assert text_of([user("Tell me something about the number 12.")]) == "12 is even."
    assert text_of([user("Describe a sunny beach.")]).startswith("I can't answer that offline")
    assert text_of([user("Nice weather today")]) == "OK."
    assert text_of([user("The sky was grey today")]) == "Noted: the sky was grey today."
    assert text_of([user("Hi"), assistant("Hi!")]) == "There is no new message from you in my payload to answer."


def test_a_trimmed_payload_names_the_oldest_turn_and_counts_what_was_lost():
    payload = [SYSTEM, user("About cats"), assistant("Cats are nice."), user("And dogs?")]
    report = report_of(payload, turn_numbers=(0, 4, 4, 5), current_turn=5)
    assert "The oldest message I can see is the user message of turn 4." in report
    assert f"{FORGOT_PHRASE}: 3 earlier turns (turns 1–3) were trimmed away before this request." in report
    assert WHOLE_PHRASE not in report
    one = report_of(payload, turn_numbers=(0, 2, 2, 3), current_turn=3)
    assert f"{FORGOT_PHRASE}: 1 earlier turn (turn 1) was trimmed away" in one


def test_the_turn_count_comes_from_the_options_not_from_the_message_count():
    # The same two messages are "turn 1, nothing lost" or "turn 7, six lost" depending on the options only.
    payload = [user("a"), assistant("b"), user("c")]
    assert WHOLE_PHRASE in report_of(payload, turn_numbers=(1, 1, 2), current_turn=2)
    assert "6 earlier turns (turns 1–6)" in report_of(payload, turn_numbers=(7, 7, 8), current_turn=8)


def test_without_turn_numbers_it_says_it_cannot_tell():
    report = report_of([user("a"), assistant("b"), user("c")])
    assert "I was not told turn numbers" in report
    assert WHOLE_PHRASE not in report and FORGOT_PHRASE not in report


def test_turn_numbers_must_match_the_payload():
    with pytest.raises(ValueError, match="one per message"):
        ask([user("a")], turn_numbers=(1, 2))


def test_gaps_and_headless_turns_are_reported_as_seen():
    # What the seed's trimmer leaves without a system prompt: turn 1's question, then later replies.
    payload = [user("First question"), assistant("Reply 3"), user("Question 4")]
    report = report_of(payload, turn_numbers=(1, 3, 4), current_turn=4)
    assert "Turn 2 is missing from the middle of my payload." in report
    assert "Of turn 3 I see only later messages: the user message that began it was trimmed." in report
    assert WHOLE_PHRASE not in report
    headless_first = report_of([assistant("Reply 1"), user("Q2")], turn_numbers=(1, 2), current_turn=2)
    assert f"{FORGOT_PHRASE}: it was trimmed away, and only later messages of turn 1 remain." in headless_first


def test_the_report_never_matches_what_a_question_asks():
    """The old self-report was re-sent, so "2" in "2 messages" answered a question about "2"."""
    payload = [user("Hello"), assistant("Hi!"), user("Do you remember 2?")]
    reply = ask(payload, turn_numbers=(1, 1, 2), current_turn=2)
    assert reply.text == "Nothing in my payload mentions “2”."
    assert "I received 3 messages" in reply.report[0]


def test_key_words_drop_question_words_and_keep_numbers():
    assert key_words("What was the word?") == ["word"]
    assert key_words("Do you remember PINEAPPLE, pineapple?") == ["pineapple"]
    assert key_words("Is it 7?") == ["7"]
    assert key_words("What?") == []
    assert text_of([user("What?")], turn_numbers=(1,), current_turn=1).startswith("I can't answer that offline")


def test_a_summary_message_is_named_with_the_turns_it_covers():
    summary = {"role": "system", "content": "Summary of turns 1–4: T2 user: My locker code is 4417.\nT3 user: cats"}
    payload = [SYSTEM, summary, user("Dogs?"), assistant("Dogs bark."), user("What is my locker code?")]
    reply = ask(payload, turn_numbers=(0, 0, 5, 5, 6), current_turn=6)
    report = "\n".join(reply.report)
    assert "I can see a summary of turns 1–4 (a system message), not those turns themselves." in report
    assert "The oldest message I can see is the user message of turn 5." in report
    assert "4 earlier turns (turns 1–4) were replaced by the summary I was given" in report
    assert reply.text == "Your locker code is 4417."
    assert "My answer: recalled from the summary of turns 1–4." in report


def test_a_user_role_summary_is_recognised_too():
    summary = user("[Summary of turns 1-2] talk about tea")
    report = report_of([summary, assistant("ok"), user("Hi")], turn_numbers=(0, 3, 4), current_turn=4)
    assert "summary of turns 1–2 (a user message)" in report


# ------------------------------------------------------------------------------------------- validation


def rejected(messages: list[dict[str, Any]], **options: Any) -> ProviderError:
    reply = OfflineProvider(delay=0).stream(messages, model=MODEL, options=ProviderOptions(**options))
    with pytest.raises(ProviderError) as caught:
        list(reply)
    assert reply.request["messages"] == messages  # the rejected body can still be shown
    return caught.value


def test_a_payload_over_the_context_window_is_rejected_with_both_numbers():
    payload = [SYSTEM, user("word " * 100)]
    tokens = count_chat_tokens(payload, MODEL)
    error = rejected(payload, context_window=50)
    assert isinstance(error, ContextLengthExceeded) and isinstance(error, BadRequest) and error.status == 400
    assert (error.tokens, error.limit) == (tokens, 50)
    assert f"maximum context length is 50 tokens. However, your messages resulted in {tokens} tokens" in str(error)
    assert "raise the budget" in str(error)
    assert text_of(payload, context_window=tokens)  # exactly at the window is accepted


def test_the_context_window_falls_back_to_the_estimate_without_an_encoding(monkeypatch):
    from lib.providers import offline, offline_validation
    from lib.tokens import EncodingUnavailable

    def unavailable(*_: Any, **__: Any) -> int:
        raise EncodingUnavailable("o200k_base", "no network")

    monkeypatch.setattr(offline_validation, "count_chat_tokens", unavailable)
    monkeypatch.setattr(offline, "count_tokens", unavailable)
    assert payload_tokens([user("x" * 400)], MODEL) == (100, False)
    error = rejected([user("x" * 400)], context_window=50)
    assert "about 100 tokens (estimated" in str(error)
    assert "(about 3 tokens, estimated)" in report_of([user("x" * 10)])  # the report says its count is an estimate


def test_a_tool_result_without_its_call_is_rejected():
    payload = [user("Weather?"), {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}, user("ok")]
    error = rejected(payload)
    assert isinstance(error, InvalidPayload) and "call_1" in str(error) and "its call is missing" in str(error)


def test_a_tool_call_without_its_result_is_rejected():
    call = {"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    payload = [user("Weather?"), assistant("", tool_calls=[call]), user("Well?")]
    error = rejected(payload)
    assert isinstance(error, InvalidPayload) and "call_9" in str(error) and "no result" in str(error)


def test_a_complete_tool_exchange_is_accepted():
    calls = [{"id": f"call_{n}", "type": "function", "function": {"name": "f", "arguments": "{}"}} for n in (1, 2)]
    payload = [user("Both?"), assistant("", tool_calls=calls),
               {"role": "tool", "tool_call_id": "call_2", "content": "b"},
               {"role": "tool", "tool_call_id": "call_1", "content": "a"}, assistant("Done"), user("Thanks")]
    assert tool_pairing_problem(payload) is None
    assert text_of(payload) == "OK."


def test_an_assistant_first_payload_is_rejected_in_strict_mode_and_flagged_otherwise():
    payload = [SYSTEM, assistant("Earlier reply"), user("Next question")]
    error = rejected(payload, strict=True)
    assert isinstance(error, InvalidPayload) and 'must use the "user" role' in str(error)
    assert "Anthropic rejects this; OpenAI accepts it" in str(error)
    lenient = report_of(payload, strict=False)
    assert "This payload starts with an assistant message" in lenient and "Anthropic would reject it" in lenient


def test_an_empty_payload_is_rejected():
    assert "no messages" in str(rejected([]))


def test_rejections_are_ordinary_provider_errors_with_a_user_message():
    error = rejected([SYSTEM, assistant("x"), user("y")], strict=True)
    assert error.provider == "offline" and error.user_message == str(error)


def test_compose_reply_is_a_pure_function_of_payload_and_options():
    payload = [user("a"), assistant("b"), user("c?")]
    options = ProviderOptions(turn_numbers=(1, 1, 2), current_turn=2)
    first = compose_reply(payload, model=MODEL, options=options)
    assert first == compose_reply(payload, model=MODEL, options=options) and first.report


# ----------------------------------------------------------------------------------------- simulated cache


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    reset_simulated_caches()
    yield
    reset_simulated_caches()


LONG_SYSTEM = {"role": "system", "content": "You are a patient tutor. " * 300}  # well over 1,024 tokens


def test_cache_reads_are_simulated_from_lib_caching_as_the_reference_model(fresh_caches):
    first = [LONG_SYSTEM, user("Hello")]
    reply = ask(first)
    assert reply.usage is not None and reply.usage.simulated
    assert reply.usage.cache_read_tokens == 0 and reply.usage.cache_write_tokens > 1024
    growing = [*first, assistant("Hi"), user("Next?")]
    again = ask(growing)
    expected = PromptCache("openai", model=DEFAULT_REFERENCE_MODEL)
    expected.request(first)
    assert again.usage is not None and again.usage.simulated
    assert again.usage.cache_read_tokens == expected.request(growing).cached_tokens >= 1024
    assert again.usage.cache_read_tokens % 128 == 0  # OpenAI's 128-token steps
    assert again.usage.input_tokens == count_chat_tokens(growing, MODEL)  # cached ones included


def test_a_changed_prefix_reads_nothing_from_the_cache(fresh_caches):
    ask([LONG_SYSTEM, user("Hello")])
    other = {"role": "system", "content": "You are a strict examiner. " * 300}
    reply = ask([other, user("Hello")])
    assert reply.usage is not None and reply.usage.cache_read_tokens == 0


def test_a_short_payload_is_never_cached(fresh_caches):
    for _ in range(2):
        reply = ask([user("Hello")])
    assert reply.usage is not None and reply.usage.cache_read_tokens == 0 and reply.usage.cache_write_tokens == 0


def test_claude_as_reference_caches_only_with_prompt_caching_on(fresh_caches):
    claude = OfflineProvider(delay=0, reference_model="claude-sonnet-4-5")
    payload = [LONG_SYSTEM, user("Hello")]

    def usage(**options: Any) -> Any:
        reply = claude.stream(payload, model=MODEL, options=ProviderOptions(**options))
        list(reply)
        return reply.usage

    assert cache_profile_id("claude-sonnet-4-5", ProviderOptions()) is None
    assert usage().cache_read_tokens == 0 and usage().cache_write_tokens == 0
    usage(prompt_caching=True, cache_ttl="1h")
    hit = usage(prompt_caching=True, cache_ttl="1h")
    assert hit.cache_read_tokens > 1024 and hit.cache_write_1h == hit.cache_write_tokens
    assert cache_profile_id("gpt-5-mini", ProviderOptions()) == "openai"


def test_an_idle_cache_expires_after_its_ttl(fresh_caches):
    payload = [LONG_SYSTEM, user("Hello")]
    options = ProviderOptions()
    simulate_cache(payload, reference_model="gpt-4o-mini", options=options, now=1000.0)
    warm = simulate_cache(payload, reference_model="gpt-4o-mini", options=options, now=1010.0)
    cold = simulate_cache(payload, reference_model="gpt-4o-mini", options=options, now=1010.0 + 3600)
    assert warm is not None and warm.cached_tokens > 0
    assert cold is not None and cold.cached_tokens == 0


def test_a_rejected_payload_never_reaches_the_cache(fresh_caches):
    payload = [LONG_SYSTEM, user("Hello")]
    rejected(payload, context_window=100)
    reply = ask(payload)
    assert reply.usage is not None and reply.usage.cache_read_tokens == 0
