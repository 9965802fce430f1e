"""Trimming: the seed's trimHistory kept for comparison, and the turn-aware default."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.context import ContextOverflowError, payload_problems, trim_history
from lib.tokens import count_chat_tokens, estimate_tokens
from lib.tokens import counting as tokens
from tests.conftest import require
from tests.support.conversations import assert_partition, conversation, msg, texts, turn

MODEL = "gpt-4o-mini"


@pytest.fixture(autouse=True)
def _encoding_present():
    require(tokens.encoding_available(MODEL), "o200k_base not loadable; set TIKTOKEN_CACHE_DIR")


def checked_trim(messages, max_tokens, *, reserve_tokens, **options):
    """trim_history, checking that it mutated nothing and that any overflow is real; None when it raised."""
    original = copy.deepcopy(messages)
    try:
        result = trim_history(messages, max_tokens, model=MODEL, reserve_tokens=reserve_tokens, **options)
    except ContextOverflowError as exc:
        newest = max(i for i, m in enumerate(messages) if m["role"] == "user")
        floor = [m for m in messages if m["role"] == "system"] + messages[newest:]
        assert exc.required == count_chat_tokens(floor, MODEL) > max_tokens - reserve_tokens == exc.budget
        result = None
    except ValueError:
        assert reserve_tokens >= max_tokens
        result = None
    assert messages == original
    return result


fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(conversation(), st.integers(10, 3000), st.integers(0, 200))
def test_turns_invariants(messages, max_tokens, reserve):
    budget = max_tokens - reserve
    result = checked_trim(messages, max_tokens, reserve_tokens=reserve)
    if result is None:
        return
    assert_valid_payload(result, messages, budget)
    assert result.tokens_before == count_chat_tokens(messages, MODEL)
    conversation_part = [m for m in result.kept if m["role"] != "system"]
    order = {m["id"]: i for i, m in enumerate(messages)}
    if result.dropped:
        # Greedy and maximal: the newest dropped turn would not have fitted.
        user_positions = [i for i, m in enumerate(messages) if m["role"] == "user"]
        first_kept = min(order[m["id"]] for m in conversation_part)
        previous_start = max(i for i in user_positions if i < first_kept)
        extra = messages[previous_start:first_kept]
        assert count_chat_tokens(result.kept + extra, MODEL) > budget


@fast
@given(st.lists(st.tuples(st.sampled_from(["system", "user", "assistant", "tool"]), texts), max_size=30),
       st.integers(1, 2000))
def test_seed_invariants(pairs, budget):
    messages = [msg(role, text) for role, text in pairs]
    original = copy.deepcopy(messages)
    result = trim_history(messages, budget, model=MODEL, strategy="seed")
    assert messages == original
    assert_partition(result, messages)
    estimate = sum(estimate_tokens(m["content"]) for m in result.kept)
    assert result.tokens_after == estimate
    assert len(result.kept) == len(messages) or len(result.kept) >= 4
    assert estimate <= budget or len(result.kept) == min(4, len(messages))
    # The seed always removes index 1, so what it drops is one contiguous block right after message 0.
    assert [m["id"] for m in result.dropped] == [m["id"] for m in messages[1:1 + len(result.dropped)]]


def test_seed_leaves_assistant_first_where_turns_does_not():
    messages = [msg("system", "Be brief.")]
    for i in range(6):
        messages += [msg("user", f"question {i} " + "words " * 40), msg("assistant", f"answer {i} " + "words " * 40)]
    messages.append(msg("user", "and now?"))
    seed = trim_history(messages, 500, model=MODEL, strategy="seed")
    assert seed.kept[1]["role"] == "assistant"
    assert any("starts with an assistant message" in p for p in payload_problems(seed.kept))
    turns = trim_history(messages, 500, model=MODEL)
    assert turns.kept[1]["role"] == "user" and payload_problems(turns.kept) == []


def test_seed_can_split_a_tool_call_from_its_result():
    call = msg("assistant", None, tool_calls=[{"id": "c1", "type": "function",
                                               "function": {"name": "f", "arguments": "{}"}}])
    messages = [msg("system", "s"), msg("user", "u" * 400), call, msg("tool", "r" * 40, tool_call_id="c1"),
                msg("assistant", "done"), msg("user", "next")]
    seed = trim_history(messages, 13, model=MODEL, strategy="seed")
    assert any("without the assistant call" in p for p in payload_problems(seed.kept))
    turns = trim_history(messages, 60, model=MODEL)
    assert payload_problems(turns.kept) == []


def test_reserve_tokens_are_kept_free():
    messages = [msg("user", "hello " * 30), msg("assistant", "hi " * 30), msg("user", "again")]
    full = count_chat_tokens(messages, MODEL)
    assert trim_history(messages, full, model=MODEL).dropped == []
    result = trim_history(messages, full, model=MODEL, reserve_tokens=5)
    assert [m["role"] for m in result.dropped] == ["user", "assistant"]
    assert result.budget == full - 5


def test_overflow_carries_the_numbers_and_never_returns_empty():
    messages = [msg("system", "rules " * 50), msg("user", "huge " * 500)]
    with pytest.raises(ContextOverflowError) as info:
        trim_history(messages, 100, model=MODEL, reserve_tokens=10)
    exc = info.value
    assert exc.budget == 90 and exc.required == count_chat_tokens(messages, MODEL)
    assert f"{exc.required:,}" in str(exc) and "raise the token budget" in str(exc)


def test_unknown_strategy_and_bad_numbers_are_clear():
    with pytest.raises(ValueError, match="turns, cache-aware, seed"):
        trim_history([msg("user", "x")], strategy="nope")
    with pytest.raises(ValueError, match="positive"):
        trim_history([msg("user", "x")], 0)


def test_history_without_a_user_message_is_refused_clearly():
    with pytest.raises(ValueError, match="no user message"):
        trim_history([msg("system", "s"), msg("assistant", "hi")])


def test_estimate_fallback_when_encoding_is_missing(monkeypatch):
    def unavailable(model):
        raise tokens.EncodingUnavailable("o200k_base", "test")

    monkeypatch.setattr("lib.context.trimming.encoding_for", unavailable)
    messages = [msg("user", "a" * 400), msg("assistant", "b" * 400), msg("user", "c")]
    result = trim_history(messages, 50, model=MODEL)
    assert result.counter == "chars/4"
    assert [m["role"] for m in result.kept] == ["user"]


# --- "cache-aware": every guarantee of "turns", plus a cut that stays put while the payload fits -------------


def assert_valid_payload(result, messages, budget):
    """The guarantees shared by "turns" and "cache-aware"."""
    assert_partition(result, messages)
    assert result.kept, "never an empty payload"
    assert result.tokens_after == count_chat_tokens(result.kept, MODEL) <= budget
    assert payload_problems(result.kept) == []
    conversation_part = [m for m in result.kept if m["role"] != "system"]
    assert conversation_part[0]["role"] == "user"
    assert result.cut == conversation_part[0]["id"]
    assert all(m in result.kept for m in messages if m["role"] == "system")
    assert [m for m in messages if m["role"] == "user"][-1] in result.kept
    order = {m["id"]: i for i, m in enumerate(messages)}
    if result.dropped:
        assert max(order[m["id"]] for m in result.dropped) < min(order[m["id"]] for m in conversation_part)


def payload_from(messages, cut_id):
    start = next(i for i, m in enumerate(messages) if m["id"] == cut_id)
    return [m for i, m in enumerate(messages) if m["role"] == "system" or i >= start]


@fast
@given(conversation(), st.integers(10, 3000), st.integers(0, 200), st.floats(0.1, 1.0), st.data())
def test_cache_aware_invariants(messages, max_tokens, reserve, low_water, data):
    budget = max_tokens - reserve
    users = [m["id"] for m in messages if m["role"] == "user"]
    cut = data.draw(st.one_of(st.none(), st.sampled_from(users), st.just("no-such-id")))
    result = checked_trim(messages, max_tokens, strategy="cache-aware", reserve_tokens=reserve, low_water=low_water,
                          cut=cut)
    if result is None:
        return
    assert_valid_payload(result, messages, budget)
    order = {m["id"]: i for i, m in enumerate(messages)}
    start = cut if cut in order else users[0]
    if count_chat_tokens(payload_from(messages, start), MODEL) <= budget:
        assert result.cut == start, "the cut never moves while the payload fits"
        assert result.dropped == [m for m in messages[:order[start]] if m["role"] != "system"]
    else:
        # One big step: down to low water, or to the newest turn alone when even that is above low water.
        assert order[result.cut] > order[start]
        assert result.tokens_after <= low_water * budget or result.cut == users[-1]
        # ...and no bigger a step than needed: the turn before the new cut would have been above low water.
        earlier = [u for u in users if order[start] <= order[u] < order[result.cut]]
        if earlier:
            assert count_chat_tokens(payload_from(messages, earlier[-1]), MODEL) > low_water * budget


@fast
@given(st.lists(turn(), min_size=2, max_size=25), st.integers(150, 1500), st.floats(0.3, 0.9))
def test_cache_aware_cut_moves_rarely_over_a_session(turns, budget, low_water):
    """Replay a conversation turn by turn, as the chat does, passing each turn's cut to the next."""
    system = [msg("system", "You are terse.")]
    history: list[dict] = []
    cut = None
    for t in turns:
        history = history + t
        user_at = max(i for i, m in enumerate(history) if m["role"] == "user")
        candidates = system + history[: user_at + 1]
        try:
            result = trim_history(candidates, budget, model=MODEL, strategy="cache-aware", cut=cut,
                                  low_water=low_water)
        except ContextOverflowError:
            continue
        assert_valid_payload(result, candidates, budget)
        if cut is not None and count_chat_tokens(payload_from(candidates, cut), MODEL) <= budget:
            assert result.cut == cut
        elif cut is not None:
            order = {m["id"]: i for i, m in enumerate(candidates)}
            assert order[result.cut] > order[cut]
        cut = result.cut


