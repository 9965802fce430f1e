"""Settings from environment variables, or from st.secrets passed in by the app (lib never imports streamlit).

Every numeric setting has a sane range, checked when Settings is built (from the environment or directly):
an absurd value such as ``SESSION_TTL=9223372036854775`` would otherwise fail deep inside Redis, after
part of a write had already run. Errors name the variable to fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.core.errors import HistoryLabError
from lib.core.secrets import register_secrets

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# Limits on turns, so a misbehaving provider cannot starve the server, hold a connection for ever or fill the
# store (the README's "Limits on turns" says why these values):
MAX_CONCURRENT_TURNS = 32  # turns running at once in one API process; beyond it a 503 server_busy
STREAM_TIME_LIMIT = 300.0  # seconds one reply stream may run in all
# The longest reply kept, in characters: about 64k tokens of English, far above a normal reply (max_tokens
# 1024 gives ~4k characters), small enough that storing, counting and drawing it stays quick.
MAX_REPLY_CHARS = 256_000

# field -> (variable, minimum, maximum). A year of TTL is the most any chat history needs; Redis refuses
# EXPIRE values that overflow when added to the current time in milliseconds.
BOUNDS: dict[str, tuple[str, float, float]] = {
    "session_ttl": ("SESSION_TTL", 60, 31_536_000),
    "max_messages": ("SESSION_MAX_MESSAGES", 10, 1_000_000),
    "default_budget": ("TOKEN_BUDGET", 16, 10_000_000),
    "offline_delay": ("OFFLINE_DELAY", 0, 5),
    "provider_timeout": ("PROVIDER_TIMEOUT", 1, 3_600),
    "provider_max_retries": ("PROVIDER_MAX_RETRIES", 0, 10),
    "max_concurrent_turns": ("MAX_CONCURRENT_TURNS", 1, 1_024),
    "stream_time_limit": ("STREAM_TIME_LIMIT", 1, 86_400),
    "max_reply_chars": ("MAX_REPLY_CHARS", 1_000, 10_000_000),
}


class ConfigError(HistoryLabError, ValueError):
    """A setting has a value we cannot use; the message names the variable."""


def _lookup(name: str, env: Mapping[str, str], secrets: Mapping[str, Any]) -> str | None:
    # Environment wins over secrets, so a deployment can override a checked-in secrets.toml.
    value = env.get(name)
    if value in (None, "") and name in secrets:
        value = secrets[name]
    return None if value in (None, "") else str(value)


def _int(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _float(name: str, raw: str | None, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    return value


def _bool(raw: str | None) -> bool:
    return (raw or "").strip().lower() in {"1", "true", "yes", "on"}


def _hosts(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return DEFAULT_ALLOWED_HOSTS
    hosts = tuple(host.strip() for host in raw.split(",") if host.strip())
    if not hosts:
        raise ConfigError("ALLOWED_HOSTS must list at least one host name, for example 'localhost,127.0.0.1'")
    return hosts


def _shown(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def check_bounds(name: str, variable: str, value: float, low: float, high: float) -> None:
    """Raise ConfigError naming ``variable`` unless ``low <= value <= high`` (and finite, and not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{variable} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{variable} must be between {_shown(low)} and {_shown(high)} ({name}), got {_shown(value)}; "
                          f"set {variable} to a value in that range or unset it for the default.")


GEMINI_KEY_VARIABLES = ("GOOGLE_API_KEY", "GEMINI_API_KEY")


