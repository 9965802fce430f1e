"""The prompt caches of the providers, as data: one ``CacheProfile`` each, with its rules, prices and sources.

``lib.costs.cache_model`` runs requests through a profile; the profiles themselves are data, never code
branches, so a new provider's cache is one more entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lib.core import Price


@dataclass(frozen=True)
class CacheProfile:
    """How one provider's prompt cache decides hits, and what it charges."""

    id: str
    label: str
    min_prefix: int  # a prefix shorter than this is never cached
    granularity: int  # cached tokens are min_prefix + a multiple of this (1 = exact)
    ttl_seconds: float  # an entry unused for this long is gone
    write_multiplier: float  # x input price, for tokens written to the cache
    read_multiplier: float | None  # x input price for cache reads; None = the model's cached-input price
    # "every": every prefix processed is cached (OpenAI). "breakpoints": only the prefixes ending at a
    # cache_control breakpoint (Anthropic): the system prompt and the last message of the payload.
    store: Literal["every", "breakpoints"] = "every"
    lookback: int | None = None  # breakpoints: how many messages before a breakpoint a hit may end
    min_prefix_by_model: tuple[tuple[str, int], ...] = ()  # (model name prefix, minimum), longest wins
    source: str = ""
    system_breakpoint: bool = True  # breakpoints: the system prompt's end is a breakpoint too (Anthropic's)
    tools_first: bool = False  # tool definitions before the system prompt (Anthropic) or after it (OpenAI)

    def min_prefix_for(self, model: str) -> int:
        matches = [(len(name), tokens) for name, tokens in self.min_prefix_by_model if model.startswith(name)]
        return max(matches)[1] if matches else self.min_prefix

    def read_rate(self, price: Price) -> float:
        if self.read_multiplier is not None:
            return price.input * self.read_multiplier
        return price.input if price.cache_read is None else price.cache_read

    def write_rate(self, price: Price) -> float:
        return price.input * self.write_multiplier


_OPENAI_SOURCE = "https://developers.openai.com/docs/guides/prompt-caching (checked 2026-11-25)"
_OPENAI_56_SOURCE = ("openai 3.57 PromptCacheOptions docstring (gpt-5.6 and later: one implicit breakpoint, up to 4 "
                     "written per request, the latest 80 considered with no lookback limit, ttl 30m by default or "
                     "12h) and the gpt-5.6 model pages (writes 1.25x input), checked 2026-12-06")
