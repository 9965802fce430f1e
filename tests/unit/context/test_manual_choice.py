"""'You choose': pinned turns are always sent, left-out turns never, and every guarantee of the trimmer holds."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.context import ContextOverflowError, ManualChoice, payload_problems, trim_history
from lib.context.manual import ChoiceConflict
from lib.tokens import count_chat_tokens
from lib.tokens import counting as tokens
from tests.conftest import require
from tests.support.conversations import assert_partition, conversation, msg

MODEL = "gpt-4o-mini"
fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _encoding_present():
    require(tokens.encoding_available(MODEL), "o200k_base not loadable; set TIKTOKEN_CACHE_DIR")


def turns_of(messages):
    """{user id: the positions of its turn's non-system messages}, in order."""
    spans: dict[str, list[int]] = {}
    current = None
    for i, m in enumerate(messages):
        if m["role"] == "user":
            current = m["id"]
            spans[current] = []
        if current is not None and m["role"] != "system":
            spans[current].append(i)
    return spans


@st.composite
def chosen(draw):
    messages = draw(conversation())
    users = [m["id"] for m in messages if m["role"] == "user"]
    states = draw(st.lists(st.sampled_from([None, "pinned", "left_out"]), min_size=len(users), max_size=len(users)))
    choice = ManualChoice.of(pinned=[u for u, s in zip(users, states, strict=True) if s == "pinned"],
                             left_out=[u for u, s in zip(users, states, strict=True) if s == "left_out"])
    return messages, choice


@fast
@given(chosen(), st.integers(10, 3000), st.integers(0, 200), st.sampled_from(["turns", "cache-aware"]),
       st.integers(0, 300), st.data())
def test_pinning_and_leaving_out_keep_every_invariant(case, max_tokens, reserve, strategy, tool_tokens, data):
    messages, choice = case
    original = copy.deepcopy(messages)
    budget = max_tokens - reserve
    users = [m["id"] for m in messages if m["role"] == "user"]
    cut = data.draw(st.one_of(st.none(), st.sampled_from(users))) if strategy == "cache-aware" else None
    spans = turns_of(messages)
    newest = users[-1]
    pinned_positions = [i for u in choice.pinned if u != newest for i in spans[u]]
    floor = ([m for m in messages if m["role"] == "system"]
             + [messages[i] for i in sorted({*pinned_positions, *spans[newest]})])
    try:
        result = trim_history(messages, max_tokens, model=MODEL, strategy=strategy, reserve_tokens=reserve,
                              choice=choice, cut=cut, tool_tokens=tool_tokens)
    except ContextOverflowError as exc:
        # Raised only when the system prompt, the newest turn, the pinned turns and the tools cannot fit.
        assert exc.required == count_chat_tokens(floor, MODEL) + tool_tokens > budget == exc.budget
        assert messages == original
        return
    except ValueError:
        assert reserve >= max_tokens
        return
    assert messages == original
    assert_partition(result, messages)
    kept_ids = {m["id"] for m in result.kept}
    # Budget, exact counts, tools never dropped.
    assert result.tokens_after == count_chat_tokens(result.kept, MODEL) + tool_tokens <= budget
    assert result.tool_tokens == tool_tokens
    # A payload a real API accepts: user first after the system prompt, tool calls beside their results.
    assert payload_problems(result.kept) == []
    conversation_part = [m for m in result.kept if m["role"] != "system"]
    assert conversation_part[0]["role"] == "user"
    # System messages and the newest user message are always sent.
    assert all(m["id"] in kept_ids for m in messages if m["role"] == "system")
    assert newest in kept_ids
    # Whole turns: a turn is sent entirely or not at all.
    for positions in spans.values():
        sent = {messages[i]["id"] in kept_ids for i in positions}
        assert len(sent) == 1
    # Pinned turns always sent; left-out turns never (except the newest, which is always sent).
    for user in choice.pinned:
        assert all(messages[i]["id"] in kept_ids for i in spans[user])
    for user in choice.left_out - {newest}:
        assert not any(messages[i]["id"] in kept_ids for i in spans[user])
    assert set(result.left_out_ids) == {messages[i]["id"] for u in choice.left_out - {newest} for i in spans[u]}
    assert set(result.pinned_ids) == set(messages[i]["id"] for i in pinned_positions)
    # The strategy still chose the most recent turns it could among the free ones (greedy, newest first).
    # The newest turn is never pinned or left out: it is always the strategy's to send.
    free = [u for u in users if u == newest or (u not in choice.pinned and u not in choice.left_out)]
    free_sent = [u for u in free if u in kept_ids]
    assert result.cut == free_sent[0], "the cut is where the strategy's own suffix starts"
    assert free_sent == free[free.index(free_sent[0]):], "the strategy keeps a suffix of the free turns"
    if strategy == "turns":
        first = free.index(free_sent[0])
        if first > 0:  # the free turn just before the first one sent would not have fitted
            extra = [messages[i] for i in spans[free[first - 1]]]
            assert count_chat_tokens(result.kept + extra, MODEL) + tool_tokens > budget


def history(turns: int, words: int = 30):
    messages = [msg("system", "Be brief.")]
    for i in range(turns):
        messages += [msg("user", f"question {i} " + "word " * words),
                     msg("assistant", f"answer {i} " + "word " * words)]
    return messages


def test_a_pinned_first_turn_survives_a_budget_that_trims_everything_else():
    messages = history(8) + [msg("user", "and now?")]
    plain = trim_history(messages, 300, model=MODEL)
    assert messages[1] in plain.dropped
    pinned = trim_history(messages, 300, model=MODEL, choice=ManualChoice.of(pinned=[messages[1]["id"]]))
    assert messages[1] in pinned.kept and messages[2] in pinned.kept
    assert pinned.pinned_ids == (messages[1]["id"], messages[2]["id"])
    assert pinned.tokens_after <= 300 and len(pinned.kept) < len(plain.kept) + 2


def test_a_left_out_turn_is_never_sent_even_with_room_to_spare():
    messages = history(3) + [msg("user", "and now?")]
    result = trim_history(messages, 100_000, model=MODEL, choice=ManualChoice.of(left_out=[messages[3]["id"]]))
    assert [m["id"] for m in result.dropped] == [messages[3]["id"], messages[4]["id"]]
    assert result.left_out_ids == (messages[3]["id"], messages[4]["id"])
    assert result.kept[1]["role"] == "user" and payload_problems(result.kept) == []


def test_the_newest_message_cannot_be_left_out_and_the_note_says_so():
    messages = history(1) + [msg("user", "and now?")]
    result = trim_history(messages, 10_000, model=MODEL, choice=ManualChoice.of(left_out=[messages[-1]["id"]]))
    assert messages[-1] in result.kept and "cannot be left out" in result.notes[0]


def test_pinning_more_than_fits_is_an_overflow_that_says_to_unpin():
    messages = history(6, words=80) + [msg("user", "and now?")]
    choice = ManualChoice.of(pinned=[m["id"] for m in messages if m["role"] == "user"][:-1])
    with pytest.raises(ContextOverflowError, match="unpin a turn") as info:
        trim_history(messages, 400, model=MODEL, choice=choice)
    assert info.value.pinned_tokens > 0


def test_a_choice_over_the_seed_or_a_conflicting_choice_is_refused_clearly():
    messages = history(1) + [msg("user", "x")]
    with pytest.raises(ValueError, match="whole-turn strategies"):
        trim_history(messages, 1000, strategy="seed", choice=ManualChoice.of(pinned=[messages[1]["id"]]))
    with pytest.raises(ChoiceConflict, match="both pinned and left out"):
        ManualChoice.of(pinned=["a"], left_out=["a"])
    with pytest.raises(ChoiceConflict, match="not in this session's history"):
        ManualChoice.from_turns(pinned=[7], left_out=[], user_ids={1: "a", 2: "b"})


def test_the_choice_round_trips_through_session_meta_and_reads_junk_as_no_choice():
    choice = ManualChoice.of(pinned=["a"], left_out=["b"])
    assert ManualChoice.from_meta({"manual_choice": choice.to_meta()}) == choice
    for junk in ("not json", "[1, 2]", '{"pinned": [1, null], "left_out": "x"}', ""):
        assert not ManualChoice.from_meta({"manual_choice": junk})
    assert choice.with_turn("a", None).with_turn("c", "left_out") == ManualChoice.of(left_out=["b", "c"])


def test_tool_tokens_are_held_first_and_never_dropped():
    messages = history(4) + [msg("user", "and now?")]
    full = count_chat_tokens(messages, MODEL)
    assert trim_history(messages, full, model=MODEL).dropped == []
    with_tools = trim_history(messages, full, model=MODEL, tool_tokens=50)
    assert with_tools.dropped and with_tools.tokens_after <= full
    assert with_tools.tokens_before == full + 50 and with_tools.tool_tokens == 50
