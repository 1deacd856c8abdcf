"""End-to-end (Chromium): open "Load data", load a small CSV with bad rows by server path, read the report."""
from __future__ import annotations

import pytest

from e2e_support import app_url, assert_no_exception, browser, open_page, page, wait_idle  # noqa: F401
from fraudlab.generate import simulate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def bad_csv(tmp_path_factory):
    """200 simulated rows with new ids; 3 unparsable amounts, 1 negative amount, 1 unparsable time."""
    tx = simulate(rows=200, seed=9, days=30).transactions.copy()
    tx["transaction_id"] = "E2E-" + tx["transaction_id"]
    tx["amount"] = tx["amount"].astype(object)
    tx.loc[:2, "amount"] = "12,5O"
    tx.loc[3, "amount"] = -4
    tx["ts"] = tx["ts"].astype(str)
    tx.loc[4, "ts"] = "<script>alert(1)</script>"
    path = tmp_path_factory.mktemp("e2e_data") / "bad_rows.csv"
    tx.to_csv(path, index=False)
    return path


def test_load_a_csv_by_path_and_see_the_validation_report(page, app_url, bad_csv):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(app_url)
    wait_idle(page)
    open_page(page, app_url, "Load data")
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