def test_cache_aware_keeps_the_prefix_where_turns_shifts_it():
    messages = [msg("system", "Rules.")]
    cuts = {"turns": [], "cache-aware": []}
    previous = {"turns": None, "cache-aware": None}
    for i in range(30):
        messages += [msg("user", f"question {i} " + "word " * 30)]
        for strategy in cuts:
            result = trim_history(messages, 600, model=MODEL, strategy=strategy, cut=previous[strategy])
            previous[strategy] = result.cut
            cuts[strategy].append(result.cut)
        messages += [msg("assistant", f"answer {i} " + "word " * 30)]
    moves = {s: sum(a != b for a, b in zip(c, c[1:], strict=False)) for s, c in cuts.items()}
    # Once the window is full "turns" moves its cut on every turn; "cache-aware" only now and then.
    assert moves["turns"] >= 20
    assert moves["cache-aware"] <= moves["turns"] // 3


def test_cache_aware_rejects_bad_low_water_and_notes_a_lost_cut():
    messages = [msg("user", "a"), msg("assistant", "b"), msg("user", "c")]
    with pytest.raises(ValueError, match="low_water"):
        trim_history(messages, 100, strategy="cache-aware", low_water=0)
    result = trim_history(messages, 1000, model=MODEL, strategy="cache-aware", cut="gone")
    assert result.cut == messages[0]["id"] and "afresh" in result.notes[0]


def test_summary_is_routed_to_compaction_and_labels_cover_every_strategy():
    from lib.context import STRATEGIES, STRATEGY_HELP, STRATEGY_LABELS

    with pytest.raises(ValueError, match="lib.context.compaction"):
        trim_history([msg("user", "x")], strategy="summary")
    assert set(STRATEGIES) < set(STRATEGY_LABELS) == set(STRATEGY_HELP)
    assert STRATEGY_LABELS["cache-aware"] == "Whole turns, cache-friendly"


def test_overflow_is_a_history_lab_error():
    from lib.core import HistoryLabError

    assert issubclass(ContextOverflowError, HistoryLabError) and issubclass(ContextOverflowError, ValueError)
