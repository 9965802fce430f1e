"""Pages in Chromium: `uv run python bench/pages.py [--sizes 10,2000,10000] [--compare-before REV]`.

For each checkout measured (the current tree by default; ``--app-dir PATH`` names others, repeatable;
``--compare-before REV`` adds a temporary ``git worktree`` of REV as the baseline), this script:
- starts ``streamlit run app.py --server.headless true`` on a free 127.0.0.1 port with a private data dir
  (HISTORY_LAB_DATA_DIR, so the embedded Valkey is private) and the offline model (small OFFLINE_DELAY);
- seeds one session per size straight into that store, with the checkout's own code (``--seed`` mode runs
  inside the checkout): ``RedisStore.import_session`` where the checkout has it, else plain RPUSH of JSON
  on the key schema every version reads (``chat:{S}:messages``, ``:turns``, ``:meta``);
- drives Debian's Chromium through Playwright and prints, per size: chat page usable (stApp idle, chat
  input enabled, messages drawn), own message shown after Enter, reply complete (idle again), the token
  inspector's cold and warm load in a fresh browser (Streamlit's whole bundle loaded each time), the
  inspector reached from the chat page through the sidebar's navigation (as a user does: no bundle to load),
  ratios against the smallest size, and the goals beside them. Every "cold" load opens its own untouched
  copy of the session (history, records and frames never read by the server), so ``--repeat N`` gives a
  median of N cold loads too.

Figures only, never asserts. Every wait is bounded (``--timeout``); everything listens on loopback only.
A checkout older than the bundled encodings may need ``--old-tiktoken-cache DIR`` (it sets
TIKTOKEN_CACHE_DIR for the checkouts other than the current tree only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checkouts import worktree  # this folder's bench/checkouts.py

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
MEASURES = ("usable", "own", "reply", "insp_cold", "insp_warm", "insp_nav")
HEADINGS = {"usable": "chat usable", "own": "own msg shown", "reply": "reply complete",
            "insp_cold": "inspector cold", "insp_warm": "inspector warm", "insp_nav": "inspector from chat"}
SETTLE_MS = 300  # idle must hold this long: a page may rerun right after a run ends (st.rerun)
TAIL = 20  # own message / reply are looked for among the last TAIL chat messages (cheap on 10,000)
RECORD_SUFFIX = 40  # each seeded turn record "sent" this many newest messages, as a trimmed payload would

# -- browser predicates: stable test ids only (stApp, stChatInput, stChatMessage, stMain) ------------------

_IDLE = "document.querySelector(\"[data-testid='stApp']\")?.getAttribute('data-test-script-state') === 'notRunning'"
_INPUT_ENABLED = "!!document.querySelector(\"[data-testid='stChatInput'] textarea:not([disabled])\")"
_MESSAGES = "document.querySelectorAll(\"[data-testid='stChatMessage']\")"
_CHAT_USABLE_JS = f"(minMessages) => {_IDLE} && {_INPUT_ENABLED} && {_MESSAGES}.length >= minMessages"
_TAIL = (f"const tail = Array.from({_MESSAGES}).slice(-{TAIL});"
         " const mine = tail.findIndex(m => (m.textContent || '').includes(token));")
_OWN_SHOWN_JS = f"(token) => {{ {_TAIL} return mine >= 0; }}"
# The reply is complete when a message follows ours and the page is idle with the input enabled again.
_REPLY_DONE_JS = f"(token) => {{ {_TAIL} return mine >= 0 && mine < tail.length - 1 && {_IDLE} && {_INPUT_ENABLED}; }}"
_INSPECTOR_JS = f"() => {_IDLE} && (document.querySelector(\"[data-testid='stMain']\")?.innerText || '').trim() !== ''"
# The inspector drawn after a click in the sidebar's navigation: its title is there and the run is over.
_INSPECTOR_NAV_JS = (f"() => {_IDLE} && location.pathname.endsWith('/inspector') && Array.from(document"
                     ".querySelectorAll(\"[data-testid='stMain'] h1\"))"
                     ".some(h => h.textContent.includes('Token inspector'))")
_ERROR_JS = "() => document.querySelectorAll(\"[data-testid='stException']\").length"


# == seed mode: runs INSIDE the checkout being measured (cwd and PYTHONPATH = that checkout) ==================


def _messages(count: int, now: float) -> list[dict[str, Any]]:
    """Alternating user/assistant messages of realistic length, with the reply metadata pages show."""
    out: list[dict[str, Any]] = []
    for i in range(count):
        turn, ts = i // 2 + 1, now - (count - i) * 5
        if i % 2 == 0:
            text = f"Turn {turn}: how does re-sending history change the cost of question {turn % 37}? " * 2
            out.append({"role": "user", "content": text.strip(), "id": uuid.uuid4().hex, "ts": ts})
            continue
        text = (f"For question {turn % 37}, every turn re-sends the whole **conversation**, so the input grows "
                "with each exchange while the output stays about the same size. Trimming keeps the newest "
                "turns inside the budget; caching makes the repeated prefix cheaper. ") * 2
        meta = {"provider": "offline", "model": "offline", "timings": {"ttft": 0.01, "total": 0.05},
                "usage": {"input_tokens": 60 * turn, "output_tokens": 110}}
        out.append({"role": "assistant", "content": text.strip(), "id": uuid.uuid4().hex, "ts": ts, "meta": meta})
    return out


def _records(messages: list[dict[str, Any]], *, ranges: bool) -> list[dict[str, Any]]:
    """One minimal record per complete turn, "sent" = the newest RECORD_SUFFIX messages at that turn.

    Current checkouts store id ranges (constant size); old ones store id lists, so an old record keeps only
    its sent list, and only the last one its dropped list (what the old chat page reads for its badges).
    """
    records, all_ids = [], [m["id"] for m in messages]
    for turn, user_at in enumerate(range(0, len(messages) - 1, 2), start=1):
        first, ids = max(0, user_at - RECORD_SUFFIX + 1), all_ids[: user_at + 1]
        base = {"turn": turn, "ts": messages[user_at]["ts"], "user_id": ids[-1],
                "assistant_id": messages[user_at + 1]["id"], "strategy": "turns", "budget": 80_000, "reserve": 0,
                "provider": "offline", "model": "offline", "estimate": 40 * (user_at + 1 - first)}
        if ranges:
            base.update(sent=[[ids[first], ids[-1]]], sent_count=len(ids) - first, dropped_count=first)
            if first:
                base["dropped"] = [[ids[0], ids[first - 1]]]
        else:
            last = user_at + 2 >= len(messages) - 1
            base.update(sent_ids=ids[first:], dropped_ids=ids[:first] if last else [])
        records.append(base)
    return records


def _embedded_client(data_dir: Path, *, socket_timeout: float) -> Any:
    """A client on the app's embedded Valkey, with the socket path rule of the checkout being measured."""
    import redis

    from lib.sessions import socket_path_for

    return redis.Redis(unix_socket_path=str(socket_path_for(data_dir.resolve())), decode_responses=True,
                       socket_timeout=socket_timeout)


