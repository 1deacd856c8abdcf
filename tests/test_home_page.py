"""Overview page through AppTest: headline numbers, daily chart with alerts, sidebar facts."""
from __future__ import annotations

from conftest import APP_PATH

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



def test_the_frame_shows_toasts_kept_for_the_run_after_a_rerun(app_workspace):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP_PATH, default_timeout=120)  # the frame runs first (later AppTest runs skip it)
    at.session_state["pending_toasts"] = ["Recorded 'fraud' on C1"]  # as ui.state.toast_after_rerun leaves them
    at.run()
    assert not at.exception and [t.value for t in at.toast] == ["Recorded 'fraud' on C1"]
    assert "pending_toasts" not in at.session_state  # shown once
