"""Providers: one interface over the offline model, OpenAI, OpenAI-compatible servers and Anthropic.

    reply = get_provider("openai").stream(messages, model="gpt-5-mini", options=ProviderOptions())
    for delta in reply: print(delta, end="")
    reply.text, reply.usage, reply.timings, reply.request, reply.response_id
"""

from lib.providers.base import (
    Capabilities,
    Provider,
    ProviderInfo,
    ProviderOptions,
    Reply,
    ServerContext,
    Timings,
    Usage,
)
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
from lib.providers.offline import FORGOT_PHRASE, WHOLE_PHRASE
from lib.providers.registry import (
    PROVIDER_NAMES,
    default_provider_name,
    get_provider,
    list_providers,
    request_body,
)

__all__ = [
    "FORGOT_PHRASE",
    "PROVIDER_NAMES",
    "WHOLE_PHRASE",
    "AuthenticationFailed",
    "BadRequest",
    "Capabilities",
    "CountUnavailable",
    "MalformedStream",
    "MissingKeyError",
    "Provider",
    "ProviderError",
    "ProviderInfo",
    "ProviderOptions",
    "ProviderServerError",
    "ProviderTimeout",
    "ProviderUnreachable",
    "RateLimited",
    "Refused",
    "Reply",
    "ResponseFailed",
    "ServerContext",
    "ServerStateLost",
    "Timings",
    "Usage",
    "default_provider_name",
    "get_provider",
    "list_providers",
    "request_body",
]
