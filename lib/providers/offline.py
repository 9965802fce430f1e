"""The offline teaching model: no network, deterministic, and it says exactly what it was sent.

It knows only what is in the payload, like a real model. When the trimmer has dropped turns, the
oldest user message it can see is no longer your first one, and it says so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

from lib.providers.base import Message, Provider, Reply, Usage
from lib.providers.errors import ProviderError
from lib.tokens import EncodingUnavailable, content_text, count_chat_tokens, count_tokens, estimate_chat_tokens

FORGOT_PHRASE = "I can no longer see your first message"
WHOLE_PHRASE = "Nothing was trimmed; I can see the whole conversation."
DEFAULT_MODEL = "offline-teacher"


def _quote(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def describe_payload(messages: Sequence[Message], *, model: str, dropped: int) -> str:
    """The offline model's whole answer for this payload."""
    count, exact = _prompt_tokens(messages, model)
    tokens = f"{count:,} tokens" if exact else f"about {count:,} tokens, estimated"
    users = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    parts = [f"I received {len(messages)} messages ({tokens})."]
    if users:
        parts.append(f"The oldest user message I can still see is: “{_quote(users[0], 80)}”")
    if dropped:
        parts.append(f"{FORGOT_PHRASE}: {dropped} earlier messages were trimmed away before this request.")
    else:
        parts.append(WHOLE_PHRASE)
    if users:
        parts.append(f"You said: “{_quote(users[-1], 200)}”")
    return "\n\n".join(parts)


class OfflineProvider(Provider):
    name = "offline"
    label = "Offline teaching model (no key)"
    default_model = DEFAULT_MODEL
    models = (DEFAULT_MODEL,)

    def __init__(self, *, delay: float = 0.01) -> None:
        super().__init__()
        self.delay = max(0.0, delay)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str = DEFAULT_MODEL,
        max_tokens: int = 1024,
        previous_response_id: str | None = None,
        dropped: int = 0,
    ) -> Reply:
        payload = [dict(m) for m in messages]
        request: dict[str, Any] = {"model": model, "messages": payload, "max_tokens": max_tokens}
        text = describe_payload(payload, model=model, dropped=dropped)

        def produce(reply: Reply) -> Iterator[str]:
            for chunk in re.findall(r"\S+\s*", text):
                if self.delay:
                    time.sleep(self.delay)
                yield chunk
            reply.usage = Usage(input_tokens=_prompt_tokens(payload, model)[0],
                                output_tokens=_text_tokens(text, model))

        return Reply(request, produce, lambda exc: ProviderError(f"The offline model failed: {exc}",
                                                                 provider=self.name))


def _prompt_tokens(messages: Sequence[Message], model: str) -> tuple[int, bool]:
    """The exact chat-format count, or the chars/4 estimate when no encoding can be loaded."""
    try:
        return count_chat_tokens(messages, model), True
    except EncodingUnavailable:
        return estimate_chat_tokens(messages), False


def _text_tokens(text: str, model: str) -> int:
    try:
        return count_tokens(text, model)
    except EncodingUnavailable:
        return estimate_chat_tokens([{"role": "assistant", "content": text}])
