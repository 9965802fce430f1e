"""Providers: one interface over the offline model, OpenAI, OpenAI-compatible servers and Anthropic.

reply = get_provider("openai").stream(messages, model="gpt-5-mini", options=ProviderOptions())
for delta in reply: print(delta, end="")
reply.text, reply.usage, reply.timings, reply.request, reply.response_id
"""

from __future__ import annotations

from lib.providers.anthropic_messages import AnthropicProvider
from lib.providers.base import Capabilities, Provider, ProviderInfo, ProviderOptions, Reply, ServerContext, Timings
from lib.providers.errors import (
    AuthenticationFailed,
    BadRequest,
    CountUnavailable,
    MalformedStream,
    MissingKeyError,
    ProviderError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
    Refused,
    ResponseFailed,
    ServerStateLost,
)
from lib.providers.gemini import GeminiProvider
from lib.providers.guard import StreamGuard, StreamStopped, StreamTimeLimit
from lib.providers.offline import (
    DEFAULT_REFERENCE_MODEL,
    FORGOT_PHRASE,
    FORGOTTEN_ANSWER,
    REPORT_LABEL,
    WHOLE_PHRASE,
    ContextLengthExceeded,
    InvalidPayload,
    OfflineProvider,
    arithmetic,
    cache_profile_id,
    compose_reply,
    key_words,
    payload_tokens,
    reset_simulated_caches,
    simulate_cache,
    tool_pairing_problem,
)
from lib.providers.openai_chat import OpenAIChatProvider
from lib.providers.openai_responses import OpenAIResponsesProvider
from lib.providers.registry import PROVIDER_NAMES, default_provider_name, get_provider, list_providers, request_body
from lib.providers.sdk_errors import DETAIL_CHARS
from lib.providers.usage import anthropic_usage, openai_usage

__all__ = [
    "DEFAULT_REFERENCE_MODEL", "DETAIL_CHARS", "FORGOTTEN_ANSWER", "FORGOT_PHRASE", "PROVIDER_NAMES",
    "REPORT_LABEL", "WHOLE_PHRASE", "AnthropicProvider", "AuthenticationFailed", "BadRequest", "Capabilities",
    "ContextLengthExceeded", "CountUnavailable", "InvalidPayload", "MalformedStream", "MissingKeyError",
    "OfflineProvider", "OpenAIChatProvider", "OpenAIResponsesProvider", "Provider", "ProviderError",
    "ProviderInfo", "ProviderOptions", "ProviderServerError", "ProviderTimeout", "ProviderUnreachable",
    "RateLimited", "Refused", "Reply", "ResponseFailed", "ServerContext", "ServerStateLost", "StreamGuard",
    "StreamStopped", "StreamTimeLimit", "Timings",
    "anthropic_usage", "cache_profile_id", "compose_reply", "default_provider_name", "get_provider",
    "key_words", "list_providers", "openai_usage", "payload_tokens", "request_body", "reset_simulated_caches",
    "simulate_cache", "tool_pairing_problem", "GeminiProvider",
    "arithmetic",
]
