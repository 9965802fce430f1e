"""The Lesson: the seed's tutorial in six chapters, each live and needing no key (pages/lesson.py draws it).

Every figure comes from the real code, run as the chapter is shown: lib.chat.conversation's turn with the offline model
(the seed's three turns and the forgetting are lib.chat.example's script, the one "Play the example" plays), the
stores, the trimmer and the compactor, the HTTP routes (in-process), and lib.chat.strategies.

    results = run_seed_turns(store, provider)                 # chapter 1 (and 2, 3): three real turns
    columns = [payload_column(r) for r in results]            # their payloads side by side
    view = trim_like_the_seed(payload, seed_budget(payload))           # chapter 5: the seed's trimHistory
    steps = play_forgetting(store, provider, session_id)      # chapter 5: the model forgets
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.chat.conversation import TurnRequest, TurnResult, run_turn
from lib.chat.example import SEED_TURNS, SMALL_BUDGET, ExampleProgress, ExampleStep, after, next_step
from lib.context import (
    STRATEGY_LABELS,
    ContextOverflowError,
    ExtractiveSummarizer,
    belief_text,
    compact_history,
    payload_problems,
    trim_history,
)
from lib.core import wire_payload
from lib.providers import OfflineProvider, Provider, ProviderError, ProviderOptions
from lib.sessions import MemoryStore, SessionStore
from lib.tokens import EncodingUnavailable, count_chat_tokens, count_label, estimate_chat_tokens, message_breakdown

LESSON_SYSTEM_PROMPT = "You are a helpful assistant."
LESSON_BUDGET = 1_000  # chapters 1-4: nothing is trimmed
LESSON_MODEL = OfflineProvider.default_model
Message = Mapping[str, Any]


@dataclass(frozen=True)
class Chapter:
    key: str
    title: str
    text: str


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("resend", "1. Stateless re-sending",
            "A model remembers nothing between requests. The seed's chat keeps the conversation itself and sends "
            "all of it again with every new message: turn 3 carries turns 1 and 2 as well. **Run the three "
            "turns**: the offline model answers each one, and the three request payloads stand side by side. Each "
            "is the previous payload plus two messages, so the tokens sent grow every turn, and over a whole "
            "conversation the total grows with the square of its length."),
    Chapter("memory", "2. In-memory sessions",
            "Between requests, the server must keep the conversation somewhere. The seed starts with a Map in the "
            "server's memory: fast, nothing to install, good for development. But that memory belongs to the "
            "process. The three turns below sit in a MemoryStore, this lab's version of the Map. **Restart the "
            "server** replaces it with a new instance, as a restart does, and asks the new one for the same "
            "session: the conversation is gone."),
    Chapter("redis", "3. Redis sessions",
            "The seed's production answer is Redis: the conversation lives outside the app, so a restart loses "
            "nothing, and a 24-hour TTL removes sessions nobody uses. This app's store is a real Valkey, an open "
            "source Redis. Below are this lesson's real keys, their TTL counting down, and the JSON stored in "
            "them. The seed keeps one string per session: every turn it GETs the whole JSON, adds two messages "
            "and SETEXes all of it back. This store appends only the new messages, in one atomic call that also "
            "refreshes every TTL."),
    Chapter("routes", "4. The routes",
            "The seed serves the chat as two HTTP routes: POST / with a sessionId and a message runs one turn, "
            "and DELETE /:sessionId clears a session. This app serves the same two as POST /api/chat and "
            "DELETE /api/chat/{id}, calling the same turn function as the pages. The curl lines are the calls "
            "this lesson made, with its real session id: paste them into a terminal on this machine. The "
            "buttons send the same requests to the same routes from here."),
    Chapter("trimming", "5. Context window management",
            "A conversation outgrows the context window, so something must go. The seed's trimHistory counts "
            "chars/4 and removes the second message until its estimate fits. On this conversation, the estimate "
            "says the payload fits while the exact count says the API refuses it, and the removal leaves a "
            "payload that starts with the model's reply. Whole-turn, cache-aware and summary trimming handle the "
            "same history correctly. Then play on at a 200-token budget until your fact is trimmed away, and ask "
            "for it."),
    Chapter("server", "6. Manual or server-side history",
            "The seed ends with a choice: keep the history yourself and re-send it, or let the provider keep it "
            "on its server. Here is that comparison, live, for this lesson's conversation and its next message: "
            "what each way sends, what the provider bills, and what a prompt cache would hold. Server-side "
            "history sends only the new message, yet every earlier token is still billed as input. Nothing here "
            "calls a provider: counts are tiktoken's, server-side rows and cache reads are simulated."),
)


def lesson_request(text: str, session_id: str | None, *, budget: int = LESSON_BUDGET,
                   strategy: str = "turns") -> TurnRequest:
    """One lesson turn, as the chat page would send it: the lesson's system prompt, the offline model."""
    return TurnRequest(user_text=text, session_id=session_id, system_prompt=LESSON_SYSTEM_PROMPT, budget=budget,
                       strategy=strategy)


