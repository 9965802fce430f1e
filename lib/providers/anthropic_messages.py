"""Anthropic Messages API: system at the top level, strictly alternating roles, optional prompt caching.

With prompt caching on, a cache breakpoint sits on the system prompt and on the last re-sent history
message, so the next turn reads the history from the cache instead of paying for it in full.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import anthropic

from lib.providers.base import Message, Reply, Usage, split_system
from lib.providers.remote import RemoteProvider
from lib.tokens import content_text

ANTHROPIC_URL = "https://api.anthropic.com"
CACHE = {"type": "ephemeral"}
# Anthropic rejects a conversation that starts with the assistant; this stands in for a trimmed question.
LEADING_USER = "(earlier messages were trimmed)"


class AnthropicProvider(RemoteProvider):
    name = "anthropic"
    label = "Anthropic (Messages)"
    default_model = "claude-sonnet-5-5"
    models = ("claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5-5", "claude-haiku-4-5")
    env_var = "ANTHROPIC_API_KEY"
    default_base_url = ANTHROPIC_URL

    def __init__(self, *, prompt_caching: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.prompt_caching = prompt_caching

    def _new_client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout,
                                   max_retries=self.max_retries)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        max_tokens: int = 1024,
        previous_response_id: str | None = None,
        dropped: int = 0,
    ) -> Reply:
        client = self.client
        system, conversation = split_system(messages)
        request: dict[str, Any] = {"model": model, "max_tokens": max_tokens,
                                   "messages": anthropic_messages(conversation, cache=self.prompt_caching),
                                   "stream": True}
        if system:
            request["system"] = ([{"type": "text", "text": system, "cache_control": CACHE}]
                                 if self.prompt_caching else system)

        def produce(reply: Reply) -> Iterator[str]:
            usage: dict[str, int] = {}
            for event in client.messages.create(**request):
                kind = getattr(event, "type", "")
                if kind == "message_start":
                    reply.response_id = event.message.id
                    _merge_usage(usage, event.message.usage)
                elif kind == "content_block_delta" and getattr(event.delta, "type", "") == "text_delta":
                    yield event.delta.text
                elif kind == "message_delta":
                    _merge_usage(usage, event.usage)
                reply.usage = Usage(
                    input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
                    cache_read_tokens=usage.get("cache_read_input_tokens", 0),
                    cache_write_tokens=usage.get("cache_creation_input_tokens", 0), cache_in_input=False,
                ) if usage else None

        return Reply(request, produce, self._translate)


def anthropic_messages(conversation: Sequence[Message], *, cache: bool = False) -> list[dict[str, Any]]:
    """Alternating user/assistant messages, merged where roles repeat, starting with a user message."""
    merged: list[dict[str, Any]] = []
    for message in conversation:
        role = "assistant" if message.get("role") == "assistant" else "user"
        text = _text(message)
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"] += "\n\n" + text
        else:
            merged.append({"role": role, "content": text})
    if merged and merged[0]["role"] != "user":
        merged.insert(0, {"role": "user", "content": LEADING_USER})
    if cache and len(merged) >= 2:
        # The breakpoint goes on the newest history message before the new question.
        target = merged[-2]
        target["content"] = [{"type": "text", "text": target["content"], "cache_control": CACHE}]
    return merged


def _text(message: Message) -> str:
    # Tool traffic becomes text: Anthropic's tool_use ids and OpenAI's differ, and the lesson is the history.
    text = content_text(message.get("content") or "")
    if message.get("role") == "tool":
        return f"[tool result {message.get('tool_call_id', '')}] {text}".strip()
    if message.get("tool_calls"):
        return f"{text}\n[tool calls] {content_text(message['tool_calls'])}".strip()
    return text


def _merge_usage(into: dict[str, int], usage: Any) -> None:
    if usage is None:
        return
    for field in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        value = getattr(usage, field, None)
        if value is not None:
            into[field] = value
