"""Token usage as a provider reported it: the data model every layer above shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CacheTTL = Literal["5m", "1h"]


@dataclass(frozen=True)
class Usage:
    """Token usage as the provider reported it.

    OpenAI's input tokens already include cached tokens; Anthropic's exclude cache reads and writes.
    ``cache_in_input`` records which, so ``prompt_total`` is the full prompt size for both.
    ``cache_write_5m``/``cache_write_1h`` split the writes by TTL where the provider says so.
    ``explicit_cache_tokens``/``explicit_cache_hours``: an explicit context cache this request created (Gemini):
    its tokens are billed once when it is created, and per hour of its TTL while it is kept. They are not part
    of the four numbers above (the request then reads them back as cache reads). ``reasoning_tokens``: how many of
    ``output_tokens`` were thinking (billed as output), where the provider says so.
    """

    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_in_input: bool = True
    cache_write_5m: int | None = None
    cache_write_1h: int | None = None
    simulated: bool = False  # the cache figures come from lib.costs.cache_model, not from a provider
    diagnostics: str | None = None  # why a cache missed, as the provider explained it
    explicit_cache_tokens: int = 0
    explicit_cache_hours: float = 0.0
    reasoning_tokens: int | None = None

    @property
    def prompt_total(self) -> int | None:
        if self.input_tokens is None:
            return None
        if self.cache_in_input:
            return self.input_tokens
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def uncached_input(self) -> int | None:
        """Input tokens billed at the full input price (neither read from nor written to a cache)."""
        if self.input_tokens is None:
            return None
        if self.cache_in_input:
            return max(0, self.input_tokens - self.cache_read_tokens - self.cache_write_tokens)
        return self.input_tokens
