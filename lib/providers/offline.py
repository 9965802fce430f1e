"""The offline teaching model: no network, deterministic, and every sentence it says is true of its payload.

It knows only what it receives, like a real model:
- it quotes only the current (last) user message, so no reply ever carries an older turn's words into
  later payloads (a reply that quoted turn 1 would smuggle turn 1 past the trimmer);
- it names the oldest message it can see by turn number and role, and says how many earlier turns it
  lost, from ``ProviderOptions.turn_numbers`` (one per payload message) and never from a side channel;
- asked something, it says whether the question's key words occur in its payload, and where;
- it validates like a real API: over the context window, a split tool pair, or (strict) an
  assistant-first payload is rejected with an ordinary ``ProviderError``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.context import SYSTEM_ROLES
from lib.core import Message, Usage
from lib.costs import PROFILES, PromptCache, TurnCache
from lib.providers.base import Capabilities, Provider, ProviderOptions, Reply
from lib.providers.errors import BadRequest
from lib.tokens import EncodingUnavailable, content_text, count_chat_tokens, count_tokens, estimate_chat_tokens

FORGOT_PHRASE = "I can no longer see your first message"
WHOLE_PHRASE = "Nothing was trimmed; I can see the whole conversation."
CANNOT_SEE_PHRASE = "I cannot see"
DEFAULT_MODEL = "offline-teacher"
# The model the offline model is priced and cached "as" when none is chosen (Settings.reference_model).
DEFAULT_REFERENCE_MODEL = "gpt-4o-mini"
# What the compaction step writes at the start of its summary message: "Summary of turns 1–4: ...".
SUMMARY_LABEL = re.compile(r"^\W*summary of turns?\s+(\d+)(?:\s*(?:-|–|—|to|through)\s*(\d+))?", re.IGNORECASE)
QUESTION_START = re.compile(
    r"^\W*(do|does|did|can|could|would|will|should|is|are|was|were|have|has|had|what|which|who|whom|"
    r"whose|when|where|why|how)\b", re.IGNORECASE)
# Words that carry no subject: "What was the word?" looks for "word", "Do you remember X?" for "X".
STOP_WORDS = frozenset("""
a an the and or but if of to in on at by for from with about as into than then so not no yes
i me my mine we us our you your yours he him his she her it its they them their this that these those
there here what which who whom whose when where why how is are was were be been being am do does did
done can could would will shall should may might must have has had remember recall recalled tell told
say said know knew see saw seen again please still any some all ever just one thing something
earlier before previous first last ago mentioned
""".split())
QUOTE_LIMIT = 200
MAX_KEY_WORDS = 6
MAX_PLACES = 4


class ContextLengthExceeded(BadRequest):
    """The payload is larger than the context window (OpenAI's ``context_length_exceeded``)."""

    def __init__(self, *, tokens: int, limit: int, exact: bool, provider: str = "offline") -> None:
        self.tokens = tokens
        self.limit = limit
        counted = f"{tokens:,} tokens" if exact else f"about {tokens:,} tokens (estimated, no encoding)"
        super().__init__(
            f"This model's maximum context length is {limit:,} tokens. However, your messages resulted in "
            f"{counted}. The offline model's context window is the token budget you selected: raise the "
            "budget, or choose a trimming strategy that keeps the payload within it (whole turns).",
            provider=provider, status=400)


class InvalidPayload(BadRequest):
    """The payload breaks a rule a real API enforces (a split tool pair, an assistant-first payload)."""

    def __init__(self, reason: str, *, provider: str = "offline") -> None:
        self.reason = reason
        super().__init__(f"The request was rejected: {reason}", provider=provider, status=400)


@dataclass(frozen=True)
class Seen:
    """One payload message as the model sees it; ``turn`` is None when the caller gave no turn numbers."""

    role: str
    turn: int | None
    text: str
    summary: tuple[int, int] | None = None  # the turns a summary message covers

    @property
    def conversational(self) -> bool:
        return self.summary is None and self.role not in SYSTEM_ROLES

    @property
    def place(self) -> str:
        if self.summary is not None:
            return f"the summary of {_turn_span(*self.summary)}"
        if self.role in SYSTEM_ROLES:
            return "the system prompt"
        return f"turn {self.turn} ({self.role})" if self.turn else f"a {self.role} message"


def view_payload(messages: Sequence[Message], options: ProviderOptions) -> list[Seen]:
    """The payload with each message's turn number, as given in ``options.turn_numbers``."""
    turns: Sequence[int | None] = [None] * len(messages)
    if options.turn_numbers is not None:
        if len(options.turn_numbers) != len(messages):
            raise ValueError(
                f"options.turn_numbers has {len(options.turn_numbers)} entries for {len(messages)} payload "
                "messages; give one per message (0 for the system prompt and summaries).")
        turns = list(options.turn_numbers)
    return [_seen(m, turn) for m, turn in zip(messages, turns, strict=True)]


def _seen(message: Message, turn: int | None) -> Seen:
    role = str(message.get("role") or "")
    text = content_text(message.get("content") or "")
    label = SUMMARY_LABEL.match(text) if role in (*SYSTEM_ROLES, "user") else None
    if label:
        first = int(label.group(1))
        return Seen(role, turn, text, (first, int(label.group(2) or first)))
    return Seen(role, turn, text)


# ---------------------------------------------------------------------------------------------- validation


def payload_tokens(messages: Sequence[Message], model: str) -> tuple[int, bool]:
    """The exact chat-format count, or the chars/4 estimate (flagged False) when no encoding loads."""
    try:
        return count_chat_tokens(messages, model), True
    except EncodingUnavailable:
        return estimate_chat_tokens(messages), False


def validate_payload(messages: Sequence[Message], *, model: str, options: ProviderOptions) -> list[str]:
    """Raise what a real API would reject; return the flags a lenient API would accept silently."""
    if not messages:
        raise InvalidPayload("the payload has no messages; at least one message is required.")
    tool_problem = tool_pairing_problem(messages)
    if tool_problem:
        raise InvalidPayload(tool_problem + " Trim whole turns so a tool call and its results stay together.")
    if options.context_window is not None:
        tokens, exact = payload_tokens(messages, model)
        if tokens > options.context_window:
            raise ContextLengthExceeded(tokens=tokens, limit=options.context_window, exact=exact)
    conversation = [m for m in messages if m.get("role") not in SYSTEM_ROLES]
    if conversation and conversation[0].get("role") == "assistant":
        if options.strict:
            raise InvalidPayload(
                "the first message after the system prompt must use the \"user\" role, but this payload starts "
                "with an assistant message. Anthropic rejects this; OpenAI accepts it. Strict mode is on, so "
                "the offline model rejects it too: trim whole turns, or turn strict mode off.")
        return ["Note: this payload starts with an assistant message after the system prompt. OpenAI accepts "
                "that; Anthropic would reject it (strict mode is off, so I answer anyway)."]
    return []


def tool_pairing_problem(messages: Sequence[Message]) -> str | None:
    """OpenAI's rule: an assistant's tool calls are answered by tool messages straight after it."""
    pending: list[str] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            call_id = str(message.get("tool_call_id"))
            if call_id not in pending:
                return (f"the tool result for {call_id} is not a response to a preceding assistant message "
                        "with that tool call (its call is missing).")
            pending.remove(call_id)
            continue
        if pending:
            return _unanswered(pending)
        if role == "assistant":
            pending = [str(c.get("id")) for c in message.get("tool_calls") or [] if isinstance(c, Mapping)]
    return _unanswered(pending) if pending else None


def _unanswered(call_ids: Sequence[str]) -> str:
    return ("an assistant message with tool calls must be followed by tool messages responding to each call; "
            f"these calls have no result: {', '.join(call_ids)}.")


# -------------------------------------------------------------------------------------------------- reply


def compose_reply(messages: Sequence[Message], *, model: str, options: ProviderOptions,
                  flags: Sequence[str] = ()) -> str:
    """The offline model's whole answer: every sentence is about this payload and nothing else."""
    seen = view_payload(messages, options)
    parts = [_received(seen, payload_tokens(messages, model), options.context_window),
             _oldest(seen), _coverage(seen, options.current_turn), *map(_summary_note, seen), *flags,
             *_answer(seen)]
    return "\n\n".join(p for p in parts if p)


def _received(seen: Sequence[Seen], counted: tuple[int, bool], window: int | None) -> str:
    tokens, exact = counted
    size = f"{tokens:,} tokens" if exact else f"about {tokens:,} tokens, estimated"
    if window is not None:
        size += f" of my {window:,}-token context window"
    roles: dict[str, int] = {}
    for s in seen:
        roles[s.role] = roles.get(s.role, 0) + 1
    mix = ", ".join(f"{n} {role}" for role, n in roles.items())
    return f"I received {_plural(len(seen), 'message')} ({size}): {mix}."


def _oldest(seen: Sequence[Seen]) -> str:
    conversation = [s for s in seen if s.conversational]
    if not conversation:
        return "There is no message from you in my payload."
    oldest = conversation[0]
    if oldest.turn is None:
        return (f"The oldest message I can see is a {oldest.role} message. I was not told turn numbers, so I "
                "cannot say which turn it belongs to or whether earlier turns were trimmed.")
    return f"The oldest message I can see is the {oldest.role} message of turn {oldest.turn}."


def _coverage(seen: Sequence[Seen], current_turn: int | None) -> str:
    """Which turns are missing, learnt only from the turn numbers of what was received."""
    visible = sorted({s.turn for s in seen if s.conversational and s.turn})
    if not visible:
        return ""
    oldest, newest = visible[0], max(current_turn or 0, visible[-1])
    lost = oldest - 1
    gaps = sorted(set(range(oldest, newest + 1)) - set(visible))
    opened = {s.turn for s in seen if s.conversational and s.role == "user"}
    headless = [t for t in visible if t not in opened]
    sentences = []
    if lost:
        verb = "was" if lost == 1 else "were"
        # Compaction drops the turns too; only the summary of them is left, so say which it was.
        summarised = any(s.summary and s.summary[0] <= 1 and s.summary[1] >= lost for s in seen)
        how = "replaced by the summary below" if summarised else "trimmed away before this request"
        sentences.append(f"{FORGOT_PHRASE}: {_plural(lost, 'earlier turn')} ({_turn_span(1, lost)}) {verb} "
                         f"{how}.")
    elif 1 in headless:
        sentences.append(f"{FORGOT_PHRASE}: it was trimmed away, and only later messages of turn 1 remain.")
    if gaps:
        sentences.append(f"{_turn_list(gaps).capitalize()} {'is' if len(gaps) == 1 else 'are'} missing from "
                         "the middle of my payload.")
    partial = [t for t in headless if t != 1 or lost]
    if partial:
        sentences.append(f"Of {_turn_list(partial)} I see only later messages: the user message that began "
                         f"{'it' if len(partial) == 1 else 'each'} was trimmed.")
    return " ".join(sentences) or WHOLE_PHRASE


def _summary_note(seen: Seen) -> str:
    if seen.summary is None:
        return ""
    return (f"I can see a summary of {_turn_span(*seen.summary)} (a {seen.role} message), "
            "not those turns themselves.")


def _answer(seen: Sequence[Seen]) -> list[str]:
    if not seen or seen[-1].role != "user":
        last = seen[-1].role if seen else "no"
        return [f"The last message in my payload is {_article(last)} {last} message, not one from you, so I "
                "have nothing new to answer."]
    current = seen[-1]
    said = f"You said (turn {current.turn})" if current.turn else "You said"
    parts = [f"{said}: “{_quote(current.text)}”"]
    if is_question(current.text):
        parts.append(_lookup(key_words(current.text), seen[:-1]))
    return parts


def is_question(text: str) -> bool:
    return "?" in text or bool(QUESTION_START.match(text))


def key_words(text: str) -> list[str]:
    """The words a question is about: lower-cased, stop words removed, in order, without repeats."""
    words = [w.strip("'-") for w in re.findall(r"[\w'-]+", text.lower())]
    chosen = [w for w in dict.fromkeys(words) if w and w not in STOP_WORDS and (len(w) > 1 or w.isdigit())]
    return chosen[:MAX_KEY_WORDS]


def where_words_occur(word: str, seen: Iterable[Seen]) -> list[str]:
    """The places (turn and role) where ``word`` occurs as a whole word, case-insensitively."""
    pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
    return list(dict.fromkeys(s.place for s in seen if pattern.search(s.text)))


def _lookup(words: Sequence[str], earlier: Sequence[Seen]) -> str:
    if not words:
        return "Your question has no words I could look for in my payload."
    places = {w: where_words_occur(w, earlier) for w in words}
    quoted = ", ".join(f"“{w}”" for w in words)
    if not any(places.values()):
        return (f"{CANNOT_SEE_PHRASE} {quoted} anywhere in my payload apart from your question, so I cannot "
                "answer it from what I was sent.")
    found = []
    for word, where in places.items():
        if not where:
            found.append(f"{CANNOT_SEE_PHRASE} “{word}” anywhere else in my payload.")
            continue
        more = f" and {len(where) - MAX_PLACES} more" if len(where) > MAX_PLACES else ""
        found.append(f"I can see “{word}” in {', '.join(where[:MAX_PLACES])}{more}.")
    return " ".join(found)


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTE_LIMIT else flat[: QUOTE_LIMIT - 1] + "…"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _turn_span(first: int, last: int) -> str:
    return f"turn {first}" if first == last else f"turns {first}–{last}"


def _turn_list(turns: Sequence[int]) -> str:
    """[2, 3, 4, 7] -> "turns 2–4, 7"."""
    runs: list[list[int]] = []
    for t in turns:
        if runs and t == runs[-1][-1] + 1:
            runs[-1].append(t)
        else:
            runs.append([t])
    text = ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
    return f"turn {text}" if len(turns) == 1 else f"turns {text}"


# ------------------------------------------------------------------------------------ simulated cache

# One simulated cache per process and profile, shared by every session, as a provider's cache is shared
# by every request of an organisation: a common system prompt hits across conversations too.
_CACHES: dict[tuple[str, str], tuple[PromptCache, float]] = {}
_CACHES_LOCK = threading.Lock()


def cache_profile_id(reference_model: str, options: ProviderOptions) -> str | None:
    """The cache the reference model's provider would use: OpenAI and Gemini cache automatically (Gemini's
    implicit cache), Anthropic only with prompt caching on (cache_control), so "None" means no cache at all."""
    if reference_model.startswith("claude"):
        if not options.prompt_caching:
            return None
        return "anthropic-1h" if options.cache_ttl == "1h" else "anthropic-5m"
    return "gemini" if reference_model.startswith("gemini") else "openai"


def simulate_cache(messages: Sequence[Message], *, reference_model: str, options: ProviderOptions,
                   now: float | None = None) -> TurnCache | None:
    """This request through the process's simulated cache for the reference model; None when it has none."""
    profile = cache_profile_id(reference_model, options)
    if profile is None:
        return None
    now = time.monotonic() if now is None else now
    with _CACHES_LOCK:
        cache, last = _CACHES.get((profile, reference_model), (None, now))
        # Every entry expires at most one TTL after the last request, so a cache idle that long is empty:
        # starting afresh is exact, and it keeps a long-running process from holding every prefix it saw.
        if cache is None or now - last > PROFILES[profile].ttl_seconds:
            cache = PromptCache(profile, model=reference_model)
        _CACHES[(profile, reference_model)] = (cache, now)
        return cache.request(messages, now=now)


def reset_simulated_caches() -> None:
    """Forget every simulated cache entry (tests, or "start the demo again")."""
    with _CACHES_LOCK:
        _CACHES.clear()


def simulated_usage(input_tokens: int, output_tokens: int, cache: TurnCache | None, *,
                    options: ProviderOptions) -> Usage:
    """Usage with SIMULATED cache figures; input_tokens include the cached ones, as OpenAI reports them."""
    read = min(cache.cached_tokens, input_tokens) if cache else 0
    write = min(cache.write_tokens, input_tokens - read) if cache else 0
    one_hour = options.prompt_caching and options.cache_ttl == "1h"
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=read,
                 cache_write_tokens=write, cache_in_input=True, cache_write_5m=None if one_hour else write,
                 cache_write_1h=write if one_hour else None, simulated=True)