def _checkout_client(data_dir: Path, *, timeout: float) -> Any:
    """The embedded server's client once it answers (the app starts it on its first page load)."""
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = _embedded_client(data_dir, socket_timeout=60)
        try:
            client.ping()
            return client
        except (redis.RedisError, OSError):
            time.sleep(0.2)
    sys.exit(f"The app's embedded Valkey for {data_dir} did not answer within {timeout:.0f}s; see streamlit.log.")


def _write_raw(client: Any, prefix: str, sid: str, messages: list[dict[str, Any]],
               records: list[dict[str, Any]], ttl: int = 86_400) -> None:
    """RPUSH of JSON on the schema every version reads; one transaction per session."""
    keys = {part: f"{prefix}:{{{sid}}}:{part}" for part in ("messages", "turns", "meta")}
    pipe = client.pipeline(transaction=True)
    for chunk_at in range(0, len(messages), 1_000):
        pipe.rpush(keys["messages"], *[json.dumps(m) for m in messages[chunk_at: chunk_at + 1_000]])
    for chunk_at in range(0, len(records), 1_000):
        pipe.rpush(keys["turns"], *[json.dumps(r) for r in records[chunk_at: chunk_at + 1_000]])
    now = time.time()
    pipe.hset(keys["meta"], mapping={"created_at": str(now), "updated_at": str(now), "title": f"bench {sid}"})
    for key in keys.values():
        pipe.expire(key, ttl)
    pipe.zadd(f"{prefix}:sessions", {sid: now + ttl})
    pipe.execute()


