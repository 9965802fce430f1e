"""Provider failures as typed errors whose message says what to do. The UI shows them as they are."""

from __future__ import annotations

from lib.core import HistoryLabError, mask_secrets


class ProviderError(HistoryLabError, RuntimeError):
    """Base class: ``provider`` is the provider name, ``status`` the HTTP status when there was one.

    The message is masked when the error is made, because providers quote keys back (a 401 body may
    contain the key that was refused), and the message is shown, logged and stored.
    """

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        super().__init__(mask_secrets(message))
        self.provider = provider
        self.status = status


class MissingKeyError(ProviderError):
    """No API key configured for a provider that needs one."""

    def __init__(self, provider: str, env_var: str) -> None:
        super().__init__(
            f"No API key for {provider}. Set {env_var} in your environment or add {env_var} to "
            ".streamlit/secrets.toml, then restart the app. Or pick the offline model.",
            provider=provider,
        )
        self.env_var = env_var


class AuthenticationFailed(ProviderError):
    """401 or 403: the key is wrong, revoked, or lacks access."""


class RateLimited(ProviderError):
    """429: too many requests or tokens per minute, or no credit left."""


class ProviderServerError(ProviderError):
    """5xx: the provider failed; usually temporary."""


class ProviderTimeout(ProviderError):
    """No complete answer within the timeout."""


class ProviderUnreachable(ProviderError):
    """Connection refused or DNS failure: nothing is listening at the base URL."""


class BadRequest(ProviderError):
    """400, 404 or 422: the API rejected the request (unknown model, too many tokens, ...)."""


class MalformedStream(ProviderError):
    """The response or stream could not be parsed."""


class ResponseFailed(ProviderError):
    """The server accepted the request but reported failure mid-stream (``response.failed``, an error event)."""

    def __init__(self, message: str, *, provider: str = "", reason: str = "", code: str | None = None) -> None:
        super().__init__(message, provider=provider)
        self.reason = mask_secrets(reason)
        self.code = code


class Refused(ProviderError):
    """The model refused to answer; ``reason`` is the refusal text or stop reason the server gave."""

    def __init__(self, message: str, *, provider: str = "", reason: str = "") -> None:
        super().__init__(message, provider=provider)
        self.reason = mask_secrets(reason)


class ServerStateLost(BadRequest):
    """The server no longer has the state a request chained on (an expired or unknown response or
    conversation id). Re-send the whole history without it."""


class CountUnavailable(ProviderError):
    """This provider has no token-count endpoint; use a tiktoken count, labelled as approximate."""
