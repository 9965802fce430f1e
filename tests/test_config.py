"""Settings from the environment and st.secrets: defaults, precedence, clear errors, no keys in repr."""

from __future__ import annotations

import pytest

from lib.config import PROJECT_ROOT, ConfigError, Settings


def test_defaults_are_the_embedded_store_and_the_offline_model():
    cfg = Settings.from_env({}, {})
    assert cfg.redis_url is None and cfg.session_ttl == 86_400 and cfg.key_prefix == "chat"
    assert cfg.data_dir == PROJECT_ROOT / ".data" and cfg.default_budget == 80_000
    assert cfg.default_provider is None and cfg.provider_max_retries == 2


def test_environment_wins_over_secrets_and_relative_data_dirs_are_project_relative():
    cfg = Settings.from_env({"SESSION_TTL": "60", "HISTORY_LAB_DATA_DIR": "var/store", "REDIS_CLUSTER": "yes"},
                            {"SESSION_TTL": 99, "OPENAI_API_KEY": "sk-from-secrets-123456"})
    assert cfg.session_ttl == 60 and cfg.redis_cluster
    assert cfg.data_dir == PROJECT_ROOT / "var" / "store"
    assert cfg.openai_api_key == "sk-from-secrets-123456"
    assert "sk-from-secrets" not in repr(cfg)


@pytest.mark.parametrize(("env", "message"), [
    ({"SESSION_TTL": "a day"}, "SESSION_TTL must be a whole number, got 'a day'"),
    ({"SESSION_TTL": "0"}, "SESSION_TTL must be at least 1"),
    ({"TOKEN_BUDGET": "8"}, "TOKEN_BUDGET must be at least 16"),
    ({"OFFLINE_DELAY": "-1"}, "OFFLINE_DELAY must not be negative"),
    ({"PROVIDER_TIMEOUT": "soon"}, "PROVIDER_TIMEOUT must be a number"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env, {})
