"""The README's "Using lib" snippet runs as written, against the test Valkey instead of localhost:6379."""

from __future__ import annotations

import re
import uuid

from tests.support.app_server import ROOT


def readme_snippet(heading: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"## {heading}", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python block under '## {heading}'"
    return match.group(1)


def test_using_lib_snippet_runs(valkey_server, capsys):
    code = readme_snippet("Using `lib` in your own service")
    assert 'RedisStore("redis://localhost:6379/0"' in code
    # Only the server address and the key prefix change; every other line runs exactly as printed.
    prefix = f"readme-{uuid.uuid4().hex[:8]}"
    code = code.replace('"redis://localhost:6379/0"', repr(valkey_server.url)).replace(
        'prefix="chat"', f"prefix={prefix!r}")
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README is ours
    printed = capsys.readouterr().out
    assert "Hi! Usage(" in printed and "I received" in printed
