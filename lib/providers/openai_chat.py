"""OpenAI Chat Completions, and the same adapter for OpenAI-compatible local servers.

The whole (trimmed) history goes in ``messages`` on every call: the model keeps nothing between requests.
OpenAI caches a repeated prefix automatically (no switch), and reports the cached tokens in the usage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import openai

from lib.core import WIRE_KEYS, Message, mask_then_cut
from lib.providers.base import Capabilities, ProviderOptions, Reply
from lib.providers.errors import Refused
from lib.providers.remote import RemoteProvider
from lib.providers.usage import openai_usage

OPENAI_URL = "https://api.openai.com/v1"
# Current models with a known price (lib/core/pricing.py), from the installed SDK's list (openai/types/shared/
# chat_model.py, 2026-11-25). o4-mini was shut down on 2026-10-23; gpt-5/gpt-5-mini shut down on 2026-12-11.
OPENAI_MODELS = ("gpt-5.4-mini", "gpt-5.4", "gpt-5.5", "gpt-4.1", "gpt-4o-mini")


class OpenAIChatProvider(RemoteProvider):
    name = "openai"
    label = "OpenAI (Chat Completions)"
    default_model = "gpt-5.4-mini"
    models: tuple[str, ...] = OPENAI_MODELS
    env_var: str | None = "OPENAI_API_KEY"
    capabilities = Capabilities(needs_key=True)
    default_base_url = OPENAI_URL
    # o-series and gpt-5 models refuse max_tokens; local servers often know only max_tokens.
    max_tokens_field = "max_completion_tokens"

    def _new_client(self) -> openai.OpenAI:
        # Servers that need no key still make the SDK want one; the placeholder is never shown.
        return openai.OpenAI(api_key=self._api_key or "not-needed", base_url=self.base_url, timeout=self.timeout,
                             max_retries=self.max_retries)

    def build_request(self, messages: Sequence[Message], *, model: str, max_tokens: int,
                      options: ProviderOptions) -> dict[str, Any]:
        return {
            "model": model,
            "messages": [{k: m[k] for k in WIRE_KEYS if m.get(k) is not None} for m in messages],
            self.max_tokens_field: max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    def open_stream(self, request: dict[str, Any]) -> Iterable[Any]:
        stream: Iterable[Any] = self.client.chat.completions.create(**request)
        return stream

    def handle_event(self, event: Any, reply: Reply) -> str:
        if event.usage is not None:  # the last chunk, with no choices, carries the usage
            reply.usage = openai_usage(event.usage, getattr(event, "prompt_cache_diagnostics", None))
        if event.id and reply.response_id is None:
            reply.response_id = event.id
        text = []
        for choice in event.choices:
            if choice.finish_reason:
                reply.stop_reason = choice.finish_reason
            if choice.delta and choice.delta.refusal:
                reply.refusal = (reply.refusal or "") + choice.delta.refusal
            if choice.delta and choice.delta.content:
                text.append(choice.delta.content)
        return "".join(text)

    def finish(self, reply: Reply) -> None:
        if reply.refusal and not reply.text:
            raise Refused(f"{self.label} refused to answer: {mask_then_cut(reply.refusal, 300)}", provider=self.label,
                          reason=reply.refusal)


class OpenAICompatibleProvider(OpenAIChatProvider):
    name = "openai-compatible"
    label = "OpenAI-compatible (Ollama, vLLM, LM Studio, llama.cpp)"
    default_model = "llama3.2"
    models = ("llama3.2", "qwen2.5", "mistral", "gemma3")
    env_var = None  # the key is optional
    capabilities = Capabilities()
    max_tokens_field = "max_tokens"

    @property
    def hint(self) -> str:
        return f"Needs a server at {self.base_url}; set OPENAI_COMPATIBLE_BASE_URL to change it."
