"""Settings from the environment and st.secrets: defaults, precedence, bounded values, registered secrets."""

from __future__ import annotations

import pytest

from lib.core import BOUNDS, PROJECT_ROOT, ConfigError, HistoryLabError, Settings, mask_secrets


def test_defaults_are_the_embedded_store_and_the_offline_model():
    cfg = Settings.from_env({}, {})
    assert cfg.redis_url is None and cfg.session_ttl == 86_400 and cfg.key_prefix == "chat"
    assert cfg.data_dir == PROJECT_ROOT / ".data" and cfg.default_budget == 80_000
    assert cfg.default_provider is None and cfg.provider_max_retries == 2
    assert cfg.allowed_hosts == ("localhost", "127.0.0.1", "[::1]")
    assert cfg.api_token is None and cfg.reference_model == "gpt-5.4-mini"  # not scheduled to shut down


def test_environment_wins_over_secrets_and_relative_data_dirs_are_project_relative():
    cfg = Settings.from_env({"SESSION_TTL": "60", "HISTORY_LAB_DATA_DIR": "var/store", "REDIS_CLUSTER": "yes"},
                            {"SESSION_TTL": 99, "OPENAI_API_KEY": "sk-from-secrets-123456"})
    assert cfg.session_ttl == 60 and cfg.redis_cluster
    assert cfg.data_dir == PROJECT_ROOT / "var" / "store"
    assert cfg.openai_api_key == "sk-from-secrets-123456"
    assert "sk-from-secrets" not in repr(cfg)


def test_new_fields_from_the_environment():
    cfg = Settings.from_env({"ALLOWED_HOSTS": " lab.example.test , 127.0.0.1 ,",
                             "HISTORY_LAB_API_TOKEN": "tok-abcdef-1", "OFFLINE_REFERENCE_MODEL": "gpt-4.1"}, {})
    assert cfg.allowed_hosts == ("lab.example.test", "127.0.0.1")
    assert cfg.api_token == "tok-abcdef-1" and "tok-abcdef-1" not in repr(cfg)
    assert cfg.reference_model == "gpt-4.1"
    with pytest.raises(ConfigError, match="ALLOWED_HOSTS"):
        Settings.from_env({"ALLOWED_HOSTS": " , "}, {})


@pytest.mark.parametrize(("env", "message"), [
    ({"SESSION_TTL": "a day"}, "SESSION_TTL must be a whole number, got 'a day'"),
    ({"SESSION_TTL": "0"}, "SESSION_TTL must be between 60 and 31,536,000"),
    # The value that once made EXPIRE fail inside EXEC after the RPUSH had run, leaving keys with no TTL.
    ({"SESSION_TTL": "9223372036854775"}, "SESSION_TTL must be between 60 and 31,536,000"),
    ({"SESSION_MAX_MESSAGES": "0"}, "SESSION_MAX_MESSAGES must be between"),
    ({"SESSION_MAX_MESSAGES": "100000000000"}, "SESSION_MAX_MESSAGES must be between"),
    ({"TOKEN_BUDGET": "8"}, "TOKEN_BUDGET must be between 16 and"),
    ({"OFFLINE_DELAY": "-1"}, "OFFLINE_DELAY must be between 0 and 5"),
    ({"OFFLINE_DELAY": "nan"}, "OFFLINE_DELAY must be a finite number"),
    ({"PROVIDER_TIMEOUT": "soon"}, "PROVIDER_TIMEOUT must be a number"),
    ({"PROVIDER_TIMEOUT": "inf"}, "PROVIDER_TIMEOUT must be a finite number"),
    ({"PROVIDER_TIMEOUT": "0"}, "PROVIDER_TIMEOUT must be between 1 and 3,600"),
    ({"PROVIDER_MAX_RETRIES": "1000"}, "PROVIDER_MAX_RETRIES must be between 0 and 10"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message) as raised:
        Settings.from_env(env, {})
    assert isinstance(raised.value, HistoryLabError) and isinstance(raised.value, ValueError)


def test_every_numeric_setting_is_bounded_also_when_built_directly():
    numeric = {name for name, value in vars(Settings()).items()
               if isinstance(value, int | float) and not isinstance(value, bool)}
    assert numeric == set(BOUNDS)
    for name, (variable, low, high) in BOUNDS.items():
        Settings(**{name: low})
        Settings(**{name: high})
        with pytest.raises(ConfigError, match=variable):
            Settings(**{name: high + 1})


def test_configured_secrets_are_registered_and_masked():
    Settings.from_env({"OPENAI_COMPATIBLE_API_KEY": "vllm-token-9f8e7d", "HISTORY_LAB_API_TOKEN": "bearer-xyz-42",
                       "REDIS_URL": "redis://admin:redis-pass-1@127.0.0.1:6379/0?password=query-pass-2"}, {})
    shown = mask_secrets("vllm-token-9f8e7d bearer-xyz-42 redis-pass-1 query-pass-2")
    assert shown == "*** *** *** ***"


def test_redis_url_is_not_in_repr():
    assert "hunter2" not in repr(Settings(redis_url="redis://u:hunter2@127.0.0.1/0"))


@pytest.mark.parametrize("text", [
    "key sk-abcdefgh1234 here", "AIza" + "B" * 35, "Authorization: Bearer abcdefgh.ijk", "(sk-proj-abcdefgh_12)",
])
def test_key_shapes_are_masked_and_text_without_them_is_returned_as_is(text):
    assert "***" in mask_secrets(text) and mask_secrets(text) != text
    plain = "task-force: ask- risk-free, no key here " * 100
    assert mask_secrets(plain) is plain
