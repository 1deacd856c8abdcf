"""Shared end-to-end support: serve the real app over a prepared workspace, drive Debian's headless Chromium.

Each e2e test file imports the fixtures it needs: `from e2e_support import app_url, browser, page, wait_idle, ...`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from fraudlab.auth import users
from fraudlab.browser import CHROMIUM, chromium, login, open_page, serve_app, wait_idle  # noqa: F401 (re-exported)
from fraudlab.workspace import Workspace, copy_workspace

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def _serve(tmp_path_factory, ready_workspace_file, name: str, prepare=None):
    """Serve the app on 127.0.0.1 over a copy of the ready workspace (prepared further if asked); yields its URL."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (CI installs it with apt-get)")
    ws_path = tmp_path_factory.mktemp(name) / "workspace.duckdb"
    copy_workspace(ready_workspace_file, ws_path)
    if prepare is not None:
        prepare(ws_path)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve_app(ws_path, ARTIFACTS / f"streamlit-{ws_path.parent.name}.log") as url:
        yield url


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, ready_workspace_file):
    """The app over the workspace the first-start routine prepared: a demo session, no login."""
    yield from _serve(tmp_path_factory, ready_workspace_file, "e2e")


# Accounts of the team workspace: name → (role, password).
TEAM = {"e2e-admin": ("admin", "e2e admin password"), "e2e-analyst": ("analyst", "e2e analyst password"),
        "e2e-reviewer": ("reviewer", "e2e reviewer password")}


def add_team(ws_path: Path) -> None:
    """Create the TEAM accounts in a workspace file (the first is the admin who adds the others)."""
    ws = Workspace(ws_path)
    try:
        first = None
        for name, (role, password) in TEAM.items():
            users.add_user(ws, first, name, role, password)
            first = first or users.authenticate(ws, name, password)
    finally:
        ws.close()


@pytest.fixture(scope="module")
def team_url(tmp_path_factory, ready_workspace_file):
    """The app over a copy of the ready workspace that has accounts: everyone logs in."""
    yield from _serve(tmp_path_factory, ready_workspace_file, "e2e_team", add_team)


@pytest.fixture(scope="module")
def browser():
    with chromium() as chromium_browser:
        yield chromium_browser


@pytest.fixture()
def page(browser, request):
    """A fresh browser page; when the test fails, its screenshot and text land in test-artifacts/failed_*."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = f"failed_{request.node.name}"
        pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        (ARTIFACTS / f"{name}.txt").write_text(pg.locator("body").inner_text())
    context.close()




def assert_no_exception(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, f"{name}: Streamlit exception shown: {errors.first.inner_text()[:500]}"


def start(page, url: str, label: str | None = None, user: str | None = None) -> list[str]:
    """Open the app (logged in as a TEAM user if given, and on a page); returns the list that collects any
    JavaScript dialog, which must stay empty."""
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    if user:
        login(page, url, user, TEAM[user][1])
    else:
        page.goto(url)
        wait_idle(page)
    if label:
        open_page(page, url, label)
    return dialogs
