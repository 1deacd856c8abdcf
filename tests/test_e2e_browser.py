"""End-to-end: the real app served by `streamlit run app.py`, driven in Debian's headless Chromium."""
from __future__ import annotations

import pytest
from e2e_support import app_url, assert_no_exception, browser, open_page, page, wait_idle  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_home_and_sidebar_render_with_workspace_facts(page, app_url):
    page.goto(app_url)
    wait_idle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert "transactions" in sidebar.inner_text()
    assert page.get_by_text("Daily activity", exact=True).count() == 1
    assert_no_exception(page, "01_home")


def test_every_page_opens_without_error(page, app_url):
    page.goto(app_url)
    wait_idle(page)
    for label in ("Load data", "Case queue", "Fraud rings", "Segments", "Drift", "Models", "Case detail"):
        seconds = open_page(page, app_url, label)
        assert_no_exception(page, f"page_{label.replace(' ', '_').lower()}")
        assert seconds < 30, f"{label} took {seconds:.1f} s"
