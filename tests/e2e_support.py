"""Shared end-to-end support: serve the real app over a prepared workspace, drive Debian's headless Chromium.

Each e2e test file imports the fixtures it needs: `from e2e_support import app_url, browser, page, wait_idle, ...`.
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

import pytest

from fraudlab.workspace import copy_workspace

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_app(ws_path: Path, log_path: Path, analyst: str = "e2e-analyst") -> Iterator[str]:
    """Run `streamlit run app.py` on 127.0.0.1 over a workspace file; yield its URL once healthy."""
    log = open(log_path, "wb")
    port = _free_port()
    env = dict(os.environ, FRAUDLAB_WORKSPACE=str(ws_path), FRAUDLAB_ANALYST=analyst)
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
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


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, ready_workspace_file):
    """Serve the app on 127.0.0.1 over a copy of the workspace the first-start routine prepared."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (CI installs it with apt-get)")
    ws_path = tmp_path_factory.mktemp("e2e") / "workspace.duckdb"
    copy_workspace(ready_workspace_file, ws_path)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve_app(ws_path, ARTIFACTS / f"streamlit-{ws_path.parent.name}.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as chromium_browser:
        yield chromium_browser


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()


PAGE_TITLES = {"Overview": "fraudlab", "Case queue": "Case queue", "Case detail": "Case detail",
               "Fraud rings": "Fraud rings", "Segments": "Customer segments", "Drift": "Drift", "Models": "Models",
               "Load data": "Load data"}
STATUS = '[data-testid="stStatusWidget"]'


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


def assert_no_exception(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, f"{name}: Streamlit exception shown: {errors.first.inner_text()[:500]}"


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


def start(page, url: str, label: str | None = None) -> list[str]:
    """Open the app (and a page); returns the list that collects any JavaScript dialog, which must stay empty."""
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    wait_idle(page)
    if label:
        open_page(page, url, label)
    return dialogs
