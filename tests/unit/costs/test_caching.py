"""The prompt-cache model (lib.costs.cache_model), and a session replayed under each strategy (strategy_costs)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.caching import synthetic
from lib.context import ContextOverflowError, trim_history
from lib.core import DEFAULT_PRICES, Price
from lib.costs import PROFILES, PromptCache, get_profile, replay_payloads, session_costs, simulate_session, wire_key
from lib.tokens import count_chat_tokens, message_tokens
from lib.tokens import counting as tokens
from tests.support.ci import require

MODEL = "gpt-4o"
CLAUDE = "claude-sonnet-4-5"
_ids = itertools.count()
SONNET = next(p for p in DEFAULT_PRICES if p.model == CLAUDE)


@pytest.fixture(autouse=True)
def _encoding_present():
    require(tokens.encoding_available(MODEL), "o200k_base not loadable")


def msg(role: str, content: str) -> dict:
    return {"id": f"m{next(_ids)}", "role": role, "content": content}


def growing_session(turns: int, *, system_words: int = 1500, words: int = 120) -> list[list[dict]]:
    """The payloads of an untrimmed conversation: each one extends the one before."""
    system = msg("system", "rule " * system_words)
    history: list[dict] = []
    payloads = []
    for t in range(turns):
        history.append(msg("user", f"question {t} " + "word " * words))
        payloads.append([system, *history])
        history.append(msg("assistant", f"answer {t} " + "word " * words))
    return payloads


def test_profiles_are_data_with_the_documented_rules():
    openai, a5, a1 = PROFILES["openai"], PROFILES["anthropic-5m"], PROFILES["anthropic-1h"]
    assert (openai.min_prefix, openai.granularity, openai.write_multiplier, openai.read_multiplier) == (
        1024, 128, 1.0, None)
    assert (a5.write_multiplier, a5.read_multiplier, a5.ttl_seconds) == (1.25, 0.1, 300)
    assert (a1.write_multiplier, a1.read_multiplier, a1.ttl_seconds) == (2.0, 0.1, 3600)
    assert all(("2026-12-06" if p.id.startswith("gemini") else "2026-11-25") in p.source for p in PROFILES.values())
    gemini = PROFILES["gemini"]
    # Implicit: no write fee, reads at the model's cached price, 4,096 tokens (2,048 for the 2.5 models).
    assert (gemini.write_multiplier, gemini.read_multiplier, gemini.min_prefix) == (1.0, None, 4096)
    assert (gemini.min_prefix_for("gemini-2.5-flash"), gemini.min_prefix_for("gemini-3.8-flash")) == (2048, 4096)
    assert a5.min_prefix_for("claude-haiku-4-5-20251001") == 4096 and a5.min_prefix_for(CLAUDE) == 1024
    # OpenAI reads at the model's cached-input price from the shared table.
    gpt4o = next(p for p in DEFAULT_PRICES if p.model == MODEL)
    assert openai.read_rate(gpt4o) == gpt4o.cache_read and a5.read_rate(SONNET) == pytest.approx(0.30)
    with pytest.raises(ValueError, match="anthropic-5m"):
        get_profile("nope")


def test_anthropic_writes_then_reads_the_growing_prefix():
    payloads = growing_session(3)
    turns = simulate_session(payloads, "anthropic-5m", model=CLAUDE)
    sizes = [count_chat_tokens(p, CLAUDE) for p in payloads]
    first, second, third = turns
    assert (first.status, first.cached_tokens, first.write_tokens, first.uncached_tokens) == (
        "first", 0, sizes[0] - 3, 3)
    assert second.label == "cache kept" and second.cached_tokens == sizes[0] - 3
    assert second.write_tokens == sizes[1] - sizes[0]
    assert second.cost == pytest.approx(((sizes[0] - 3) * 0.30 + (sizes[1] - sizes[0]) * 3.75 + 3 * 3.00) / 1e6)
    assert third.cached_messages == len(payloads[1])


def test_openai_hits_in_128_token_steps_above_1024():
    payloads = growing_session(4, system_words=1100)
    for turn, payload in zip(simulate_session(payloads, "openai", model=MODEL)[1:], payloads, strict=False):
        matched = count_chat_tokens(payload, MODEL) - 3
        assert turn.cached_tokens >= 1024 and (turn.cached_tokens - 1024) % 128 == 0
        assert 0 <= matched - turn.cached_tokens < 128
        assert turn.write_tokens == 0 or turn.cached_tokens + turn.write_tokens + turn.uncached_tokens \
            == turn.input_tokens


def test_short_prefixes_are_never_cached():
    payloads = growing_session(3, system_words=10, words=20)
    for profile in ("openai", "anthropic-5m"):
        later = simulate_session(payloads, profile, model=MODEL)[1:]
        assert all(t.cached_tokens == 0 and t.status == "short" for t in later)


def test_a_prefix_that_first_reaches_the_minimum_is_a_first_write_not_an_expiry():
    # A class's session starts small: nothing is cacheable until the payload passes 1,024 tokens.
    payloads = growing_session(12, system_words=10, words=120)
    statuses = [t.status for t in simulate_session(payloads, "openai", model=MODEL)]
    first_write = statuses.index("first")
    assert statuses[:first_write] == ["short"] * first_write and first_write > 0
    assert "expired" not in statuses and statuses[first_write + 1] == "kept"


def test_dropping_the_oldest_turn_breaks_the_cache_at_message_one():
    payloads = growing_session(4)
    shifted = [payloads[1], [payloads[2][0], *payloads[2][3:]]]  # the second request dropped turn 1
    first, second = simulate_session(shifted, "anthropic-5m", model=CLAUDE)
    assert second.status == "broken" and second.broken_at == 1
    assert second.label == "cache broken (prefix changed at message 1)"
    assert second.cached_tokens == message_tokens(payloads[0][0], CLAUDE)  # only the system prompt
    assert second.write_tokens == second.input_tokens - 3 - second.cached_tokens


def test_ttl_expires_and_every_hit_refreshes_it():
    payloads = growing_session(6)
    steady = simulate_session(payloads, "anthropic-5m", model=CLAUDE, timestamps=[240.0 * i for i in range(6)])
    assert [t.status for t in steady] == ["first"] + ["kept"] * 5  # 4 minutes apart: refreshed each time
    pause = simulate_session(payloads[:2], "anthropic-5m", model=CLAUDE, timestamps=[0.0, 301.0])
    assert pause[1].status == "expired" and pause[1].cached_tokens == 0
    assert pause[1].label.startswith("cache expired")
    hour = simulate_session(payloads[:2], "anthropic-1h", model=CLAUDE, timestamps=[0.0, 3000.0])
    assert hour[1].status == "kept"
    with pytest.raises(ValueError, match="one entry per payload"):
        simulate_session(payloads, "openai", timestamps=[0.0])


def test_anthropic_looks_back_at_most_20_messages_from_its_breakpoint():
    system = msg("system", "rule " * 1500)
    first = [system, msg("user", "start")]
    long_tail = [*first, *[msg("assistant" if i % 2 == 0 else "user", f"step {i}") for i in range(21)]]
    _, anthropic = simulate_session([first, long_tail], "anthropic-5m", model=CLAUDE)
    # The last breakpoint is 21 messages past the previous one: only the system prompt's entry is found.
    assert anthropic.cached_tokens == message_tokens(system, CLAUDE)
    _, openai = simulate_session([first, long_tail], "openai", model=MODEL)
    assert openai.cached_tokens >= message_tokens(system, MODEL) - 127


def test_caching_off_and_unknown_prices():
    off = simulate_session(growing_session(2), None, model=MODEL)
    assert [t.label for t in off] == ["caching off"] * 2 and all(t.cached_tokens == 0 for t in off)
    unknown = PromptCache("openai", model="my-local-llama", prices={"x": Price("x", 1.0, 1.0)})
    assert unknown.request(growing_session(1)[0]).cost is None
    assert "openai" in repr(unknown)


def test_wire_key_ignores_ids_and_meta():
    a = {"id": "1", "ts": 1, "role": "user", "content": "hi", "meta": {"x": 1}}
    assert wire_key(a) == wire_key({"role": "user", "content": "hi"}) != wire_key({"role": "user", "content": "ho"})


payload_lists = st.lists(
    st.lists(st.tuples(st.sampled_from(["user", "assistant"]), st.sampled_from(["a", "b " * 300, "c " * 900])),
             min_size=1, max_size=8),
    min_size=1, max_size=8)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload_lists, st.sampled_from(sorted(PROFILES)))
def test_every_request_adds_up_and_openai_caching_never_costs_more(raw, profile):
    system = {"role": "system", "content": "s " * 1200}
    payloads = [[system, *({"role": r, "content": c} for r, c in p)] for p in raw]
    for turn, payload in zip(simulate_session(payloads, profile, model=MODEL), payloads, strict=True):
        assert turn.input_tokens == count_chat_tokens(payload, MODEL)
        assert turn.cached_tokens + turn.write_tokens + turn.uncached_tokens == turn.input_tokens
        assert min(turn.cached_tokens, turn.write_tokens, turn.uncached_tokens) >= 0
    if profile.startswith("openai"):  # no write surcharge, reads discounted: caching can only help
        on = sum(t.cost for t in simulate_session(payloads, profile, model=MODEL))
        off = sum(t.cost for t in simulate_session(payloads, None, model=MODEL))
        assert on <= off + 1e-12


def test_replay_takes_the_same_decisions_as_trim_history_every_turn():
    system_prompt, history = synthetic(25)
    budget = 5_000
    for strategy in ("turns", "cache-aware", "seed"):
        cut = None
        replayed = replay_payloads(history, model=MODEL, budget=budget, strategy=strategy,
                                   system_prompt=system_prompt)
        for turn, payload in enumerate(replayed):
            candidates = [{"role": "system", "content": system_prompt}, *history[: 2 * turn + 1]]
            result = trim_history(candidates, budget, model=MODEL, strategy=strategy, cut=cut)
            cut = result.cut
            assert payload is not None
            assert [m.get("id") for m in payload] == [m.get("id") for m in result.kept], (strategy, turn)


def test_headline_cache_aware_costs_far_less_than_turns():
    """The bench's headline (bench/caching.py) on a smaller conversation: 60 turns at an 8,000 budget."""
    system_prompt, history = synthetic(60)
    budget = 8_000
    for profile, model in (("anthropic-5m", CLAUDE), ("openai", "gpt-5")):
        totals = {t.strategy: t for t in session_costs(history, model=model, budget=budget, system_prompt=system_prompt,
                                                       strategies=("turns", "cache-aware"), profiles=(profile,))}
        turns, aware = totals["turns"], totals["cache-aware"]
        assert aware.cost is not None and turns.cost is not None
        assert aware.cost <= 0.4 * turns.cost, (profile, aware.cost, turns.cost)
        assert aware.max_payload <= budget and turns.max_payload <= budget and aware.overflowed == 0
        assert aware.hit_rate > 0.8 > turns.hit_rate


