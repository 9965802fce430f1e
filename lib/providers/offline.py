"""The offline teaching model: no network, deterministic, and everything it says is true of its payload.

It knows only what it receives, like a real model, and answers like a small one (lib.providers.offline_answer):
"Hello" -> "Hi!", "What's 2+2?" -> "4", a stated fact recalled while a message holding it is in the payload,
"I can't see that any more" once none is. Beside the answer it reports what it could see (messages, tokens,
the oldest turn, what was trimmed, the summary it was given; lib.providers.offline_report) as
``Reply.report``, which the chat stores in the reply's metadata and never re-sends. Turn numbers come from
``ProviderOptions.turn_numbers`` (one per payload message), never from a side channel. It validates like a
real API (lib.providers.offline_validation) and simulates a prompt cache (lib.providers.offline_cache).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# The model the offline model is priced and cached "as" when none is chosen (Settings.reference_model).
from lib.core import DEFAULT_REFERENCE_MODEL as DEFAULT_REFERENCE_MODEL
from lib.core import Message, Usage, openai_chat_tools
from lib.providers.base import Capabilities, Provider, ProviderOptions, Reply
from lib.providers.offline_answer import FORGOTTEN_ANSWER, GREETING_REPLY, Answer, answer, arithmetic, key_words
from lib.providers.offline_cache import (
    cache_profile_id,
    reset_simulated_caches,
    simulate_cache,
    simulated_usage,
)
from lib.providers.offline_report import FORGOT_PHRASE, REPORT_LABEL, WHOLE_PHRASE, report_lines
from lib.providers.offline_validation import (
    ASSISTANT_FIRST_RULE,
    ContextLengthExceeded,
    InvalidPayload,
    payload_tokens,
    tool_pairing_problem,
    tool_tokens,
    validate_payload,
)
from lib.providers.offline_view import Seen, coverage, view_payload
from lib.tokens import EncodingUnavailable, count_tokens, estimate_chat_tokens

__all__ = [
    "ASSISTANT_FIRST_RULE", "DEFAULT_MODEL", "DEFAULT_REFERENCE_MODEL", "FORGOTTEN_ANSWER", "FORGOT_PHRASE",
    "GREETING_REPLY", "REPORT_LABEL", "WHOLE_PHRASE", "Composed", "ContextLengthExceeded", "InvalidPayload",
    "OfflineProvider", "Seen", "arithmetic", "cache_profile_id", "compose_reply", "key_words", "payload_tokens",
    "reset_simulated_caches", "simulate_cache", "simulated_usage", "tool_pairing_problem", "validate_payload",
    "view_payload",
]

DEFAULT_MODEL = "offline-teacher"


@dataclass(frozen=True)
class Composed:
    """The reply text (what is sent back on later turns) and the report beside it (never sent)."""

    text: str
    report: tuple[str, ...]


def compose_reply(messages: Sequence[Message], *, model: str, options: ProviderOptions,
                  flags: Sequence[str] = (), counted: tuple[int, bool] | None = None) -> Composed:
    """The offline model's answer and its report: a pure function of the payload and the options.
    ``counted``: the payload's ``payload_tokens``, when the caller has them."""
    seen = view_payload(messages, options)
    cover = coverage(seen, options.current_turn)
    said: Answer = answer(seen, cover)
    report = report_lines(seen, cover, tokens=counted or payload_tokens(messages, model, options.tools),
                          window=options.context_window, tools=[t.name for t in options.tools],
                          flags=flags, basis=said.basis)
    return Composed(said.text, report)


@dataclass(frozen=True)
class _Report:
    """The stream event that carries the report, after the text and before the usage."""

    lines: tuple[str, ...]


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
        request = _OfflineRequest(model=model, messages=[dict(m) for m in messages])
        if options.tools:  # the Chat Completions shape, as the model it is priced as would receive them
            request.update(tools=openai_chat_tools(options.tools), tool_choice="none")
        request["max_tokens"] = max_tokens
        request.options = options
        return request

    def open_stream(self, request: dict[str, Any]) -> Iterable[Any]:
        """Validate, then stream the reply in small chunks, then the report, then one Usage event."""
        options = getattr(request, "options", None) or ProviderOptions()
        messages, model = request["messages"], request["model"]
        counted = payload_tokens(messages, model, options.tools)  # once, for the check, the report and usage
        flags = validate_payload(messages, model=model, options=options, counted=counted)
        composed = compose_reply(messages, model=model, options=options, flags=flags, counted=counted)
        # Only an accepted request reaches a provider's cache, so the lookup comes after validation.
        cache = simulate_cache(messages, reference_model=self.reference_model, options=options,
                               tool_tokens=tool_tokens(options.tools, model))
        usage = simulated_usage(counted[0], _text_tokens(composed.text, model), cache, options=options)
        return self._events(composed, usage)

    def _events(self, composed: Composed, usage: Usage) -> Iterator[Any]:
        for chunk in re.findall(r"\S+\s*", composed.text):
            if self.delay:
                time.sleep(self.delay)
            yield chunk
        yield _Report(composed.report)
        yield usage

    def handle_event(self, event: Any, reply: Reply) -> str:
        if isinstance(event, Usage):
            reply.usage = event
            return ""
        if isinstance(event, _Report):
            reply.report = event.lines
            return ""
        return str(event)


def _text_tokens(text: str, model: str) -> int:
    try:
        return count_tokens(text, model)
    except EncodingUnavailable:
        return estimate_chat_tokens([{"role": "assistant", "content": text}])
