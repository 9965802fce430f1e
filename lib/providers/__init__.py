"""Providers: one interface over the offline model, OpenAI, OpenAI-compatible servers and Anthropic.

    reply = get_provider("openai").stream(messages, model="gpt-4o-mini")
    for delta in reply: print(delta, end="")
    reply.text, reply.usage, reply.timings, reply.request
"""

from lib.providers.base import Provider, ProviderInfo, Reply, Timings, Usage
from lib.providers.errors import (
    AuthenticationFailed,
    BadRequest,
    MalformedStream,
    MissingKeyError,
    ProviderError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
)
from lib.providers.offline import FORGOT_PHRASE, WHOLE_PHRASE
from lib.providers.registry import PROVIDER_NAMES, default_provider_name, get_provider, list_providers

__all__ = [
    "FORGOT_PHRASE",
    "PROVIDER_NAMES",
    "WHOLE_PHRASE",
    "AuthenticationFailed",
    "BadRequest",
    "MalformedStream",
    "MissingKeyError",
    "Provider",
    "ProviderError",
    "ProviderInfo",
    "ProviderServerError",
    "ProviderTimeout",
    "ProviderUnreachable",
    "RateLimited",
    "Reply",
    "Timings",
    "Usage",
    "default_provider_name",
    "get_provider",
    "list_providers",
]
