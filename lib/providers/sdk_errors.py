"""Map openai/anthropic SDK, httpx2 and JSON exceptions to ProviderError subclasses.

Only these are translated (``TRANSLATABLE``). Anything else raised while streaming is a bug in an adapter
and propagates, so the UI boundary logs it with its traceback instead of blaming the base URL.
"""

from __future__ import annotations

import json

import anthropic
import httpx2
import openai

from lib.core import mask_then_cut
from lib.providers.errors import (
    AuthenticationFailed,
    BadRequest,
    MalformedStream,
    ProviderError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
    ServerStateLost,
)

TRANSLATABLE: tuple[type[Exception], ...] = (openai.OpenAIError, anthropic.AnthropicError, httpx2.HTTPError,
                                              httpx2.StreamError, json.JSONDecodeError)
_TIMEOUT = (openai.APITimeoutError, anthropic.APITimeoutError, httpx2.TimeoutException)
_CONNECTION = (openai.APIConnectionError, anthropic.APIConnectionError, httpx2.TransportError)
_STATUS = (openai.APIStatusError, anthropic.APIStatusError)
# How much of a provider's own message is quoted in ours: enough to say what went wrong, not a whole page.
DETAIL_CHARS = 200
# Error codes meaning the server forgot the state a request chained on.
STATE_LOST_CODES = ("previous_response_not_found",)


def translate(exc: Exception, *, provider: str, base_url: str, env_var: str | None, timeout: float) -> ProviderError:
    """The ProviderError for a translatable exception; ``base_url`` and ``env_var`` make it actionable."""
    if isinstance(exc, _TIMEOUT):
        return ProviderTimeout(
            f"{provider} did not answer within {timeout:g} s. Try again, or raise PROVIDER_TIMEOUT.",
            provider=provider)
    if isinstance(exc, _CONNECTION):
        hint = " Is Ollama (or your server) running?" if "localhost" in base_url or "127.0.0.1" in base_url else ""
        return ProviderUnreachable(
            f"Cannot connect to {provider} at {base_url}.{hint} Check the base URL and your network.",
            provider=provider)
    if isinstance(exc, _STATUS):
        return _from_status(exc, provider=provider, env_var=env_var)
    if isinstance(exc, json.JSONDecodeError | httpx2.DecodingError | httpx2.StreamError):
        return MalformedStream(
            f"{provider} sent a response that could not be parsed "
            f"({type(exc).__name__}: {mask_then_cut(str(exc), 120)}). "
            "Check that the base URL points at a compatible API.", provider=provider)
    return ProviderError(f"{provider} reported an error: {_detail(exc)}", provider=provider)


def _from_status(exc: openai.APIStatusError | anthropic.APIStatusError, *, provider: str,
                 env_var: str | None) -> ProviderError:
    retry = exc.response.headers.get("retry-after") if exc.response is not None else None
    return status_error(exc.status_code, _detail(exc), provider=provider, env_var=env_var, retry_after=retry,
                        code=_code(exc))


def status_error(status: int, detail: str, *, provider: str, env_var: str | None, retry_after: str | None = None,
                 code: str | None = None) -> ProviderError:
    """The ProviderError for an HTTP error status; ``detail`` is the provider's message, already masked and cut.

    Shared by every SDK's mapping (the Gemini adapter calls it with google-genai's ``APIError`` fields)."""
    if status in (401, 403):
        where = f"Check {env_var}" if env_var else "Check the API key"
        return AuthenticationFailed(f"{provider} rejected the API key (HTTP {status}: {detail}). {where}.",
                                    provider=provider, status=status)
    if status == 429:
        wait = f" Retry after {retry_after} s." if retry_after else " Wait a moment and try again."
        return RateLimited(f"{provider} is rate limiting requests (HTTP 429: {detail}).{wait}",
                           provider=provider, status=status)
    if status >= 500:
        return ProviderServerError(
            f"{provider} had a server error (HTTP {status}: {detail}). It is usually temporary: try again.",
            provider=provider, status=status)
    if code in STATE_LOST_CODES:
        return ServerStateLost(f"{provider} no longer holds the earlier conversation (HTTP {status}: {detail}). "
                               "Send the whole history again.", provider=provider, status=status)
    return BadRequest(f"{provider} rejected the request (HTTP {status}: {detail}). Check the model name "
                      "and the size of the conversation.", provider=provider, status=status)


def _error_body(exc: Exception) -> dict[str, object]:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return error
    return {}


def _code(exc: Exception) -> str | None:
    code = _error_body(exc).get("code")
    return code if isinstance(code, str) else None


def _detail(exc: Exception) -> str:
    message = _error_body(exc).get("message")
    return mask_then_cut(str(message or getattr(exc, "message", None) or exc), DETAIL_CHARS)