_ANTHROPIC_SOURCE = "https://platform.claude.com/docs/en/build-with-claude/prompt-caching (checked 2026-12-06)"
# The minimum cacheable prefix of every Anthropic model in lib.core.pricing, longest name first where they share a
# prefix. Read on 2026-12-06 from mirrors of the prompt-caching page (docs.orq.ai, and the SDK issue
# anthropics/anthropic-sdk-python#1194 quoting it) for the 4.x models, and from a 2026 write-up of the page
# (dev.to/creeta, "Claude's prompt cache fails silently below 1,024 tokens") for Opus 4.7, Opus 4.8, Sonnet 5 and
# Opus 5. For Fable 5 the sources disagree (512 there, 2,048 in fableguide.com's cookbook): the larger is used,
# so the simulation never claims a hit the provider would not give. The 5.5 models have no published figure we
# could find: 1,024, the floor shared by most models, is assumed and labelled so in ANTHROPIC_MIN_PREFIX_NOTES.
ANTHROPIC_MIN_PREFIX: tuple[tuple[str, int], ...] = (
    ("claude-fable-5", 2048), ("claude-opus-5-5", 1024), ("claude-sonnet-5-5", 1024), ("claude-haiku-5-5", 1024),
    ("claude-opus-5", 512), ("claude-sonnet-5", 1024), ("claude-opus-4-8", 1024), ("claude-opus-4-7", 2048),
    ("claude-opus-4-6", 4096), ("claude-sonnet-4-6", 2048), ("claude-haiku-4-5", 4096), ("claude-opus-4-5", 4096),
    ("claude-sonnet-4-5", 1024), ("claude-3-haiku", 2048), ("claude-3-5-haiku", 2048),
)
ANTHROPIC_MIN_PREFIX_NOTES = {
    "claude-fable-5": "sources disagree (512 or 2,048); the larger is used",
    "claude-opus-5-5": "no published figure found; 1,024 assumed",
    "claude-sonnet-5-5": "no published figure found; 1,024 assumed",
    "claude-haiku-5-5": "no published figure found; 1,024 assumed",
}
# Model name prefixes with OpenAI's explicit prompt-cache options (prompt_cache_options, billed writes).
OPENAI_CACHE_OPTIONS_MODELS = ("gpt-5.6", "gpt-6")
_GEMINI_SOURCE = "https://ai.google.dev/gemini-api/docs/caching (checked 2026-12-06; lifetime assumed)"
_GEMINI_MINIMUMS = (("gemini-2.5", 2048),)
PROFILES: dict[str, CacheProfile] = {
    profile.id: profile
    for profile in (
        CacheProfile("openai", "OpenAI automatic (in-memory, ~5-10 min)", 1024, 128, 5 * 60, 1.0, None,
                     source=_OPENAI_SOURCE),
        CacheProfile("openai-24h", "OpenAI automatic (extended, 24 h)", 1024, 128, 24 * 3600, 1.0, None,
                     source=_OPENAI_SOURCE),
        # gpt-5.6 and later: every request reads the longest live breakpoint before it, however far back, and
        # writes cost 1.25x input. Where OpenAI puts its one implicit breakpoint is not documented: the end of
        # the prompt is assumed (the profile's label and the README say so).
        CacheProfile("openai-30m", "OpenAI prompt_cache_options (gpt-5.6+, ttl 30m)", 1024, 1, 30 * 60, 1.25, None,
                     store="breakpoints", lookback=None, system_breakpoint=False, source=_OPENAI_56_SOURCE),
        CacheProfile("openai-12h", "OpenAI prompt_cache_options (gpt-5.6+, ttl 12h)", 1024, 1, 12 * 3600, 1.25,
                     None, store="breakpoints", lookback=None, system_breakpoint=False, source=_OPENAI_56_SOURCE),
        CacheProfile("anthropic-5m", "Anthropic cache_control (5 min)", 1024, 1, 5 * 60, 1.25, 0.1,
                     store="breakpoints", lookback=20, min_prefix_by_model=ANTHROPIC_MIN_PREFIX,
                     source=_ANTHROPIC_SOURCE, tools_first=True),
        CacheProfile("anthropic-1h", "Anthropic cache_control (1 hour)", 1024, 1, 3600, 2.0, 0.1,
                     store="breakpoints", lookback=20, min_prefix_by_model=ANTHROPIC_MIN_PREFIX,
                     source=_ANTHROPIC_SOURCE, tools_first=True),
        CacheProfile("gemini", "Gemini implicit (automatic, lifetime ~5 min assumed)", 4096, 1, 5 * 60, 1.0, None,
                     min_prefix_by_model=_GEMINI_MINIMUMS, source=_GEMINI_SOURCE),
    )
}


def profile_for_model(model: str, *, ttl: str | None = None) -> str:
    """The cache profile a model's provider uses: Claude models Anthropic's (5-minute unless ``ttl`` is
    "1h"), gpt-5.6 and later OpenAI's prompt_cache_options (30 minutes unless ``ttl`` is "12h"), other
    models OpenAI's automatic cache, and Gemini models Gemini's implicit cache."""
    if model.startswith("claude"):
        return "anthropic-1h" if ttl == "1h" else "anthropic-5m"
    if model.startswith(OPENAI_CACHE_OPTIONS_MODELS):
        return "openai-12h" if ttl == "12h" else "openai-30m"
    return "gemini" if model.startswith("gemini") else "openai"


def get_profile(profile: CacheProfile | str | None) -> CacheProfile | None:
    """A profile by id (None = caching off)."""
    if profile is None or isinstance(profile, CacheProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"Unknown cache profile {profile!r}; choose one of {', '.join(PROFILES)}") from None