def test_session_costs_cover_every_strategy_caching_on_and_off_and_overflow():
    system_prompt, history = synthetic(8)
    results = session_costs(history, model=MODEL, budget=3_000, system_prompt=system_prompt)
    assert {(r.strategy, r.profile) for r in results} == {
        (s, p) for s in ("turns", "cache-aware", "seed", "none") for p in ("openai", None)}
    none_off = next(r for r in results if r.strategy == "none" and r.profile is None)
    assert none_off.tokens_sent == sum(count_chat_tokens([{"role": "system", "content": system_prompt},
                                                          *history[: 2 * t + 1]], MODEL) for t in range(8))
    cumulative = none_off.cumulative_cost()
    assert cumulative[-1] == pytest.approx(none_off.cost) and cumulative == sorted(cumulative)
    tight = session_costs(history, model=MODEL, budget=2_100, system_prompt=system_prompt, strategies=("turns",))
    assert tight[0].overflowed == 8 and tight[0].cost == 0
    with pytest.raises(ValueError, match="reserved"):
        session_costs(history, model=MODEL, budget=100, reserve_tokens=100)


# --- The fast replay against the straightforward computation ---------------------------------------------------
# PromptCache keeps only what changed between requests (a shared expiry cell, a flat trie, lib.costs.strategy_costs'
# plans as ranges). NaiveCache is the rule as documented, computed the slow obvious way: every prefix a tuple,
# every request scanned in full. Both must agree on every figure.


