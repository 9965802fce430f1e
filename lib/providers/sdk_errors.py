"""Map openai and anthropic SDK exceptions to ProviderError subclasses (both SDKs share one shape)."""

from __future__ import annotations

import json

import anthropic
import openai

from lib.providers.errors import (
    AuthenticationFailed,
    BadRequest,
    MalformedStream,
    ProviderError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
)

_TIMEOUT = (openai.APITimeoutError, anthropic.APITimeoutError)
_CONNECTION = (openai.APIConnectionError, anthropic.APIConnectionError)
_STATUS = (openai.APIStatusError, anthropic.APIStatusError)
_API = (openai.APIError, anthropic.APIError)


def translate(exc: Exception, *, provider: str, base_url: str, env_var: str | None, timeout: float) -> ProviderError:
    """The ProviderError for an SDK exception; ``base_url`` and ``env_var`` make the message actionable."""
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
    if isinstance(exc, json.JSONDecodeError | ValueError | KeyError | TypeError | AttributeError):
        return MalformedStream(
            f"{provider} sent a response that could not be parsed ({type(exc).__name__}: {str(exc)[:120]}). "
            "Check that the base URL points at a compatible API.", provider=provider)
    if isinstance(exc, _API):
        return ProviderError(f"{provider} reported an error: {_detail(exc)}", provider=provider)
    return ProviderError(f"{provider} failed unexpectedly ({type(exc).__name__}: {str(exc)[:160]}).",
                         provider=provider)


def _from_status(exc: openai.APIStatusError | anthropic.APIStatusError, *, provider: str,
                 env_var: str | None) -> ProviderError:
    status = exc.status_code
    detail = _detail(exc)
    if status in (401, 403):
        where = f"Check {env_var}" if env_var else "Check the API key"
        return AuthenticationFailed(f"{provider} rejected the API key (HTTP {status}: {detail}). {where}.",
                                    provider=provider, status=status)
    if status == 429:
        retry = exc.response.headers.get("retry-after") if exc.response is not None else None
        wait = f" Retry after {retry} s." if retry else " Wait a moment and try again."
        return RateLimited(f"{provider} is rate limiting requests (HTTP 429: {detail}).{wait}",
                           provider=provider, status=status)
    if status >= 500:
        return ProviderServerError(
            f"{provider} had a server error (HTTP {status}: {detail}). It is usually temporary: try again.",
            provider=provider, status=status)
    return BadRequest(f"{provider} rejected the request (HTTP {status}: {detail}). Check the model name "
                      "and the size of the conversation.", provider=provider, status=status)


def _detail(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:200]
    message = getattr(exc, "message", None) or str(exc)
    return str(message)[:200]
