"""OpenAI Chat Completions, and the same adapter for OpenAI-compatible local servers.

The whole (trimmed) history goes in ``messages`` on every call: the model keeps nothing between requests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import openai

from lib.providers.base import Message, Reply, Usage
from lib.providers.remote import RemoteProvider
from lib.tokens import WIRE_KEYS

OPENAI_URL = "https://api.openai.com/v1"


class OpenAIChatProvider(RemoteProvider):
    name = "openai"
    label = "OpenAI (Chat Completions)"
    default_model = "gpt-4o-mini"
    models = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-5", "gpt-5-mini", "gpt-5.5", "o4-mini")
    env_var: str | None = "OPENAI_API_KEY"
    default_base_url = OPENAI_URL
    # o-series models refuse max_tokens; local servers often know only max_tokens.
    max_tokens_field = "max_completion_tokens"

    def _new_client(self) -> openai.OpenAI:
        # Servers that need no key still make the SDK want one; the placeholder is never shown.
        return openai.OpenAI(api_key=self._api_key or "not-needed", base_url=self.base_url, timeout=self.timeout,
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
        client = self.client  # MissingKeyError now, before anything is sent
        request: dict[str, Any] = {
            "model": model,
            "messages": [{k: m[k] for k in WIRE_KEYS if m.get(k) is not None} for m in messages],
            self.max_tokens_field: max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

        def produce(reply: Reply) -> Iterator[str]:
            for chunk in client.chat.completions.create(**request):
                if chunk.usage is not None:  # the last chunk, with no choices, carries the usage
                    details = chunk.usage.prompt_tokens_details
                    reply.usage = Usage(
                        input_tokens=chunk.usage.prompt_tokens, output_tokens=chunk.usage.completion_tokens,
                        cache_read_tokens=(details.cached_tokens or 0) if details else 0, cache_in_input=True,
                    )
                if chunk.id and reply.response_id is None:
                    reply.response_id = chunk.id
                for choice in chunk.choices:
                    if choice.delta and choice.delta.content:
                        yield choice.delta.content

        return Reply(request, produce, self._translate)


class OpenAICompatibleProvider(OpenAIChatProvider):
    name = "openai-compatible"
    label = "OpenAI-compatible (Ollama, vLLM, LM Studio, llama.cpp)"
    default_model = "llama3.2"
    models = ("llama3.2", "qwen2.5", "mistral", "gemma3")
    env_var = None  # the key is optional
    max_tokens_field = "max_tokens"

    @property
    def hint(self) -> str:
        return f"Needs a server at {self.base_url}; set OPENAI_COMPATIBLE_BASE_URL to change it."