# ----------------------------------------------------------------------------------------------- provider


class _OfflineRequest(dict[str, Any]):
    """The exact body "sent", plus the call's options, which the offline "server" needs to validate and
    to name turns. They ride on the object, not in the JSON, so the body matches every other provider's."""

    options: ProviderOptions


class OfflineProvider(Provider):
    name = "offline"
    label = "Offline teaching model (no key)"
    default_model = DEFAULT_MODEL
    models = (DEFAULT_MODEL,)
    capabilities = Capabilities(strict_validation=True, simulated_cache=True, local=True, names_turns=True)

    def __init__(self, *, delay: float = 0.01, reference_model: str = DEFAULT_REFERENCE_MODEL) -> None:
        super().__init__()
        self.delay = max(0.0, delay)
        self.reference_model = reference_model  # whose prompt cache it simulates

    def build_request(self, messages: Sequence[Message], *, model: str, max_tokens: int,
                      options: ProviderOptions) -> dict[str, Any]:
        request = _OfflineRequest(model=model, messages=[dict(m) for m in messages], max_tokens=max_tokens)
        request.options = options
        return request

    def open_stream(self, request: dict[str, Any]) -> Iterable[Any]:
        """Validate, then stream the reply in small chunks, then one Usage event (like include_usage)."""
        options = getattr(request, "options", None) or ProviderOptions()
        messages, model = request["messages"], request["model"]
        flags = validate_payload(messages, model=model, options=options)
        text = compose_reply(messages, model=model, options=options, flags=flags)
        # Only an accepted request reaches a provider's cache, so the lookup comes after validation.
        cache = simulate_cache(messages, reference_model=self.reference_model, options=options)
        usage = simulated_usage(payload_tokens(messages, model)[0], _text_tokens(text, model), cache,
                                options=options)
        return self._events(text, usage)

    def _events(self, text: str, usage: Usage) -> Iterator[Any]:
        for chunk in re.findall(r"\S+\s*", text):
            if self.delay:
                time.sleep(self.delay)
            yield chunk
        yield usage

    def handle_event(self, event: Any, reply: Reply) -> str:
        if isinstance(event, Usage):
            reply.usage = event
            return ""
        return str(event)


def _text_tokens(text: str, model: str) -> int:
    try:
        return count_tokens(text, model)
    except EncodingUnavailable:
        return estimate_chat_tokens([{"role": "assistant", "content": text}])
