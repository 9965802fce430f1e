"""OpenAI Chat Completions, and the same adapter for OpenAI-compatible local servers.

The whole (trimmed) history goes in ``messages`` on every call: the model keeps nothing between requests.
OpenAI caches a repeated prefix automatically (no switch), and reports the cached tokens in the usage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from lib.core import WIRE_KEYS, Message, mask_then_cut, openai_chat_tools
from lib.costs import OPENAI_CACHE_OPTIONS_MODELS
from lib.providers.base import Capabilities, ProviderOptions, Reply
from lib.providers.errors import Refused
from lib.providers.remote import RemoteProvider
from lib.providers.usage import openai_usage

OPENAI_URL = "https://api.openai.com/v1"
# Models with a known price (lib/core/pricing.py), from the installed SDK's list (openai/types/shared/chat_model.py,
# checked 2026-12-06), current ones first; the pickers say when one shuts down (lib.core.pricing.lifecycle).
OPENAI_MODELS = ("gpt-5.4-mini", "gpt-5.6-luna", "gpt-5.6-terra", "gpt-5.6-sol", "gpt-5.5", "gpt-5.4",
                 "gpt-5.4-nano", "gpt-4.1", "gpt-4o-mini")


def has_cache_options(model: str) -> bool:
    """gpt-5.6 and later take ``prompt_cache_options`` (and bill cache writes); older models reject them."""
    return model.startswith(OPENAI_CACHE_OPTIONS_MODELS)
# What the SDK's typed create() passes to post(): the bearer (API key) header on the request.
BEARER_AUTH: openai.RequestOptions = {"security": {"bearer_auth": True}}


def post_stream(client: openai.OpenAI, path: str, request: dict[str, Any], *, cast_to: type[Any],
                stream_cls: type[openai.Stream[Any]]) -> openai.Stream[Any]:
    """Send ``request``, the exact body we built, through the SDK's low-level ``post``.

    The typed ``create()`` first walks every message through the SDK's parameter transform (at 2,000
    messages, about 190,000 recursive calls: ~450 ms per turn, holding the GIL), only to produce the same
    JSON. ``post`` keeps everything else of the SDK: auth header, retries with backoff, timeouts, error
    types and SSE parsing into typed events. tests/integration/test_providers_wire.py checks that the bytes and
    headers sent are the same as the typed call's.
    """
    return client.post(path, body=request, cast_to=cast_to, options=BEARER_AUTH, stream=True,
                       stream_cls=stream_cls)


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
    cache_options = True  # sends prompt_cache_options to the models that take them (gpt-5.6 and later)

    def _new_client(self) -> openai.OpenAI:
        # Servers that need no key still make the SDK want one; the placeholder is never shown.
        return openai.OpenAI(api_key=self._api_key or "not-needed", base_url=self.base_url, timeout=self.timeout,
                             max_retries=self.max_retries)

    def build_request(self, messages: Sequence[Message], *, model: str, max_tokens: int,
                      options: ProviderOptions) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": model,
            "messages": [{k: m[k] for k in WIRE_KEYS if m.get(k) is not None} for m in messages],
        }
        if options.tools:  # offered, never called: the lab shows what the definitions cost
            request.update(tools=openai_chat_tools(options.tools), tool_choice="none")
        request.update({self.max_tokens_field: max_tokens, "stream": True, "stream_options": {"include_usage": True}})
        if self.cache_options and has_cache_options(model):
            # Chat Completions accepts only the 30-minute TTL and no comparison for diagnostics (openai 3.57,
            # chat/completion_create_params.py); the Responses API offers both.
            request["prompt_cache_options"] = {"mode": "implicit", "ttl": "30m"}
            if options.prompt_cache_key:
                request["prompt_cache_key"] = options.prompt_cache_key
        return request

    def open_stream(self, request: dict[str, Any]) -> Iterable[Any]:
        return post_stream(self.client, "/chat/completions", request, cast_to=ChatCompletion,
                           stream_cls=openai.Stream[ChatCompletionChunk])

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
    cache_options = False  # local servers have no prompt_cache_options

    @property
    def hint(self) -> str:
        return f"Needs a server at {self.base_url}; set OPENAI_COMPATIBLE_BASE_URL to change it."