def seed(data_dir: Path, sizes: list[int], *, prefix: str, timeout: float) -> dict[int, str]:
    """Write one session per size; returns size -> session id."""
    from lib.sessions import RedisStore

    client = _checkout_client(data_dir, timeout=timeout)
    has_import = hasattr(RedisStore, "import_session")
    ranges = (Path.cwd() / "lib" / "records.py").exists()
    out = {}
    for size in sizes:
        sid, messages = f"bench{size}x{uuid.uuid4().hex[:8]}", _messages(size, time.time())
        records = _records(messages, ranges=ranges)
        if has_import:
            RedisStore(client, prefix=prefix).import_session(sid, messages=messages, turns=records,
                                                              meta={"title": f"bench {size} messages"})
        else:
            _write_raw(client, prefix, sid, messages, records)
        out[size] = sid
    return out


def shutdown_embedded(data_dir: Path) -> None:
    """Stop a Valkey the app left behind (it stops its own at exit; this only cleans up if that failed)."""
    import redis

    try:
        _embedded_client(data_dir, socket_timeout=2).shutdown(nosave=True)
    except (redis.RedisError, OSError):
        pass


# == driver mode: the current tree's interpreter, one app server and one browser per checkout ===============


@dataclass
class Target:
    label: str
    app_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    figures: dict[int, dict[str, float | None]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    source: str = ""  # path @ commit, taken when its measurement starts


def describe(app_dir: Path) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(app_dir), *args], capture_output=True, text=True, timeout=30)
        return done.stdout.strip()

    dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{app_dir} @ {git('rev-parse', '--short', 'HEAD') or '?'}{dirty}"


def in_checkout(target: Target, *args: str, timeout: float) -> str:
    """Run this file's seed mode inside the target checkout (its own lib), return stdout."""
    env = {**os.environ, **target.env, "PYTHONPATH": str(target.app_dir)}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], cwd=target.app_dir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"seed mode failed in {target.app_dir}:\n{done.stderr[-3000:]}")
    return done.stdout


def make_server(target: Target, data_dir: Path, offline_delay: str) -> Any:
    sys.path.append(str(ROOT))  # after PYTHONPATH: the driver only needs tests.support.app_server from this tree
    from tests.support import app_server

    class CheckoutServer(app_server.AppServer):
        """AppServer runs `streamlit run app.py` in tests.support.app_server.ROOT; point it at the checkout measured."""

        def start(self, timeout: float = 120.0) -> None:
            saved, app_server.ROOT = app_server.ROOT, target.app_dir  # single-threaded: restored right after
            try:
                super().start(timeout)
            finally:
                app_server.ROOT = saved

    env = {**target.env, "PYTHONPATH": str(target.app_dir), "OFFLINE_DELAY": offline_delay, "REDIS_PREFIX": "chat"}
    return CheckoutServer(data_dir, data_dir / "streamlit.log", **env)


def settled(page: Any, script: str, arg: Any, *, deadline: float) -> float | None:
    """Monotonic time at which ``script`` became true and stayed true for SETTLE_MS; None on timeout."""
    while (left := deadline - time.monotonic()) > 0:
        try:
            page.wait_for_function(script, arg=arg, polling=50, timeout=left * 1000)
        except Exception:  # playwright's TimeoutError, or the page went away: both mean "not reached"
            return None
        reached = time.monotonic()
        page.wait_for_timeout(SETTLE_MS)
        if page.evaluate(script, arg):
            return reached
    return None


@contextmanager
def fresh_page(browser: Any) -> Iterator[Any]:
    # A fresh context per load: every figure includes loading Streamlit's bundle, the same for every size.
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def since(start: float, reached: float | None) -> float | None:
    return None if reached is None else reached - start


