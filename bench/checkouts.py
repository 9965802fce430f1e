"""A detached git worktree of an earlier revision, for the benches that measure before and after in one run."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A detached worktree of ``rev`` in a temp dir, removed afterwards (the repository's branches untouched)."""
    parent = Path(tempfile.mkdtemp(prefix="hl-before-"))
    path = parent / "checkout"
    try:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True,
                       capture_output=True, timeout=120)
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True,
                       timeout=120)
        shutil.rmtree(parent, ignore_errors=True)
