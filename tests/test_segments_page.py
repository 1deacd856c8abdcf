"""Segments page through AppTest: segments computed on first visit, charts, trend, drill-down."""
from __future__ import annotations

from fraudlab import segments
from fraudlab.workspace import Workspace


def test_segments_page_segments_and_draws(app_test, app_workspace):
    at = app_test("pages/segments.py")
    assert not at.exception, at.exception
    ws = Workspace(app_workspace)
    assert segments.has_segments(ws)
    n = len(segments.segment_names(ws))
    ws.close()
    assert at.metric[0].value == str(n)
    assert len(at.get("plotly_chart")) >= 6  # sizes, fraud, losses, alerts, profiles, weekly (+ slope, drivers)
    assert len(at.get("download_button")) >= 5  # summary, profiles, weekly, risk trend, members
    assert any("rising fastest" in w.value for w in at.warning)
    at.selectbox[0].select(1)
    at.run()
    assert not at.exception, at.exception
