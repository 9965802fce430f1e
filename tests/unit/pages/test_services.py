"""An idle rerun builds neither Settings nor providers again: both are kept per environment and process."""

from __future__ import annotations

from lib.core import config
from lib.providers import registry
from tests.support.apptest_helpers import open_app, use_memory_store


def test_an_idle_rerun_builds_no_settings_and_no_providers(monkeypatch):
    use_memory_store(monkeypatch)
    at = open_app()
    assert not at.exception

    calls = {"settings": 0, "providers": 0}
    real_from_env, real_get_provider = config.Settings.from_env.__func__, registry.get_provider

    def counting_from_env(cls, *args, **kwargs):
        calls["settings"] += 1
        return real_from_env(cls, *args, **kwargs)

    def counting_get_provider(*args, **kwargs):
        calls["providers"] += 1
        return real_get_provider(*args, **kwargs)

    monkeypatch.setattr(config.Settings, "from_env", classmethod(counting_from_env))
    monkeypatch.setattr(registry, "get_provider", counting_get_provider)
    at.run()
    assert not at.exception
    assert calls == {"settings": 0, "providers": 0}
