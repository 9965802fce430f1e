"""Build providers by name from Settings; list them for the sidebar."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from lib.core import Message, Settings
from lib.providers.anthropic_messages import AnthropicProvider
from lib.providers.base import Provider, ProviderInfo, ProviderOptions
from lib.providers.gemini import GeminiProvider
from lib.providers.offline import OfflineProvider
from lib.providers.openai_chat import OpenAIChatProvider, OpenAICompatibleProvider
from lib.providers.openai_responses import OpenAIResponsesProvider

PROVIDER_NAMES = ("offline", "openai", "openai-responses", "anthropic", "gemini", "openai-compatible")
_ADAPTERS: dict[str, type[Provider]] = {
    "offline": OfflineProvider, "openai": OpenAIChatProvider, "openai-responses": OpenAIResponsesProvider,
    "anthropic": AnthropicProvider, "gemini": GeminiProvider, "openai-compatible": OpenAICompatibleProvider,
}


def get_provider(name: str, settings: Settings | None = None, **options: Any) -> Provider:
    """A provider by name. ``options`` override settings: api_key, base_url, timeout, max_retries,
    prompt_caching (anthropic: cache_control; gemini: an explicit context cache), delay and reference_model
    (offline)."""
    cfg = settings or Settings.from_env()
    sdk = {"timeout": cfg.provider_timeout, "max_retries": cfg.provider_max_retries}
    if name == "offline":
        return OfflineProvider(delay=options.get("delay", cfg.offline_delay),
                               reference_model=options.get("reference_model", cfg.reference_model))
    if name in ("openai", "openai-responses"):
        cls = OpenAIChatProvider if name == "openai" else OpenAIResponsesProvider
        return cls(**{"api_key": cfg.openai_api_key, "base_url": cfg.openai_base_url, **sdk, **options})
    if name == "openai-compatible":
        return OpenAICompatibleProvider(**{"api_key": cfg.compatible_api_key, "base_url": cfg.compatible_base_url,
                                           **sdk, **options})
    if name == "anthropic":
        return AnthropicProvider(**{"api_key": cfg.anthropic_api_key, "base_url": cfg.anthropic_base_url,
                                    **sdk, **options})
    if name == "gemini":
        return GeminiProvider(**{"api_key": cfg.gemini_api_key, "base_url": cfg.gemini_base_url,
                                 "env_var": cfg.gemini_key_variable, **sdk, **options})
    raise ValueError(f"Unknown provider {name!r}. Choose one of: {', '.join(PROVIDER_NAMES)}.")


def list_providers(settings: Settings | None = None) -> list[ProviderInfo]:
    """Every provider with its default model and whether it is configured (no client is built)."""
    return [get_provider(name, settings).info for name in PROVIDER_NAMES]


def default_provider_name(settings: Settings | None = None) -> str:
    """DEFAULT_PROVIDER when valid, else the offline model, which needs no key."""
    cfg = settings or Settings.from_env()
    return cfg.default_provider if cfg.default_provider in PROVIDER_NAMES else "offline"


def request_body(name: str, messages: Sequence[Message], *, model: str, max_tokens: int,
                 options: ProviderOptions) -> dict[str, Any]:
    """The body provider ``name`` builds for these messages and options: the very ``build_request`` that
    sends a turn, so a body rebuilt from a turn record is the one sent. Needs no key and sends nothing.

    Raises ValueError for an unknown provider name.
    """
    if name not in _ADAPTERS:
        raise ValueError(f"Unknown provider {name!r}. Choose one of: {', '.join(PROVIDER_NAMES)}.")
    adapter = _adapter(name)
    built = adapter.build_request(messages, model=model, max_tokens=max_tokens,
                                  options=adapter.effective_options(options))
    return dict(built)  # the offline model's body is a dict subclass carrying its options


@cache
def _adapter(name: str) -> Provider:
    # No key and no client: build_request never sends, and an adapter's body depends on its arguments alone.
    return _ADAPTERS[name]()