def chat_once(browser: Any, url: str, *, timeout: float) -> dict[str, float | None]:
    """Open the session's chat, then send one message: usable, own message shown, reply complete."""
    with fresh_page(browser) as page:
        start = time.monotonic()
        page.goto(url, wait_until="commit", timeout=timeout * 1000)
        usable = since(start, settled(page, _CHAT_USABLE_JS, 1, deadline=start + timeout))
        if usable is None:
            return {"usable": None, "own": None, "reply": None, "errors": float(page.evaluate(_ERROR_JS))}
        token = f"bench-{uuid.uuid4().hex[:10]}"
        box = page.locator("[data-testid='stChatInput'] textarea")
        box.fill(f"{token} how long is this conversation now?")
        start = time.monotonic()
        box.press("Enter")
        try:
            page.wait_for_function(_OWN_SHOWN_JS, arg=token, polling="raf", timeout=timeout * 1000)
            own: float | None = time.monotonic() - start
        except Exception:  # a timeout: recorded as missing, not raised
            own = None
        reply = since(start, settled(page, _REPLY_DONE_JS, token, deadline=start + timeout))
        return {"usable": usable, "own": own, "reply": reply, "errors": float(page.evaluate(_ERROR_JS))}


def inspector_once(browser: Any, url: str, *, timeout: float) -> tuple[float | None, int]:
    with fresh_page(browser) as page:
        start = time.monotonic()
        page.goto(url, wait_until="commit", timeout=timeout * 1000)
        loaded = since(start, settled(page, _INSPECTOR_JS, None, deadline=start + timeout))
        return loaded, int(page.evaluate(_ERROR_JS))


def inspector_from_chat(browser: Any, url: str, *, timeout: float) -> tuple[float | None, int]:
    """As a user gets there: the chat page open, then "Token inspector" in the sidebar's navigation. The
    page switch happens in the open tab (no bundle to load), and the session's inspector data is cold."""
    with fresh_page(browser) as page:
        page.goto(url, wait_until="commit", timeout=timeout * 1000)
        if settled(page, _CHAT_USABLE_JS, 1, deadline=time.monotonic() + timeout) is None:
            return None, int(page.evaluate(_ERROR_JS))
        start = time.monotonic()
        page.locator("[data-testid='stSidebarNav']").get_by_text("Token inspector").click()
        loaded = since(start, settled(page, _INSPECTOR_NAV_JS, None, deadline=start + timeout))
        return loaded, int(page.evaluate(_ERROR_JS))


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if len(known) == len(values) and known else None


def measure_size(browser: Any, base: str, sid: str, cold_sids: list[str], nav_sids: list[str], *, repeat: int,
                 timeout: float) -> tuple[dict[str, float | None], list[str]]:
    """``cold_sids`` and ``nav_sids``: ``repeat`` copies each of the session that no load has touched yet,
    so every inspector load counted as cold really is (its history, records and frames unread)."""
    runs = [chat_once(browser, f"{base}/?session={sid}", timeout=timeout) for _ in range(repeat)]
    figures = {key: median([run[key] for run in runs]) for key in ("usable", "own", "reply")}
    errors = sum(run["errors"] or 0 for run in runs)
    problems = [f"chat showed {errors:.0f} error box(es) over {repeat} load(s) of session {sid}"] if errors else []
    loads = {
        "insp_cold": [(inspector_once, f"{base}/inspector?session={copy}") for copy in cold_sids],
        "insp_warm": [(inspector_once, f"{base}/inspector?session={cold_sids[0]}")] * repeat,
        "insp_nav": [(inspector_from_chat, f"{base}/?session={copy}") for copy in nav_sids],
    }
    for key, plan in loads.items():
        times = []
        for load, url in plan:
            took, errors = load(browser, url, timeout=timeout)
            times.append(took)
            if errors:
                problems.append(f"{HEADINGS[key]}: {errors} error box(es) at {url}")
        figures[key] = median(times)
    return figures, problems


