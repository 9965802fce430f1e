"""Shared test set-up: real-server fixtures, the markers of the fast unit run, and CI's no-silent-skip rule.

Markers say what a test needs, so ``uv run pytest -m "not redis and not server and not e2e"`` is the fast
unit run: ``e2e`` for everything under tests/e2e (Chromium), ``redis`` for a test that gets a real Valkey
through a fixture (or the Redis side of the parametrised store contract), ``server`` for a test module that
starts ``streamlit run app.py`` (its own ``pytestmark``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ci import IN_CI, require  # noqa: F401 - re-exported for test modules
from tests.support.fake_llm import FakeLLM

# Fixtures for real Redis/Valkey servers live in their own module, shared by store, chat and page tests.
pytest_plugins = ["tests.support.redis_fixtures", "tests.support.browser"]


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """The OpenAI/Anthropic wire-protocol server on 127.0.0.1 (see tests/support/fake_llm.py)."""
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    """One fake wire server for a whole module, for tests that start an app pointed at it once."""
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def spawn_context(monkeypatch) -> multiprocessing.context.SpawnContext:
    """A spawn context whose children never re-run a stray ``__main__``.

    AppTest.from_function leaves ``__main__`` pointing at a temporary page script; spawn would re-run that
    script in every child (and crash there) unless ``__main__`` has no file to re-run.
    """
    monkeypatch.delattr(sys.modules["__main__"], "__file__", raising=False)
    return multiprocessing.get_context("spawn")


TESTS = Path(__file__).resolve().parent
REDIS_FIXTURES = {"valkey_server", "redis_store"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TESTS / "e2e" in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)
        callspec = getattr(item, "callspec", None)
        on_redis = callspec is not None and callspec.params.get("store") == "redis"
        if on_redis or REDIS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)
