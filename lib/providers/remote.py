"""What the SDK-backed providers share: key, base URL, timeout and retries, one lazily built client."""

from __future__ import annotations

import socket
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from lib.core import register_secrets
from lib.providers.base import Provider
from lib.providers.errors import MalformedStream, MissingKeyError, ProviderError
from lib.providers.sdk_errors import TRANSLATABLE, translate

T = TypeVar("T")


class RemoteProvider(Provider):
    default_base_url = ""
    translatable_errors = TRANSLATABLE

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None, timeout: float = 60.0,
                 max_retries: int = 2) -> None:
        super().__init__(api_key=api_key)
        # A key passed in directly (not from Settings) must be masked too when an error quotes it.
        register_secrets([api_key])
        self.base_url = base_url or self.default_base_url
        self.timeout = timeout
        self.max_retries = max_retries  # the SDK's own retry with backoff; no hand-written loop
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The SDK client, built on first use; MissingKeyError before anything is sent without a key."""
        self.ensure_ready()
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def ensure_ready(self) -> None:
        if not self.configured:
            raise MissingKeyError(self.label, str(self.env_var))

    @abstractmethod
    def _new_client(self) -> Any:
        """The SDK client for this base URL, key, timeout and retries."""

    def translate_error(self, exc: Exception) -> ProviderError:
        return translate(exc, provider=self.label, base_url=self.base_url, env_var=self.env_var,
                         timeout=self.timeout)

    def empty_stream_error(self, stream: Any) -> ProviderError:
        response = getattr(stream, "response", None)  # the SDKs' streams keep the HTTP response
        kind = response.headers.get("content-type") if response is not None else None
        got = f"got {kind.split(';')[0].strip()}" if kind else "got no content type"
        return MalformedStream(
            f"{self.label} at {self.base_url} answered without a reply ({got}: no text, no finish reason, no "
            f"usage). Is the base URL right? It must point at the API itself (often ending in /v1), not at a web "
            "page or a proxy's login page.", provider=self.label)

    def abort_stream(self, stream: Any) -> None:
        """Shut the stream's socket down, which wakes a worker blocked reading it (closing it would not)."""
        response = getattr(stream, "response", None)  # the SDKs' streams keep the HTTP response
        network = getattr(response, "extensions", {}).get("network_stream") if response is not None else None
        sock = network.get_extra_info("socket") if network is not None else None
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)  # the worker then reads the end of the stream and checks the guard

    def call(self, request: Callable[[], T]) -> T:
        """Run one non-streaming SDK call (a count, creating a conversation) with the same error mapping."""
        try:
            return request()
        except self.translatable_errors as exc:
            raise self.translate_error(exc) from exc
