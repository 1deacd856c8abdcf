"""End-to-end (Chromium): log in as an analyst, decide a case, see that Models cannot promote, log out; a wrong
password is refused; single sign-on against a local OpenID Connect provider started by the test."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest
from e2e_support import (  # noqa: F401
    ARTIFACTS,
    TEAM,
    add_team,
    assert_no_exception,
    browser,
    open_page,
    page,
    start,
    team_url,
    wait_idle,
)

from fraudlab.auth import users
from fraudlab.auth.actors import Actor
from fraudlab.browser import free_port, serve_app
from fraudlab.workspace import Workspace, copy_workspace

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_analyst_logs_in_decides_a_case_cannot_promote_and_logs_out(page, team_url):
    page.goto(team_url)
    page.get_by_label("User name").wait_for(timeout=60_000)
    assert page.get_by_role("link", name="Case queue").count() == 0  # nothing before login
    page.get_by_label("User name").fill("e2e-analyst")
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Log in").last.click()
    page.get_by_text("Wrong user name or password").wait_for(timeout=30_000)
    assert_no_exception(page, "auth_01_wrong_password")

    dialogs = start(page, team_url, "Case queue", user="e2e-analyst")
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert "e2e-analyst" in sidebar.inner_text() and "Analyst" in sidebar.inner_text()
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Load data" not in nav and "Users" not in nav and "Feature lab" not in nav
    page.get_by_role("button", name="Take the next case").click()
    page.get_by_role("heading", name="Why it was flagged").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_text("fraud", exact=True).first.click()
    page.get_by_placeholder("What you checked and why").fill("card testing from a new device")
    page.get_by_role("button", name="Record decision").click()
    wait_idle(page)
    page.get_by_text("e2e-analyst · fraud").first.wait_for(timeout=30_000)  # recorded under the proven name
    assert_no_exception(page, "auth_02_analyst_decided")

    open_page(page, team_url, "Models")
    page.get_by_text("cannot roll back models").wait_for(timeout=30_000)  # the champion is shown: read only
    assert page.get_by_role("button", name="Train challenger").count() == 0
    assert page.get_by_role("button", name="Promote").count() == 0
    assert_no_exception(page, "auth_03_models_read_only")

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("User name").wait_for(timeout=30_000)
    page.get_by_role("link", name="Case queue").wait_for(state="detached", timeout=30_000)  # nothing after logout
    assert not dialogs
    assert_no_exception(page, "auth_04_logged_out")


@pytest.fixture()
def oidc_provider():
    """oidc-provider-mock on a free loopback port with one predefined person."""
    port = free_port()
    claims = {"sub": "kim", "email": "kim@bank.example", "fraudlab_role": "reviewer"}
    proc = subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--port", str(port),
                             "--user-claims", json.dumps(claims)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(f"{url}/.well-known/openid-configuration", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the local OpenID provider did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_single_sign_on_against_a_local_openid_provider(page, tmp_path, ready_workspace_file, oidc_provider):
    ws_path = tmp_path / "workspace.duckdb"
    copy_workspace(ready_workspace_file, ws_path)
    add_team(ws_path)
    ws = Workspace(ws_path)
    users.add_user(ws, Actor("e2e-admin", "admin"), "kim@bank.example", "reviewer", None)  # single sign-on only
    ws.close()
    port = free_port()
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f"""[auth]
redirect_uri = "http://127.0.0.1:{port}/oauth2callback"
cookie_secret = "{'e2e-cookie-secret-' * 3}"
client_id = "fraudlab"
client_secret = "fraudlab-secret"
server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"
""")
    log = ARTIFACTS / "streamlit-oidc.log"
    ARTIFACTS.mkdir(exist_ok=True)
    with serve_app(ws_path, log, ("--secrets.files", str(secrets)), port=port) as url:
        page.goto(url)
        page.get_by_role("button", name="Log in with single sign-on").click()
        page.locator('button[value="kim"]').or_(page.locator('input[name="sub"]')).first.wait_for(timeout=60_000)
        if page.locator('button[value="kim"]').count():
            page.locator('button[value="kim"]').click()
        else:
            page.locator('input[name="sub"]').first.fill("kim")
            page.locator('button[type="submit"]').first.click()
        page.wait_for_url(f"{url}/**", timeout=60_000)
        wait_idle(page)
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert "kim@bank.example" in sidebar and "Reviewer" in sidebar
        assert_no_exception(page, "auth_05_single_sign_on")
        open_page(page, url, "Case queue")
        page.get_by_role("button", name="Take the next case").click()
        page.get_by_role("heading", name="Why it was flagged").wait_for(timeout=60_000)
        wait_idle(page)
    ws = Workspace(ws_path)
    try:  # the case lock was taken in the name the provider proved, not a typed one
        taken = ws.df("SELECT who, role, via FROM audit WHERE action = 'case_taken'")
        assert taken.values.tolist() == [["kim@bank.example", "reviewer", "oidc"]]
    finally:
        ws.close()
