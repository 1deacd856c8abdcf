"""End-to-end (Chromium): open "Load data", load a small CSV with bad rows by server path, read the report."""
from __future__ import annotations

import pytest
from conftest import csv_with_bad_rows
from e2e_support import app_url, assert_no_exception, browser, open_page, page, start, team_url, wait_idle  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def bad_csv(tmp_path_factory):
    """200 simulated rows with new ids; 3 unparsable amounts, 1 negative amount, 1 unparsable time."""
    return csv_with_bad_rows(tmp_path_factory.mktemp("e2e_data") / "bad_rows.csv", 200, 9, "E2E-", unparsable=3,
                             bad_time="<script>alert(1)</script>")


def test_load_a_csv_by_path_and_see_the_validation_report(page, team_url, bad_csv):
    dialogs = start(page, team_url, "Load data", user="e2e-admin")  # loading data is for admins
    assert page.get_by_role("heading", name="Load data").count() == 1
    box = page.get_by_label("Path or glob on the server")
    box.fill(str(bad_csv))
    box.press("Enter")
    wait_idle(page)
    assert page.get_by_text("Column mapping").count() >= 1
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text("loaded 195 of 200 rows; 5 quarantined").wait_for(timeout=60_000)
    wait_idle(page)
    report = page.locator('[data-testid="stMetric"]')
    texts = " | ".join(report.all_inner_texts())
    assert "Rows read" in texts and "200" in texts and "195" in texts
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1
    assert page.get_by_role("button", name="Download the quarantine (CSV)").count() == 1
    assert not dialogs  # the hostile time string was stored as text, never run
    assert_no_exception(page, "data_load_report")


def test_a_path_outside_the_data_folders_is_refused_and_never_previewed(page, app_url):
    start(page, app_url, "Load data")
    assert page.get_by_text("Only files inside the data folders can be read").count() == 1
    box = page.get_by_label("Path or glob on the server")
    for typed in ("/etc/passwd", "../../../../etc/passwd", "/**/*.csv"):
        box.fill(typed)
        box.press("Enter")
        wait_idle(page)
        alert = page.locator('[data-testid="stAlertContentError"]')
        assert "Only files inside the data folders can be loaded" in alert.first.inner_text()
        assert page.get_by_text("root:x:0:0").count() == 0
        assert page.get_by_role("heading", name="Preview").count() == 0
    assert_no_exception(page, "data_refused_path")
