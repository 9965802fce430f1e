"""Token usage as a provider reported it: the data model every layer above shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Anthropic caches for 5 minutes or 1 hour; OpenAI (gpt-5.6 and later) for at least 30 minutes or 12 hours.
CacheTTL = Literal["5m", "1h", "30m", "12h"]


@dataclass(frozen=True)
class Usage:
    """Token usage as the provider reported it, read as four numbers with one meaning.

    Every provider's usage is the same four numbers: uncached input, cache reads, cache writes (split by
    TTL where the provider says so) and output. The input of a request is always the sum of the first
    three (``total_input``). The raw ``input_tokens`` keeps the provider's own meaning, which differs:
    OpenAI's ``prompt_tokens``/``input_tokens`` already include cached tokens, Anthropic's ``input_tokens``
    exclude cache reads and writes; ``cache_in_input`` records which, so readers never mix the two.

    ``cache_write_5m``/``cache_write_1h`` (Anthropic) and ``cache_write_30m``/``cache_write_12h`` (OpenAI,
    gpt-5.6 and later) split the writes by TTL. ``cache_reported`` is False when the server sent no cache
    figure at all (a local server): then the cache figures read "not reported", never 0% cached.
    ``simulated``: the cache figures come from lib.costs.cache_model (the offline model), not from a provider.
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
    diagnostics: str | None = None  # the provider's cache diagnostics, as JSON text
    cache_write_30m: int | None = None
    cache_write_12h: int | None = None
    cache_reported: bool = True
    cache_miss: str | None = None  # why the cache missed, in words, from the provider's diagnostics
    explicit_cache_tokens: int = 0
    explicit_cache_hours: float = 0.0
    reasoning_tokens: int | None = None

    @property
    def prompt_total(self) -> int | None:
        """The whole input of the request: uncached + cache reads + cache writes (``total_input``)."""
        if self.input_tokens is None:
            return None
        if self.cache_in_input:
            return self.input_tokens
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_input(self) -> int | None:
        return self.prompt_total

    @property
    def uncached_input(self) -> int | None:
        """Input tokens billed at the full input price (neither read from nor written to a cache)."""
        if self.input_tokens is None:
            return None
        if self.cache_in_input:
            return max(0, self.input_tokens - self.cache_read_tokens - self.cache_write_tokens)
        return self.input_tokens

    @property
    def write_split(self) -> tuple[tuple[str, int], ...]:
        """The cache writes by TTL, as the provider split them (("5m", 5), ("1h", 2)); () when it did not."""
        pairs = (("5m", self.cache_write_5m), ("1h", self.cache_write_1h), ("30m", self.cache_write_30m),
                 ("12h", self.cache_write_12h))
        return tuple((ttl, n) for ttl, n in pairs if n)

    @property
    def source(self) -> str:
        """Where the cache figures come from: "simulated" or "provider-reported"."""
        return "simulated" if self.simulated else "provider-reported"
