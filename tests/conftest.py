"""Shared test set-up: offline tiktoken files, real-server fixtures, and CI's no-silent-skip rule."""

from __future__ import annotations

from lib.config import use_shared_tiktoken_cache
from tests.ci import IN_CI, require  # noqa: F401 - re-exported for test modules

use_shared_tiktoken_cache()
# Fixtures for real Redis/Valkey servers live in their own module, shared by store, chat and page tests.
pytest_plugins = ["tests.redis_fixtures"]
