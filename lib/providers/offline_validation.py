"""The offline model validates like a real API: what one would reject is an ordinary ``ProviderError``.

A payload over the context window (OpenAI's ``context_length_exceeded``), a tool result without its call or a
call without its result is rejected; an assistant-first payload is rejected in strict mode (as Anthropic
does) and otherwise accepted with a note for the model's report (as OpenAI does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lib.context import SYSTEM_ROLES
from lib.core import Message, ToolDef, openai_chat_tools
from lib.providers.base import ProviderOptions
from lib.providers.errors import BadRequest
from lib.tokens import EncodingUnavailable, count_chat_tokens, count_tool_tokens, estimate_chat_tokens, estimate_tokens

ASSISTANT_FIRST_RULE = "the first message after the system prompt must use the \"user\" role"


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


def payload_tokens(messages: Sequence[Message], model: str, tools: Sequence[ToolDef] = ()) -> tuple[int, bool]:
    """The exact chat-format count (tool definitions included), or the chars/4 estimate (flagged False) when
    no encoding loads."""
    try:
        return count_chat_tokens(messages, model) + tool_tokens(tools, model), True
    except EncodingUnavailable:
        return estimate_chat_tokens(messages) + tool_tokens(tools, model), False


def tool_tokens(tools: Sequence[ToolDef], model: str) -> int:
    """The tool definitions' share of ``payload_tokens``: exact, or chars/4 of their JSON without an encoding."""
    if not tools:
        return 0
    try:
        return count_tool_tokens(tools, model)
    except EncodingUnavailable:
        return estimate_tokens(openai_chat_tools(tools))


def validate_payload(messages: Sequence[Message], *, model: str, options: ProviderOptions,
                     counted: tuple[int, bool] | None = None) -> list[str]:
    """Raise what a real API would reject; return the flags a lenient API would accept silently.
    ``counted``: the payload's ``payload_tokens``, when the caller has them."""
    if not messages:
        raise InvalidPayload("the payload has no messages; at least one message is required.")
    tool_problem = tool_pairing_problem(messages)
    if tool_problem:
        raise InvalidPayload(tool_problem + " Trim whole turns so a tool call and its results stay together.")
    if options.context_window is not None:
        tokens, exact = counted or payload_tokens(messages, model, options.tools)
        if tokens > options.context_window:
            raise ContextLengthExceeded(tokens=tokens, limit=options.context_window, exact=exact)
    conversation = [m for m in messages if m.get("role") not in SYSTEM_ROLES]
    if conversation and conversation[0].get("role") == "assistant":
        if options.strict:
            raise InvalidPayload(
                f"{ASSISTANT_FIRST_RULE}, but this payload starts with an assistant message. Anthropic rejects "
                "this; OpenAI accepts it. Strict mode is on, so the offline model rejects it too: trim whole "
                "turns, or turn strict mode off.")
        return ["This payload starts with an assistant message after the system prompt. OpenAI accepts that; "
                "Anthropic would reject it (strict mode is off, so I answered anyway)."]
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
