"""Start `streamlit run app.py` as a real server on a free loopback port, for the browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Variables that would point the app at something other than its private embedded store and offline model.
SCRUBBED = ("REDIS_URL", "REDIS_CLUSTER", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL",
            "ANTHROPIC_BASE_URL", "DEFAULT_PROVIDER", "HISTORY_LAB_STORE", "HISTORY_LAB_API_TOKEN", "ALLOWED_HOSTS",
            "GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """One app process; stop() and start() again on the same data dir to simulate a server restart."""

    def __init__(self, data_dir: Path, log_path: Path, *, address: str | None = "127.0.0.1", **extra_env: str) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        # None: no --server.address flag, so .streamlit/config.toml decides where the server listens.
        self.address = address
        self.extra_env = extra_env
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env.update(HISTORY_LAB_DATA_DIR=str(self.data_dir), OFFLINE_DELAY="0.002")
        env.update(self.extra_env)  # a caller may override the defaults above (the API bench sets OFFLINE_DELAY=0)
        log = open(self.log_path, "a")  # noqa: SIM115 - closed with the process
        address = ["--server.address", self.address] if self.address else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             *address, "--server.port", str(self.port),
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited early; see {self.log_path}:\n{self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not become healthy in {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None:
            return
        # SIGTERM is what a process manager sends; the app must shut its embedded store down cleanly.
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
