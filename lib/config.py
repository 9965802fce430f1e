"""Settings from environment variables, or from st.secrets passed in by the app (lib never imports streamlit)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


def _lookup(name: str, env: Mapping[str, str], secrets: Mapping[str, Any]) -> str | None:
    # Environment wins over secrets, so a deployment can override a checked-in secrets.toml.
    value = env.get(name)
    if value in (None, "") and name in secrets:
        value = secrets[name]
    return None if value in (None, "") else str(value)


def _int(name: str, raw: str | None, default: int, *, minimum: int = 1) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(name: str, raw: str | None, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


def _bool(raw: str | None) -> bool:
    return (raw or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
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
    openai_base_url: str | None = None
    compatible_base_url: str = "http://localhost:11434/v1"
    anthropic_base_url: str | None = None
    # Keys never appear in repr, so a logged Settings cannot leak them.
    openai_api_key: str | None = field(default=None, repr=False)
    anthropic_api_key: str | None = field(default=None, repr=False)
    compatible_api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None) -> Settings:
        env = os.environ if env is None else env
        secrets = secrets or {}

        def get(name: str) -> str | None:
            return _lookup(name, env, secrets)

        data_dir = Path(get("HISTORY_LAB_DATA_DIR") or PROJECT_ROOT / ".data")
        return cls(
            redis_url=get("REDIS_URL"),
            redis_cluster=_bool(get("REDIS_CLUSTER")),
            session_ttl=_int("SESSION_TTL", get("SESSION_TTL"), 86_400),
            key_prefix=get("REDIS_PREFIX") or "chat",
            data_dir=data_dir if data_dir.is_absolute() else PROJECT_ROOT / data_dir,
            max_messages=_int("SESSION_MAX_MESSAGES", get("SESSION_MAX_MESSAGES"), 10_000),
            default_budget=_int("TOKEN_BUDGET", get("TOKEN_BUDGET"), 80_000, minimum=16),
            default_provider=get("DEFAULT_PROVIDER"),
            offline_delay=_float("OFFLINE_DELAY", get("OFFLINE_DELAY"), 0.01),
            provider_timeout=_float("PROVIDER_TIMEOUT", get("PROVIDER_TIMEOUT"), 60.0),
            provider_max_retries=_int("PROVIDER_MAX_RETRIES", get("PROVIDER_MAX_RETRIES"), 2, minimum=0),
            openai_base_url=get("OPENAI_BASE_URL"),
            compatible_base_url=get("OPENAI_COMPATIBLE_BASE_URL") or "http://localhost:11434/v1",
            anthropic_base_url=get("ANTHROPIC_BASE_URL"),
            openai_api_key=get("OPENAI_API_KEY"),
            anthropic_api_key=get("ANTHROPIC_API_KEY"),
            compatible_api_key=get("OPENAI_COMPATIBLE_API_KEY"),
        )