def measure_target(target: Target, browser: Any, sizes: list[int], args: argparse.Namespace) -> None:
    target.source = target.source or describe(target.app_dir)
    with tempfile.TemporaryDirectory(prefix="hl-pages-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir(mode=0o700)
        server = make_server(target, data_dir, args.offline_delay)
        server.start()
        try:
            # The app opens its store (and starts the embedded Valkey) on the first page load.
            with fresh_page(browser) as page:
                page.goto(server.url, timeout=args.timeout * 1000)
                settled(page, _CHAT_USABLE_JS, 0, deadline=time.monotonic() + args.timeout)
            # Warm-up on a small session, so the first measured size does not pay for the process's imports.
            warm_sid = json.loads(in_checkout(target, "--seed", str(data_dir), "--sizes", "10",
                                              timeout=args.timeout).splitlines()[-1])["10"]
            measure_size(browser, server.url, warm_sid, [warm_sid], [warm_sid], repeat=1, timeout=args.timeout)
            started = time.monotonic()
            def seed_sizes() -> dict[str, str]:
                return json.loads(in_checkout(target, "--seed", str(data_dir), "--sizes", ",".join(map(str, sizes)),
                                              timeout=args.timeout * 4).splitlines()[-1])

            seeded = seed_sizes()
            # Copies no load has touched: one per cold inspector load, fresh browser and from the chat.
            cold_copies = [seed_sizes() for _ in range(args.repeat)]
            nav_copies = [seed_sizes() for _ in range(args.repeat)]
            print(f"  seeded {', '.join(f'{s:,}' for s in sizes)} messages in {time.monotonic() - started:.1f} s",
                  flush=True)
            for size in sizes:
                target.figures[size], problems = measure_size(
                    browser, server.url, seeded[str(size)], [copy[str(size)] for copy in cold_copies],
                    [copy[str(size)] for copy in nav_copies], repeat=args.repeat, timeout=args.timeout)
                target.errors += problems
                print(f"  {size:>6,} messages: " + "  ".join(f"{HEADINGS[k]} {fmt(target.figures[size][k])}"
                                                            for k in MEASURES), flush=True)
        finally:
            server.stop()
            in_checkout(target, "--shutdown", str(data_dir), timeout=60)


# == report =================================================================================================


def fmt(value: float | None) -> str:
    return "timeout" if value is None else f"{value:.2f} s"  # a timeout is longer than --timeout


def ratio(value: float | None, base: float | None) -> str:
    return "" if value is None or not base else f"(×{value / base:.1f})"


def print_target(target: Target) -> None:
    sizes = sorted(target.figures)
    base = target.figures[sizes[0]]
    print(f"\n{target.label}: {target.source}")
    print(f"{'messages':>9}  " + "  ".join(f"{HEADINGS[k]:>23}" for k in MEASURES))
    for size in sizes:
        row = target.figures[size]
        print(f"{size:>9,}  " + "  ".join(f"{fmt(row[k]) + ' ' + ratio(row[k], base[k]):>23}" for k in MEASURES))
    print(f"(ratios against the {sizes[0]:,}-message session; timeout = longer than --timeout)")
    print_goals(target)
    for problem in target.errors:
        print(f"  ! {problem}")


def print_goals(target: Target) -> None:
    sizes = sorted(target.figures)
    small, large = target.figures[sizes[0]], target.figures[sizes[-1]]
    note = "" if sizes[-1] == 10_000 else f" (10,000 not measured: shown at {sizes[-1]:,})"

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "MISSED")

    usable = None if large["usable"] is None or not small["usable"] else large["usable"] / small["usable"]
    cold = [row["insp_cold"] for row in target.figures.values()]
    worst_cold = None if None in cold else max(c for c in cold if c is not None)
    print(f"Goals{note}:")
    print(f"  chat usable within 2× of the {sizes[0]:,}-message session: "
          f"{'timeout' if usable is None else f'×{usable:.2f}'} -> {verdict(None if usable is None else usable <= 2)}")
    print(f"  own message shown in < 0.5 s: {fmt(large['own'])} -> "
          f"{verdict(None if large['own'] is None else large['own'] < 0.5)}")
    print(f"  inspector cold load < 3 s (slowest size), fresh browser: {fmt(worst_cold)} -> "
          f"{verdict(None if worst_cold is None else worst_cold < 3)}")
    nav = [row.get("insp_nav") for row in target.figures.values()]
    worst_nav = None if None in nav else max(n for n in nav if n is not None)
    print(f"  inspector cold load < 3 s (slowest size), from the chat: {fmt(worst_nav)} -> "
          f"{verdict(None if worst_nav is None else worst_nav < 3)}")


