"""First page load and a chat turn in Chromium, checkouts side by side:
`uv run python bench/first_load.py [--app-dir A --app-dir B] [--chat-sizes 10,10000]`.

Each checkout (default: this tree) runs its own ``streamlit run app.py`` (private data dir, offline model)
at the same time; the loads alternate between them, round by round, so both see the same machine load.
Each load is a fresh browser context (Streamlit's whole bundle fetched again, over the few keep-alive
connections Chromium opens per host) and prints, as medians:
- **usable**: from navigation until the app is idle with the chat input enabled (as bench/pages.py);
- **load event**: the page's ``loadEventEnd`` (HTML, scripts, styles, fonts);
- **requests**: how many resources the page fetched from the server, how many of them went over a reused
  connection, and the median and slowest time from request to last byte over those (Resource Timing).

With ``--chat-sizes``, each checkout also gets one seeded session per size (bench/pages.py's seed mode, in
the checkout's own store), and each round opens it and sends a message (bench/pages.py's ``chat_once``,
alternating between checkouts like the loads): chat usable, own message shown, reply complete, as medians.

Figures only, never asserts; every wait is bounded (``--timeout``), everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pages  # noqa: E402 - this folder's bench/pages.py: servers, checkouts and browser helpers

# Resource Timing for what came from the app's own origin. A reused connection has no connect phase.
_RESOURCES_JS = """() => performance.getEntriesByType('resource')
    .filter(r => r.name.startsWith(location.origin))
    .map(r => ({took: r.responseEnd - r.requestStart, reused: r.connectEnd === r.connectStart}))"""
_LOAD_EVENT_JS = "() => performance.getEntriesByType('navigation')[0]?.loadEventEnd || 0"


def load_once(browser: Any, url: str, *, timeout: float) -> dict[str, float] | None:
    with pages.fresh_page(browser) as page:
        start = time.monotonic()
        page.goto(url, wait_until="commit", timeout=timeout * 1000)
        usable = pages.since(start, pages.settled(page, pages._CHAT_USABLE_JS, 0, deadline=start + timeout))
        if usable is None:
            return None
        page.wait_for_function("() => document.readyState === 'complete'", timeout=timeout * 1000)
        resources = page.evaluate(_RESOURCES_JS)
        reused = [r["took"] for r in resources if r["reused"]]
        return {"usable": usable, "load": page.evaluate(_LOAD_EVENT_JS) / 1000, "requests": len(resources),
                "reused": len(reused), "reused_ms": statistics.median(reused) if reused else 0.0,
                "slowest_ms": max((r["took"] for r in resources), default=0.0)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app-dir", action="append", type=Path, default=None,
                        help="checkout to measure (repeatable; default: this tree)")
    parser.add_argument("--rounds", type=int, default=7, help="loads per checkout (1..30)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds any single wait may take")
    parser.add_argument("--chat-sizes", default="", help="also open a seeded session of each size and send a "
                        "message (e.g. 10,10000)")
    args = parser.parse_args(argv)
    sizes = pages.sizes_from(args.chat_sizes) if args.chat_sizes else []
    if not 1 <= args.rounds <= 30:
        parser.error("--rounds must be 1..30")
    if not Path(pages.CHROMIUM).exists():
        sys.exit(f"Chromium not found at {pages.CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH.")
    from playwright.sync_api import sync_playwright

    dirs = [d.resolve() for d in (args.app_dir or [pages.ROOT])]
    runs: dict[Path, list[dict[str, float]]] = {d: [] for d in dirs}
    chats: dict[tuple[Path, int], list[dict[str, float | None]]] = {(d, n): [] for d in dirs for n in sizes}
    with sync_playwright() as pw, ExitStack() as stack:
        servers, sessions, data_dirs = {}, {}, {}
        for app_dir in dirs:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hl-first-"))) / "data"
            data_dir.mkdir(mode=0o700)
            target = pages.Target(app_dir.name, app_dir)
            server = pages.make_server(target, data_dir, "0.002")
            # Registered first, so it runs last: after the app stopped (and normally stopped its Valkey too).
            stack.callback(pages.in_checkout, target, "--shutdown", str(data_dir), timeout=60)
            server.start()
            stack.callback(server.stop)
            servers[app_dir] = server
            data_dirs[app_dir] = data_dir
        browser = pw.chromium.launch(executable_path=pages.CHROMIUM, headless=True, args=pages.FLAGS)
        stack.callback(browser.close)
        for app_dir in dirs:  # warm-up: the store opens and the page modules import on the first load
            load_once(browser, servers[app_dir].url, timeout=args.timeout)
            if sizes:
                target = pages.Target(app_dir.name, app_dir)
                seeded = pages.in_checkout(target, "--seed", str(data_dirs[app_dir]), "--sizes",
                                           ",".join(map(str, sizes)), timeout=args.timeout * 4)
                sessions[app_dir] = json.loads(seeded.splitlines()[-1])
        for n in range(args.rounds):
            order = dirs if n % 2 == 0 else dirs[::-1]
            for app_dir in order:
                figures = load_once(browser, servers[app_dir].url, timeout=args.timeout)
                if figures is None:
                    print(f"  {app_dir}: not usable within {args.timeout:.0f} s", flush=True)
                else:
                    runs[app_dir].append(figures)
                for size in sizes:
                    url = f"{servers[app_dir].url}/?session={sessions[app_dir][str(size)]}"
                    chats[(app_dir, size)].append(pages.chat_once(browser, url, timeout=args.timeout))
    print(f"\nFirst page load, medians of {args.rounds} fresh-context loads (alternating between checkouts):")
    print(f"{'checkout':<40} {'usable':>8} {'load event':>11} {'requests':>9} {'reused':>7} "
          f"{'reused req':>11} {'slowest req':>12}")
    for app_dir in dirs:
        rows = runs[app_dir]
        if not rows:
            print(f"{pages.describe(app_dir):<40} no load completed")
            continue

        def med(key: str, rows: list[dict[str, float]] = rows) -> float:
            return statistics.median(r[key] for r in rows)

        print(f"{pages.describe(app_dir)[-40:]:<40} {med('usable'):>7.2f}s {med('load'):>10.2f}s "
              f"{med('requests'):>9.0f} {med('reused'):>7.0f} {med('reused_ms'):>9.1f}ms {med('slowest_ms'):>10.1f}ms")
    if sizes:
        print(f"\nA chat turn in a seeded session, medians of {args.rounds} (alternating between checkouts):")
        print(f"{'checkout':<40} {'messages':>9} {'chat usable':>12} {'own msg shown':>14} {'reply complete':>15}")
        for size in sizes:
            for app_dir in dirs:
                rows = chats[(app_dir, size)]
                cells = [pages.fmt(pages.median([r[k] for r in rows])) for k in ("usable", "own", "reply")]
                print(f"{pages.describe(app_dir)[-40:]:<40} {size:>9,} {cells[0]:>12} {cells[1]:>14} {cells[2]:>15}")


if __name__ == "__main__":
    main()
