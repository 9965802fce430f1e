"""The provider contract: ``stream(messages, model=..., max_tokens=...) -> Reply``.

A Reply is iterated once for its text deltas; afterwards it holds ``text``, ``usage``, ``timings`` and
``response_id``. ``request`` (the exact JSON body, never a key) is there from the start, so a payload
view can show it even when the call fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.providers.errors import ProviderError

Message = Mapping[str, Any]


@dataclass(frozen=True)
class Usage:
    """Token usage as the provider reported it.

    OpenAI's prompt_tokens already include cached tokens; Anthropic's input_tokens exclude cache reads
    and writes. ``cache_in_input`` records which, so ``prompt_total`` is the full prompt size for both.
    """

    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_in_input: bool = True

    @property
    def prompt_total(self) -> int | None:
        if self.input_tokens is None:
            return None
        if self.cache_in_input:
            return self.input_tokens
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


@dataclass
class Timings:
    """Seconds from the call to the first text delta, and to the end of the stream."""

    first_token_s: float | None = None
    total_s: float | None = None


@dataclass(frozen=True)
class ProviderInfo:
    """What the sidebar shows about a provider."""

    name: str
    label: str
    default_model: str
    models: tuple[str, ...]
    configured: bool
    hint: str
    env_var: str | None = None


class Reply:
    """One streamed answer. ``produce(reply)`` yields deltas and may set usage and response_id."""

    def __init__(
        self,
        request: dict[str, Any],
        produce: Callable[[Reply], Iterator[str]],
        translate: Callable[[Exception], ProviderError],
    ) -> None:
        self.request = request
        self.text = ""
        self.usage: Usage | None = None
        self.timings = Timings()
        self.response_id: str | None = None
        self._produce = produce
        self._translate = translate
        self._consumed = False

    def __iter__(self) -> Iterator[str]:
        if self._consumed:
            raise RuntimeError("A Reply can be iterated only once")
        self._consumed = True
        start = time.perf_counter()
        chunks: list[str] = []
        try:
            for delta in self._produce(self):
                if not delta:
                    continue
                if self.timings.first_token_s is None:
                    self.timings.first_token_s = time.perf_counter() - start
                chunks.append(delta)
                self.text = "".join(chunks)
                yield delta
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a typed, actionable error
            raise self._translate(exc) from exc
        finally:
            self.timings.total_s = time.perf_counter() - start


class Provider:
    """Shared attributes; adapters implement ``stream``."""

    name: str = ""
    label: str = ""
    default_model: str = ""
    models: tuple[str, ...] = ()
    env_var: str | None = None
    server_side_history = False

    def __init__(self, *, api_key: str | None = None) -> None:
        self._api_key = api_key

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(name={self.name!r})"

    @property
    def configured(self) -> bool:
        return self.env_var is None or bool(self._api_key)

    @property
    def hint(self) -> str:
        """What to set to use this provider (shown when it is not configured)."""
        if self.env_var:
            return f"Set {self.env_var} in the environment or in .streamlit/secrets.toml."
        return "No key needed."

    @property
    def info(self) -> ProviderInfo:
        return ProviderInfo(self.name, self.label, self.default_model, self.models, self.configured, self.hint,
                            self.env_var)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        max_tokens: int = 1024,
        previous_response_id: str | None = None,
        dropped: int = 0,
    ) -> Reply:
        raise NotImplementedError


def split_system(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt(s) joined, and the other messages as wire dicts."""
    system = [str(m.get("content") or "") for m in messages if m.get("role") in ("system", "developer")]
    rest = [dict(m) for m in messages if m.get("role") not in ("system", "developer")]
    return "\n\n".join(s for s in system if s), rest
