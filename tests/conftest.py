"""Shared test set-up: real-server fixtures, and CI's no-silent-skip rule."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import sys
from collections.abc import Iterator

import pytest

from tests.ci import IN_CI, require  # noqa: F401 - re-exported for test modules
from tests.fake_llm import FakeLLM

# Fixtures for real Redis/Valkey servers live in their own module, shared by store, chat and page tests.
pytest_plugins = ["tests.redis_fixtures", "tests.browser"]


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """The OpenAI/Anthropic wire-protocol server on 127.0.0.1 (see tests/fake_llm.py)."""
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
