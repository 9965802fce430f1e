"""What each bundled tokenizer costs: cold load time (read, SHA-256 check, parse) in a fresh process, and
counting speed on the token view's presets; beside them, what mistral-common would cost if it is installed
in the interpreter given with --mistral-common (it is not a History Lab dependency; see README).

    uv run python bench/tokenizers.py [--mistral-common /path/to/python]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENCODINGS = ("cl100k_base", "o200k_base", "tekken_240718")
ROUNDS = 3  # fresh processes per encoding; the figures are the fastest of them (a busy machine is noisy)
COLD_LOAD = """
import sys, time
sys.path.insert(0, ".")
t = time.perf_counter()
from lib.tokens import load_encoding
i = time.perf_counter()
load_encoding({name!r})
print(i - t, time.perf_counter() - i)
"""
MISTRAL_COMMON = """
import time
t = time.perf_counter()
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
i = time.perf_counter()
MistralTokenizer.v3(is_tekken=True)
print(i - t, time.perf_counter() - i)
"""


def fastest(python: str, code: str) -> tuple[float, float]:
    runs = []
    for _ in range(ROUNDS):
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, timeout=120, cwd=ROOT)
        first, second = map(float, out.stdout.split())
        runs.append((first, second))
    return min(r[0] for r in runs), min(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mistral-common", help="a Python interpreter with mistral-common installed")
    args = parser.parse_args()
    from lib.tokens import PRESETS, count_text
    from lib.tokens.encodings import BUNDLED

    text = "\n".join(PRESETS.values()) * 50
    header = f"count {len(text):,} chars"
    print(f"{'encoding':<16} {'file':>9} {'import lib.tokens':>18} {'cold load':>10} {header:>18}")
    for name in ENCODINGS:
        size = BUNDLED[name].path.stat().st_size / 1e6
        imported, load = fastest(sys.executable, COLD_LOAD.format(name=name))
        count_text("warm up", name)  # loads the encoding; the timing below is counting alone
        start = time.perf_counter()
        count_text(text + name, name)  # a text not cached yet
        counted = time.perf_counter() - start
        print(f"{name:<16} {size:>7.2f}MB {imported:>17.2f}s {load:>9.2f}s {counted * 1000:>16.1f}ms")
    if args.mistral_common:
        imported, load = fastest(args.mistral_common, MISTRAL_COMMON)
        print(f"{'mistral-common':<16} {'':>9} {imported:>17.2f}s {load:>9.2f}s   (import mistral_common; "
              "MistralTokenizer.v3(is_tekken=True))")


if __name__ == "__main__":
    main()