class NaiveCache:
    def __init__(self, profile: str, *, model: str) -> None:
        self.profile = PROFILES[profile]
        self.model = model
        self.min_prefix = self.profile.min_prefix_for(model)
        self.price = next(p for p in DEFAULT_PRICES if p.model == model)
        self.entries: dict[tuple[str, ...], float] = {}
        self.previous: list[str] | None = None
        self.previous_total = 0
        self.now = 0.0

    def request(self, payload: list[dict], now: float | None) -> tuple:
        self.now = self.now if now is None else now
        keys = [wire_key(m) for m in payload]
        ends = list(itertools.accumulate(message_tokens(m, self.model) for m in payload))
        system_end = next((i for i, m in enumerate(payload) if m["role"] != "system"), len(payload))
        n, lookback = len(keys), self.profile.lookback
        hit = next((d for d in range(n, 0, -1)
                    if (lookback is None or n - d <= lookback or d == system_end)
                    and self.entries.get(tuple(keys[:d]), -math.inf) >= self.now), 0)
        matched = ends[hit - 1] if hit else 0
        step = self.profile.granularity
        cached = 0 if matched < self.min_prefix else self.min_prefix + (matched - self.min_prefix) // step * step
        written = ends[-1] - matched if ends[-1] >= self.min_prefix else 0
        depths = range(1, n + 1) if self.profile.store == "every" else (hit, system_end, n)
        for d in depths:
            if d and ends[d - 1] >= self.min_prefix:
                self.entries[tuple(keys[:d])] = self.now + self.profile.ttl_seconds
        broken = None
        if ends[-1] < self.min_prefix:  # nothing cacheable: neither written, read nor broken
            status = "short"
        elif self.previous is None:
            status = "first"
        elif keys[: len(self.previous)] != self.previous:
            status = "broken"
            broken = next((i for i, (a, b) in enumerate(zip(self.previous, keys, strict=False)) if a != b), n)
        elif hit:
            status = "kept"
        else:  # an expiry only if the previous payload could be cached at all
            status = "expired" if self.previous_total >= self.min_prefix else "first"
        self.previous, self.previous_total = keys, ends[-1]
        total = ends[-1] + 3
        return total, cached, written, status, broken, n, hit if cached else 0

    def cost(self, total: int, cached: int, written: int) -> float:
        return ((total - cached - written) * self.price.input + cached * self.profile.read_rate(self.price)
                + written * self.profile.write_rate(self.price)) / 1e6


