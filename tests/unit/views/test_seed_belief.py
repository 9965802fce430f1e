"""The seed's arithmetic in plain sight: a "seed" turn says what chars/4 believed against the exact count, and a
payload the seed left invalid names the rule it breaks (lib.views.badges through the real turn and timeline)."""

from __future__ import annotations

from lib.chat import FACT, SEED_TURNS, TurnRequest, filler, run_turn
from lib.context import ASSISTANT_FIRST_RULE, payload_problems
from lib.core import TurnRecord
from lib.providers import OfflineProvider
from lib.sessions import MemoryStore
from lib.views import build_timeline, seed_belief

SYSTEM = "You are a helpful assistant."
TEXTS = [*(s.text for s in SEED_TURNS), FACT.text, *(filler(n).text for n in range(1, 6))]


def play(budget: int, strategy: str = "seed") -> tuple[MemoryStore, str]:
    store, provider, session_id = MemoryStore(), OfflineProvider(delay=0), None
    for text in TEXTS:
        result = run_turn(store, provider, TurnRequest(user_text=text, session_id=session_id, budget=budget,
                                                       strategy=strategy, system_prompt=SYSTEM))
        session_id = result.session_id
    assert session_id is not None
    return store, session_id


def badge_texts(store: MemoryStore, session_id: str) -> dict[int, list[str]]:
    timeline = build_timeline(store.get_history(session_id), store.get_turns(session_id),
                              meta=store.get_meta(session_id))
    return {row.turn: [b.text for b in row.badges] for row in timeline.rows}


def test_a_refused_seed_turn_shows_what_chars_4_believed_against_the_exact_count():
    store, sid = play(60)
    records = [TurnRecord.from_json(r) for r in store.get_turns(sid)]
    refused = next(r for r in records if r.error_type == "ContextLengthExceeded")
    assert refused.estimate is not None and refused.exact is not None
    assert refused.estimate <= 60 < refused.exact  # the estimate let it through; the exact count did not
    expected = (f"chars/4 said {refused.estimate} ≤ 60, so the seed sent it; exact count {refused.exact}; "
                "the API refuses it")
    assert seed_belief(refused) == expected
    shown = badge_texts(store, sid)[refused.turn]
    assert expected in shown
    assert not any(text.startswith("over budget") for text in shown)  # said once, with its cause


def test_an_accepted_seed_turn_says_it_fits_and_other_strategies_have_no_belief():
    store, sid = play(1_000)
    first = TurnRecord.from_json(store.get_turns(sid)[0])
    assert seed_belief(first) == f"chars/4 said {first.estimate} ≤ 1,000, so the seed sent it; exact count " \
                                 f"{first.exact}; it fits"
    store, sid = play(1_000, "turns")
    assert seed_belief(TurnRecord.from_json(store.get_turns(sid)[0])) is None


def test_an_assistant_first_payload_from_the_seed_is_shown_with_the_rule_it_breaks():
    store, sid = play(60)
    records = [TurnRecord.from_json(r) for r in store.get_turns(sid)]
    invalid = next(r for r in records if any("starts with an assistant message" in p for p in r.problems))
    shown = " ".join(badge_texts(store, sid)[invalid.turn])
    assert "invalid payload: The payload starts with an assistant message, not a user message." in shown
    assert ASSISTANT_FIRST_RULE in shown


def test_every_payload_problem_names_its_rule():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    split = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [call]}]
    orphan = [{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "call_2", "content": "r"}]
    for payload in (split, orphan, [{"role": "assistant", "content": "a"}]):
        problems = payload_problems(payload)
        assert problems and all("Rule: " in p for p in problems)
