"""Drive the real app in Debian's headless Chromium: serve it on 127.0.0.1, open pages, wait until idle.

Shared by the end-to-end tests and ``benchmarks/bench_app.py``; never used by the app itself.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fraudlab.config import PROJECT_DIR

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGE_TITLES = {"Overview": "fraudlab", "Case queue": "Case queue", "Case detail": "Case detail",
               "Fraud rings": "Fraud rings", "Segments": "Customer segments", "Drift": "Drift", "Models": "Models",
               "Load data": "Load data"}
STATUS = '[data-testid="stStatusWidget"]'


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_app(ws_path: Path, log_path: Path, extra_args: tuple[str, ...] = (), port: int | None = None,
              env: dict | None = None) -> Iterator[str]:
    """Run `streamlit run app.py` on 127.0.0.1 over a workspace file; yield its URL once healthy."""
    log = open(log_path, "wb")
    port = port or free_port()
    env = dict(os.environ, FRAUDLAB_WORKSPACE=str(ws_path), **(env or {}))
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", *extra_args],
        cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"streamlit did not become healthy in 60 s (log: {log_path})")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium, headless, driven by Playwright (no downloaded browsers)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            yield browser
        finally:
            browser.close()


def wait_idle(page, timeout_ms: int = 60_000) -> float:
    """Wait until Streamlit has finished running the script; returns when it was first seen idle (perf_counter).

    Idle means: the app frame and the sidebar's workspace facts are drawn, and the running indicator has been
    absent for three checks in a row (it can appear a moment after a run starts).
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    # the sidebar's workspace facts are drawn by app.py on every run, after navigation is set up
    page.locator('[data-testid="stSidebar"]', has_text="transactions").wait_for(timeout=timeout_ms)
    deadline = time.perf_counter() + timeout_ms / 1000
    quiet_since, quiet = None, 0
    while time.perf_counter() < deadline:
        if page.locator(STATUS).count() == 0:
            quiet_since = quiet_since or time.perf_counter()
            quiet += 1
            if quiet >= 3:
                return quiet_since
        else:
            quiet_since, quiet = None, 0
        page.wait_for_timeout(200)
    raise TimeoutError(f"the app was still running after {timeout_ms / 1000:.0f} s")


def open_page(page, url: str, label: str, timeout_ms: int = 120_000) -> float:
    """Click a sidebar navigation link (again if a rerun swallowed the click); seconds until the page is idle."""
    wait_idle(page, timeout_ms)
    link = page.locator('[data-testid="stSidebarNav"] a', has_text=label).first
    title = page.get_by_role("heading", name=PAGE_TITLES.get(label, label), exact=True).first
    started = time.perf_counter()
    for _ in range(3):
        link.click()
        try:
            title.wait_for(timeout=10_000)
            break
        except Exception:  # noqa: BLE001 - the click landed during a rerun; try once more
            continue
    return wait_idle(page, timeout_ms) - started


def login(page, url: str, name: str, password: str, timeout_ms: int = 60_000) -> None:
    """Log in through the app's own form (a fresh browser context has no session)."""
    page.goto(url)
    page.get_by_label("User name").wait_for(timeout=timeout_ms)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").last.click()
    wait_idle(page, timeout_ms)
