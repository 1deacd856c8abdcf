"""End-to-end (Chromium): open Fraud rings, select the top ring in the ranked table, see its graph drawn."""
from __future__ import annotations

import pytest
from e2e_support import app_url, assert_no_exception, browser, open_page, page, start, wait_idle  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROW_HEIGHT = 35  # st.dataframe header and row height in px


def _click_row(page, table, row: int) -> None:
    """Click the selection cell of a data row (0 = first) of a canvas-drawn st.dataframe."""
    box = table.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + ROW_HEIGHT * (row + 1) + ROW_HEIGHT / 2)
    wait_idle(page)


def test_open_the_top_ring(page, app_url):
    dialogs = start(page, app_url, "Fraud rings")
    page.get_by_role("heading", name="Ranked rings").wait_for(timeout=60_000)
    assert_no_exception(page, "rings_01_list")
    table = page.locator('[data-testid="stDataFrame"]:visible').first  # the hubs table sits in a closed expander
    table.locator("canvas").first.wait_for(timeout=60_000)
    table.scroll_into_view_if_needed()
    page.wait_for_timeout(1_000)
    _click_row(page, table, 1)  # the second ring, to see the selection drive the page
    page.get_by_text("Ring 2 ·").first.wait_for(timeout=60_000)
    _click_row(page, table, 1)  # unselect
    _click_row(page, table, 0)  # the top ring
    page.get_by_text("Ring 1 ·").first.wait_for(timeout=60_000)
    frame = page.frame_locator('[data-testid="stIFrame"], iframe').first
    frame.locator("#mynetwork canvas").first.wait_for(timeout=60_000)  # vis.js drew the graph
    assert page.get_by_text("shared identifiers").count() >= 1
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 2  # score parts + timeline
    assert not dialogs
    assert_no_exception(page, "rings_02_top_ring")
    page.locator("iframe").first.scroll_into_view_if_needed()
    page.wait_for_timeout(3_000)  # physics settles
    assert_no_exception(page, "rings_03_graph")
    # a member's top case opens in Case detail
    members = page.locator('[data-testid="stDataFrame"]:visible').nth(1)
    members.scroll_into_view_if_needed()
    members.locator("canvas").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1_000)
    _click_row(page, members, 0)
    page.get_by_role("button", name="Open this member's top case").click()
    page.get_by_role("heading", name="Why it was flagged").wait_for(timeout=60_000)
    wait_idle(page)
    assert_no_exception(page, "rings_04_member_case")
