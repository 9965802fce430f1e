"""First page load in Chromium, checkouts side by side: `uv run python bench/first_load.py [--app-dir A --app-dir B]`.

Each checkout (default: this tree) runs its own ``streamlit run app.py`` (private data dir, offline model)
at the same time; the loads alternate between them, round by round, so both see the same machine load.
Each load is a fresh browser context (Streamlit's whole bundle fetched again, over the few keep-alive
connections Chromium opens per host) and prints, as medians:
- **usable**: from navigation until the app is idle with the chat input enabled (as bench/pages.py);
- **load event**: the page's ``loadEventEnd`` (HTML, scripts, styles, fonts);
- **requests**: how many resources the page fetched from the server, how many of them went over a reused
  connection, and the median and slowest time from request to last byte over those (Resource Timing).

Figures only, never asserts; every wait is bounded (``--timeout``), everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 30:
        parser.error("--rounds must be 1..30")
    if not Path(pages.CHROMIUM).exists():
        sys.exit(f"Chromium not found at {pages.CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH.")
    from playwright.sync_api import sync_playwright

    dirs = [d.resolve() for d in (args.app_dir or [pages.ROOT])]
    runs: dict[Path, list[dict[str, float]]] = {d: [] for d in dirs}
    with sync_playwright() as pw, ExitStack() as stack:
        servers = {}
        for app_dir in dirs:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hl-first-"))) / "data"
            data_dir.mkdir(mode=0o700)
            server = pages.make_server(pages.Target(app_dir.name, app_dir), data_dir, "0.002")
            server.start()
            stack.callback(server.stop)
            servers[app_dir] = server
        browser = pw.chromium.launch(executable_path=pages.CHROMIUM, headless=True, args=pages.FLAGS)
        stack.callback(browser.close)
        for app_dir in dirs:  # warm-up: the store opens and the page modules import on the first load
            load_once(browser, servers[app_dir].url, timeout=args.timeout)
        for n in range(args.rounds):
            order = dirs if n % 2 == 0 else dirs[::-1]
            for app_dir in order:
                figures = load_once(browser, servers[app_dir].url, timeout=args.timeout)
                if figures is None:
                    print(f"  {app_dir}: not usable within {args.timeout:.0f} s", flush=True)
                else:
                    runs[app_dir].append(figures)
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


if __name__ == "__main__":
    main()
