"""Overview page through AppTest: headline numbers, daily chart with alerts, sidebar facts."""
from __future__ import annotations

from fraudlab.overview import daily_activity, workspace_summary
from fraudlab.workspace import Workspace


def test_overview_shows_workspace_numbers_and_alerts(app_test, app_workspace):
    at = app_test()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert "Transactions" in labels and "Alerts at the current threshold" in labels
    assert at.metric[0].value == "100,000"
    assert any("transactions" in m.value for m in at.sidebar.markdown)
    ws = Workspace(app_workspace)
    daily = daily_activity(ws, 0.5)
    assert daily["transactions"].sum() == workspace_summary(ws).rows == 100_000
    assert daily["alerts"].sum() > 0
    ws.close()