def offline_model() -> OfflineProvider:
    """The lesson's model: the offline teaching model, answering at once."""
    return OfflineProvider(delay=0)


def run_seed_turns(store: SessionStore, provider: Provider, *, session_id: str | None = None) -> list[TurnResult]:
    """The seed's three turns ("Hello", "What's 2+2?", "And 4+4?") through the real turn; stops at a failure."""
    results: list[TurnResult] = []
    for step in SEED_TURNS:
        result = run_turn(store, provider, lesson_request(step.text, session_id))
        results.append(result)
        session_id = result.session_id
        if result.error is not None:
            break
    return results


# -- chapter 1: payloads side by side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PayloadMessage:
    role: str
    content: str
    estimate: int
    exact: int | None


@dataclass(frozen=True)
class PayloadColumn:
    """One turn's payload as sent, with per-message and total counts (the total includes the reply priming)."""

    turn: int
    messages: tuple[PayloadMessage, ...]
    estimate: int
    exact: int | None
    count_label: str
    reply: str


def payload_column(result: TurnResult, *, model: str = LESSON_MODEL) -> PayloadColumn:
    rows = message_breakdown(result.payload, model)
    messages = tuple(PayloadMessage(r.role, str(m.get("content", "")), r.estimate, r.exact)
                     for r, m in zip(rows, result.payload, strict=True))
    return PayloadColumn(result.turn, messages, result.record.estimate or 0, result.record.exact,
                         count_label("tiktoken", model=model), result.text)


# -- chapters 2 and 3: restarts --------------------------------------------------------------------------------


def restart_memory_store(store: MemoryStore) -> MemoryStore:
    """What a server restart leaves of an in-memory store: a new, empty instance with the same settings."""
    return MemoryStore(ttl=store.ttl_seconds, max_messages=store.max_messages)


# -- chapter 4: the routes -----------------------------------------------------------------------------------------


def curl_lines(base_url: str, session_id: str, *, token: bool = False) -> list[str]:
    """The lesson's calls as curl lines for this server: its three turns, the next one, GET and DELETE."""
    auth = ' -H "Authorization: Bearer $HISTORY_LAB_API_TOKEN"' if token else ""
    post = f"curl -s{auth} -H 'Content-Type: application/json' {base_url}/api/chat"
    first, *rest = [step.text.replace("'", "'\\''") for step in SEED_TURNS]
    lines = [f"# Turn 1: no sessionId, so the server started a session (this lesson got {session_id}).",
             f"{post} -d '{{\"message\": \"{first}\"}}'",
             "# Turns 2 and 3 name the session: the server re-sends its stored history with each message."]
    lines += [f"{post} -d '{{\"sessionId\": \"{session_id}\", \"message\": \"{text}\"}}'" for text in rest]
    lines += ["# The session as stored, then deleted (the seed's DELETE /:sessionId).",
              f"curl -s{auth} {base_url}/api/chat/{session_id}",
              f"curl -s{auth} -X DELETE {base_url}/api/chat/{session_id}"]
    return lines


# -- chapter 5: the seed's trimHistory, the better strategies, the forgetting --------------------------------------


