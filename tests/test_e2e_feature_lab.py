"""End-to-end (Chromium): a data scientist previews and evaluates a new feature on the Feature lab page."""
from __future__ import annotations

import pytest
from e2e_support import app_url, assert_no_exception, browser, open_page, page, start, wait_idle  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_preview_and_evaluate_a_feature(page, app_url):
    dialogs = start(page, app_url, "Feature lab")
    assert page.get_by_role("heading", name="Feature lab").count() == 1
    page.get_by_role("button", name="Preview on recent rows").click()
    page.get_by_text("Coverage (rows with a value)").first.wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page, "featurelab_01_preview")
    page.get_by_role("button", name="Evaluate on all rows").click()
    page.get_by_text("Information value").first.wait_for(timeout=180_000)
    wait_idle(page)
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1
    assert_no_exception(page, "featurelab_02_evaluated")
    assert not dialogs