def figures(turn) -> tuple:
    return (turn.input_tokens, turn.cached_tokens, turn.write_tokens, turn.status, turn.broken_at, turn.messages,
            turn.cached_messages)


POOL = [("system", "rule " * 1100), ("user", "ok"), ("assistant", "ok"), ("user", "b " * 300),
        ("assistant", "c " * 700), ("user", "d " * 150), ("assistant", "e " * 1300)]
pool_messages = st.lists(st.sampled_from(POOL[1:]), min_size=1, max_size=6)


@st.composite
def payload_sequences(draw) -> tuple[list[list[dict]], list[float]]:
    """Payloads that grow, shrink, shift and repeat, as trimmers make them; timestamps that may go back."""
    system = {"role": "system", "content": POOL[0][1]}
    payloads: list[list[dict]] = []
    previous: list[dict] = [system]
    for _ in range(draw(st.integers(1, 10))):
        keep = draw(st.integers(0, len(previous)))
        drop = draw(st.integers(0, 3))
        head = [system] if draw(st.booleans()) else []
        body = previous[:keep] if draw(st.booleans()) else [*head, *previous[1 + drop: keep]]
        payload = [*body, *({"role": r, "content": c} for r, c in draw(pool_messages))]
        payloads.append(payload)
        previous = payload
    stamps = list(itertools.accumulate(draw(st.lists(st.sampled_from([0.0, 60.0, 250.0, 400.0, -500.0, 4000.0]),
                                                     min_size=len(payloads), max_size=len(payloads)))))
    return payloads, stamps


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload_sequences(), st.sampled_from(sorted(PROFILES)), st.booleans())
def test_prompt_cache_equals_the_naive_rule(sequence, profile, timed):
    payloads, stamps = sequence
    model = MODEL if profile.startswith("openai") else CLAUDE
    naive = NaiveCache(profile, model=model)
    fast = simulate_session(payloads, profile, model=model, timestamps=stamps if timed else None)
    for payload, stamp, turn in zip(payloads, stamps, fast, strict=True):
        expected = naive.request(payload, stamp if timed else None)
        assert figures(turn) == expected
        assert turn.cost == pytest.approx(naive.cost(*expected[:3]))