@dataclass(frozen=True)
class SeedTrim:
    """The seed's trimHistory on one payload at ``budget``, and what the offline model (as the API) made of it."""

    budget: int
    estimate_before: int
    estimate: int
    exact: int | None
    kept: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    problems: list[str]
    refusal: str | None  # the offline model's rejection, None when it accepted the payload
    belief: str


def seed_budget(payload: Sequence[Message]) -> int:
    """The budget one token under the payload's chars/4 estimate: the seed must remove exactly enough to fit."""
    return max(1, estimate_chat_tokens(payload) - 1)


def trim_like_the_seed(payload: Sequence[Message], budget: int, *, model: str = LESSON_MODEL) -> SeedTrim:
    """Run the seed's trimHistory, then send its payload to the offline model with ``budget`` as its window."""
    trim = trim_history(payload, budget, model=model, strategy="seed")
    kept, _ = wire_payload(trim.kept)
    try:
        exact: int | None = count_chat_tokens(kept, model)
    except EncodingUnavailable:
        exact = None
    refusal = _refusal(kept, model=model, window=budget)
    estimate = estimate_chat_tokens(kept)
    return SeedTrim(budget, estimate_chat_tokens(payload), estimate, exact, kept, wire_payload(trim.dropped)[0],
                    payload_problems(kept), refusal,
                    belief_text(estimate, budget, exact, refused=refusal is not None))


def _refusal(payload: Sequence[Message], *, model: str, window: int) -> str | None:
    reply = offline_model().stream(payload, model=model, options=ProviderOptions(context_window=window, strict=True))
    try:
        for _ in reply:
            pass
    except ProviderError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class StrategyTrim:
    """One strategy's payload for the same history: what it kept and dropped, or why it could not build one."""

    strategy: str
    label: str
    kept: list[dict[str, Any]]
    dropped: list[dict[str, Any]]
    exact: int | None
    problems: list[str]
    error: str | None = None


def exact_budget(payload: Sequence[Message], *, model: str = LESSON_MODEL) -> int:
    """The budget one token under the payload's exact count: every exact strategy must trim something."""
    return max(1, count_chat_tokens(payload, model) - 1)


def better_strategies(payload: Sequence[Message], budget: int, *, model: str = LESSON_MODEL) -> list[StrategyTrim]:
    """Whole turns, cache-aware and summary on the same payload and budget (exact counts)."""
    views = []
    for strategy in ("turns", "cache-aware", "summary"):
        label = STRATEGY_LABELS.get(strategy, "Summarise old turns")
        try:
            if strategy == "summary":
                trim = compact_history(payload, budget, model=model, summarizer=ExtractiveSummarizer()).trim
            else:
                trim = trim_history(payload, budget, model=model, strategy=strategy)
        except ContextOverflowError as exc:
            views.append(StrategyTrim(strategy, label, [], [], None, [], str(exc)))
            continue
        kept, _ = wire_payload(trim.kept)
        views.append(StrategyTrim(strategy, label, kept, wire_payload(trim.dropped)[0], trim.tokens_after,
                                  payload_problems(kept)))
    return views


@dataclass(frozen=True)
class ForgettingStep:
    """One step of the example's second half: what was said, the reply, and whether the fact was sent."""

    step: ExampleStep
    result: TurnResult
    fact_sent: bool


def play_forgetting(store: SessionStore, provider: Provider, session_id: str) -> list[ForgettingStep]:
    """lib.chat.example's script after the seed's turns: the fact, fillers until it is trimmed away, the question.

    ``session_id`` holds the seed's three turns already; the steps run at the example's small budget.
    """
    progress = ExampleProgress(sent=len(SEED_TURNS))
    steps: list[ForgettingStep] = []
    while (step := next_step(progress)) is not None:
        result = run_turn(store, provider, lesson_request(step.text, session_id, budget=step.budget or SMALL_BUDGET))
        history = store.get_history(session_id)
        sent = set(result.record.sent_ids(history))
        fact_sent = bool(sent & set(progress.fact_ids)) or step.kind == "fact"
        progress = after(progress, step, result, history)
        steps.append(ForgettingStep(step, result, fact_sent))
        if result.error is not None:
            break
    return steps
