"""OpenAI Chat Completions, and the same adapter for OpenAI-compatible local servers.

The whole (trimmed) history goes in ``messages`` on every call: the model keeps nothing between requests.
OpenAI caches a repeated prefix automatically (no switch), and reports the cached tokens in the usage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletion

from lib.core import Message, as_mapping, as_wire, mask_then_cut, openai_chat_tools
from lib.costs import OPENAI_CACHE_OPTIONS_MODELS
from lib.providers.base import Capabilities, ProviderOptions, Reply
from lib.providers.errors import (
    CountUnavailable,
    ProviderError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnreachable,
    Refused,
)
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
            "messages": as_wire(messages),
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
        # Chunks as the parsed JSON the server sent (Stream[object]), not typed ChatCompletionChunk objects: the
        # SDK builds those field by field, about 0.1 ms per chunk, 0.6 ms of a 10-message turn for six chunks.
        # The SDK still decodes the stream and raises its error types, an error event included.
        return post_stream(self.client, "/chat/completions", request, cast_to=ChatCompletion,
                           stream_cls=openai.Stream[object])

    def handle_event(self, event: Any, reply: Reply) -> str:
        chunk = as_mapping(event)
        usage = chunk.get("usage")
        if usage is not None:  # the last chunk, with no choices, carries the usage
            reply.usage = openai_usage(usage, chunk.get("prompt_cache_diagnostics"))
        if isinstance(chunk.get("id"), str) and chunk["id"] and reply.response_id is None:
            reply.response_id = chunk["id"]
        text = []
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            choice = as_mapping(choice)
            if isinstance(choice.get("finish_reason"), str) and choice["finish_reason"]:
                reply.stop_reason = choice["finish_reason"]
            delta = as_mapping(choice.get("delta"))
            refusal, content = delta.get("refusal"), delta.get("content")
            if isinstance(refusal, str) and refusal:
                reply.refusal = (reply.refusal or "") + refusal
            if isinstance(content, str) and content:
                text.append(content)
        return "".join(text)

    def finish(self, reply: Reply) -> None:
        if reply.refusal and not reply.text:
            raise Refused(f"{self.label} refused to answer: {mask_then_cut(reply.refusal, 300)}", provider=self.label,
                          reason=reply.refusal)


class OpenAICompatibleProvider(OpenAIChatProvider):
    name = "openai-compatible"
    label = "OpenAI-compatible (Ollama, vLLM, LM Studio, llama.cpp)"
    default_model = "llama3.2"
    models = ("llama3.2", "qwen2.5", "mistral", "gemma3", "mistral-nemo")
    env_var = None  # the key is optional
    # The count is llama.cpp's server tokenizer: the model's own, with its own chat template (on click only).
    capabilities = Capabilities(count_endpoint=True, count_source="server")
    max_tokens_field = "max_tokens"
    cache_options = False  # local servers have no prompt_cache_options

    @property
    def hint(self) -> str:
        return f"Needs a server at {self.base_url}; set OPENAI_COMPATIBLE_BASE_URL to change it."

    @property
    def server_root(self) -> str:
        """The server itself: llama.cpp serves /tokenize and /apply-template beside /v1, not under it."""
        root = self.base_url.rstrip("/")
        return root[: -len("/v1")] if root.endswith("/v1") else root

    def count_tokens(self, messages: Sequence[Message], model: str, *,
                     options: ProviderOptions | None = None) -> int:
        """The model's own count of this payload, from a llama.cpp server: ``/apply-template`` renders the
        messages (and tools) with the model's chat template, ``/tokenize`` counts that prompt with the model's
        tokenizer, special tokens included. Servers without these endpoints (Ollama, vLLM) say so."""
        request = self.build_request(messages, model=model, max_tokens=1, options=options or ProviderOptions())
        body: dict[str, Any] = {k: request[k] for k in ("messages", "tools", "tool_choice") if k in request}
        prompt = self._post("/apply-template", body).get("prompt")
        if not isinstance(prompt, str):
            raise CountUnavailable(f"{self.server_root}/apply-template answered without a prompt; this is not a "
                                   "llama.cpp server.", provider=self.label)
        tokens = self._post("/tokenize", {"content": prompt, "add_special": True}).get("tokens")
        if not isinstance(tokens, list):
            raise CountUnavailable(f"{self.server_root}/tokenize answered without tokens; this is not a llama.cpp "
                                   "server.", provider=self.label)
        return len(tokens)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.server_root + path
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            response = httpx2.post(url, json=body, headers=headers, timeout=self.timeout)
        except httpx2.TimeoutException as exc:
            raise ProviderTimeout(f"{url} did not answer within {self.timeout:g} s.", provider=self.label) from exc
        except httpx2.HTTPError as exc:
            raise ProviderUnreachable(f"Nothing answers at {url} ({type(exc).__name__}). Start the server, or set "
                                      "OPENAI_COMPATIBLE_BASE_URL to its address.", provider=self.label) from exc
        if response.status_code == 404:
            raise CountUnavailable(f"The server at {self.server_root} has no {path} endpoint: counting with the "
                                   "server's tokenizer needs llama.cpp's server (llama-server); Ollama, vLLM and LM "
                                   "Studio do not offer it. The tiktoken count stays, labelled approximate.",
                                   provider=self.label, status=404)
        if response.status_code >= 400:
            error = ProviderServerError if response.status_code >= 500 else ProviderError
            raise error(f"{url} answered HTTP {response.status_code}: {response.text[:200]}", provider=self.label,
                        status=response.status_code)
        try:
            data = response.json()
        except ValueError as exc:
            raise CountUnavailable(f"{url} did not answer JSON; this is not a llama.cpp server.",
                                   provider=self.label) from exc
        return data if isinstance(data, dict) else {}