def print_comparison(targets: list[Target]) -> None:
    baseline = targets[0]
    for other in targets[1:]:
        print(f"\n{baseline.label} / {other.label} (how many times faster {other.label} is):")
        for size in sorted(set(baseline.figures) & set(other.figures)):
            cells = []
            for key in MEASURES:
                before, after = baseline.figures[size][key], other.figures[size][key]
                cells.append(f"{HEADINGS[key]} " + (f"×{before / after:.1f}" if before and after else "n/a"))
            print(f"  {size:>6,} messages: " + "  ".join(cells))


# == main ===================================================================================================


@contextmanager
def snapshot(app_dir: Path) -> Iterator[Path]:
    """A copy of the checkout's files as they are now (tracked and untracked, not ignored), removed afterwards.

    The server imports modules once but re-reads page scripts on every run, so a tree edited during a run
    would be measured half old, half new; a copy is measured as it was when the run began.
    """
    listed = subprocess.run(["git", "-C", str(app_dir), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    with tempfile.TemporaryDirectory(prefix="hl-snapshot-") as tmp:
        copy = Path(tmp) / app_dir.name
        for name in filter(None, listed):
            source, target = app_dir / name, copy / name
            if source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        yield copy


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,2000,10000", help="messages per seeded session (default 10,2000,10000)")
    parser.add_argument("--app-dir", action="append", type=Path, default=None,
                        help="checkout to measure (repeatable; default: this tree)")
    parser.add_argument("--compare-before", metavar="REV", help="also measure REV (a temporary git worktree) first")
    parser.add_argument("--old-tiktoken-cache", metavar="DIR",
                        help="TIKTOKEN_CACHE_DIR for checkouts other than this tree (old ones do not bundle encodings)")
    parser.add_argument("--snapshot", action="store_true",
                        help="measure a copy of each --app-dir taken at the start (for a tree others are editing)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="loads of each kind per size (chat load+send, inspector cold, warm, from the chat); "
                             "the median is printed")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds any single wait may take")
    parser.add_argument("--offline-delay", default="0.002", help="OFFLINE_DELAY for the app (seconds per chunk)")
    # Seed mode (internal): runs inside a checkout, with its own lib.
    parser.add_argument("--seed", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--shutdown", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 10 or not 1 <= args.timeout <= 1_800:
        parser.error("--repeat must be 1..10 and --timeout 1..1800 seconds")
    return args


def sizes_from(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 2 or sizes[-1] > 10_000:
        sys.exit("--sizes takes message counts from 2 to 10,000 (the per-session cap), e.g. 10,2000,10000")
    return sizes


def run(targets: list[Target], sizes: list[int], args: argparse.Namespace) -> None:
    if not Path(CHROMIUM).exists():
        sys.exit(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            for target in targets:
                print(f"Measuring {target.label} ({target.app_dir}) ...", flush=True)
                measure_target(target, browser, sizes, args)
        finally:
            browser.close()
    for target in targets:
        print_target(target)
    print_comparison(targets)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.seed:
        print(json.dumps(seed(args.seed, sizes_from(args.sizes), prefix="chat", timeout=60)))
        return
    if args.shutdown:
        shutdown_embedded(args.shutdown)
        return
    sizes = sizes_from(args.sizes)
    old_env = {"TIKTOKEN_CACHE_DIR": args.old_tiktoken_cache} if args.old_tiktoken_cache else {}
    with ExitStack() as stack:
        targets = []
        if args.compare_before:
            before = stack.enter_context(worktree(args.compare_before))
            targets.append(Target(f"before ({args.compare_before})", before, dict(old_env)))
        for app_dir in [d.resolve() for d in (args.app_dir or [ROOT])]:
            target = Target("current" if app_dir == ROOT else app_dir.name, app_dir,
                            {} if app_dir == ROOT else dict(old_env))
            if args.snapshot:
                target.source = f"{describe(app_dir)}, copied at the start"
                target.app_dir = stack.enter_context(snapshot(app_dir))
            targets.append(target)
        run(targets, sizes, args)


if __name__ == "__main__":
    main()