@st.composite
def histories(draw) -> list[dict]:
    """A stored history: turns of user + replies, repeated contents, now and then a system message inside."""
    history: list[dict] = []
    for t in range(draw(st.integers(1, 12))):
        history.append(msg("user", draw(st.sampled_from(["ok", "b " * 300, "d " * 150, f"question {t}"]))))
        for role, content in draw(st.lists(st.sampled_from(POOL), max_size=3)):
            history.append(msg(role if role != "user" else "assistant", content))
    for m, t in zip(history, itertools.accumulate(draw(st.lists(st.sampled_from([30.0, 200.0, 400.0]),
                                                                min_size=len(history), max_size=len(history)))),
                    strict=True):
        m["ts"] = t
    return history


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sampled_from([1_500, 3_000, 6_000]), st.sampled_from(["", "Be brief.", "rule " * 1100]),
       st.sampled_from(["openai", "anthropic-5m"]))
def test_session_costs_equal_trim_history_then_the_naive_cache(history, budget, system_prompt, profile):
    model = MODEL if profile == "openai" else CLAUDE
    results = session_costs(history, model=model, budget=budget, system_prompt=system_prompt,
                            profiles=(profile, None))
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    users = [i for i, m in enumerate(history) if m["role"] == "user"]
    stamps = [history[i]["ts"] for i in users]
    for strategy in ("turns", "cache-aware", "seed", "none"):
        cut, naive = None, NaiveCache(profile, model=model)
        on, off = (next(r for r in results if (r.strategy, r.profile) == (strategy, p)) for p in (profile, None))
        for n, user in enumerate(users):
            candidates = [*system, *history[: user + 1]]
            if strategy == "none":
                payload: list[dict] | None = candidates
            else:
                try:
                    result = trim_history(candidates, budget, model=model, strategy=strategy, cut=cut)
                except ContextOverflowError:
                    payload = None
                else:
                    cut, payload = result.cut, result.kept
            if payload is None:
                assert on.turns[n] is None and off.turns[n] is None, (strategy, n)
                continue
            expected = naive.request(payload, stamps[n])
            assert figures(on.turns[n]) == expected, (strategy, n)
            assert on.turns[n].cost == pytest.approx(naive.cost(*expected[:3]))
            assert off.turns[n].input_tokens == count_chat_tokens(payload, model)
