"""Shared test set-up: offline tiktoken files, and skips that turn into failures under CI=true."""

from __future__ import annotations

import os

import pytest

from lib.config import use_shared_tiktoken_cache

use_shared_tiktoken_cache()
# Fixtures for real Redis/Valkey servers live in their own module, shared by store, chat and page tests.
pytest_plugins = ["tests.redis_fixtures"]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip when a real component is missing, but fail under CI=true: CI must never skip silently."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)