def gemini_key_variable(get: Any) -> str:
    """The variable the Gemini key is read from: GOOGLE_API_KEY when it is set (the google-genai SDK prefers
    it when both are), otherwise GEMINI_API_KEY (also the name errors give when neither is set)."""
    return next((name for name in GEMINI_KEY_VARIABLES if get(name)), "GEMINI_API_KEY")


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = field(default=None, repr=False)  # may carry a password; shown via redact_url
    redis_cluster: bool = False
    session_ttl: int = 86_400
    key_prefix: str = "chat"
    data_dir: Path = PROJECT_ROOT / ".data"
    max_messages: int = 10_000
    default_budget: int = 80_000
    default_provider: str | None = None
    offline_delay: float = 0.01
    provider_timeout: float = 60.0
    provider_max_retries: int = 2
    max_concurrent_turns: int = MAX_CONCURRENT_TURNS
    stream_time_limit: float = STREAM_TIME_LIMIT
    max_reply_chars: int = MAX_REPLY_CHARS
    openai_base_url: str | None = None
    compatible_base_url: str = "http://localhost:11434/v1"
    anthropic_base_url: str | None = None
    gemini_base_url: str | None = None
    # Host headers the app answers (DNS rebinding); the API and page middleware read this.
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    # The model whose tokenizer the offline model reports counts with.
    reference_model: str = "gpt-4o-mini"
    # Keys never appear in repr, so a logged Settings cannot leak them.
    openai_api_key: str | None = field(default=None, repr=False)
    anthropic_api_key: str | None = field(default=None, repr=False)
    compatible_api_key: str | None = field(default=None, repr=False)
    gemini_api_key: str | None = field(default=None, repr=False)
    # Which variable the Gemini key came from, so errors name the one to fix.
    gemini_key_variable: str = "GEMINI_API_KEY"
    api_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name, (variable, low, high) in BOUNDS.items():
            check_bounds(name, variable, getattr(self, name), low, high)

    def secret_values(self) -> list[str]:
        """Every configured secret: API keys, the API bearer token and any password in REDIS_URL."""
        from lib.core.urls import url_passwords  # late: lib.sessions imports this module

        keys = [self.openai_api_key, self.anthropic_api_key, self.compatible_api_key, self.gemini_api_key,
                self.api_token]
        return [key for key in keys if key] + url_passwords(self.redis_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None) -> Settings:
        """Read the settings and register every secret, so ``mask_secrets`` hides it from then on."""
        env = os.environ if env is None else env
        secrets = secrets or {}

        def get(name: str) -> str | None:
            return _lookup(name, env, secrets)

        data_dir = Path(get("HISTORY_LAB_DATA_DIR") or PROJECT_ROOT / ".data")
        gemini_variable = gemini_key_variable(get)
        settings = cls(
            redis_url=get("REDIS_URL"),
            redis_cluster=_bool(get("REDIS_CLUSTER")),
            session_ttl=_int("SESSION_TTL", get("SESSION_TTL"), 86_400),
            key_prefix=get("REDIS_PREFIX") or "chat",
            data_dir=data_dir if data_dir.is_absolute() else PROJECT_ROOT / data_dir,
            max_messages=_int("SESSION_MAX_MESSAGES", get("SESSION_MAX_MESSAGES"), 10_000),
            default_budget=_int("TOKEN_BUDGET", get("TOKEN_BUDGET"), 80_000),
            default_provider=get("DEFAULT_PROVIDER"),
            offline_delay=_float("OFFLINE_DELAY", get("OFFLINE_DELAY"), 0.01),
            provider_timeout=_float("PROVIDER_TIMEOUT", get("PROVIDER_TIMEOUT"), 60.0),
            provider_max_retries=_int("PROVIDER_MAX_RETRIES", get("PROVIDER_MAX_RETRIES"), 2),
            max_concurrent_turns=_int("MAX_CONCURRENT_TURNS", get("MAX_CONCURRENT_TURNS"), MAX_CONCURRENT_TURNS),
            stream_time_limit=_float("STREAM_TIME_LIMIT", get("STREAM_TIME_LIMIT"), STREAM_TIME_LIMIT),
            max_reply_chars=_int("MAX_REPLY_CHARS", get("MAX_REPLY_CHARS"), MAX_REPLY_CHARS),
            openai_base_url=get("OPENAI_BASE_URL"),
            compatible_base_url=get("OPENAI_COMPATIBLE_BASE_URL") or "http://localhost:11434/v1",
            anthropic_base_url=get("ANTHROPIC_BASE_URL"),
            gemini_base_url=get("GEMINI_BASE_URL"),
            allowed_hosts=_hosts(get("ALLOWED_HOSTS")),
            reference_model=get("OFFLINE_REFERENCE_MODEL") or "gpt-4o-mini",
            openai_api_key=get("OPENAI_API_KEY"),
            anthropic_api_key=get("ANTHROPIC_API_KEY"),
            compatible_api_key=get("OPENAI_COMPATIBLE_API_KEY"),
            gemini_api_key=get(gemini_variable),
            gemini_key_variable=gemini_variable,
            api_token=get("HISTORY_LAB_API_TOKEN"),
        )
        register_secrets(settings.secret_values())
        return settings
