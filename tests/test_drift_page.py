"""AppTest of the Drift page over a private ready workspace: first visit runs a report, verdict and tables show,
a second run with options is saved and both can be compared."""
from __future__ import annotations

from people import scientist

from fraudlab import drift
from fraudlab.workspace import Workspace


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [s.value for s in at.success] + [w.value for w in at.warning]
    parts += [e.value for e in at.error] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def test_first_visit_runs_a_report_and_shows_verdict_table_and_downloads(app_test, app_workspace):
    at = app_test("pages/drift.py")
    assert not at.exception, at.exception
    text = _texts(at)
    assert "Recommended:" in text
    assert "Run 1" in text
    frames = [d.value for d in at.dataframe]
    columns = next(f for f in frames if "Statistic" in f.columns)
    assert {"Column", "Test", "Statistic", "Threshold", "Status"} <= set(columns.columns)  # plain labels
    assert "amount" in set(columns["Column"])
    assert columns.loc[columns["Column"] == "amount", "Status"].iloc[0] == "drift"
    assert not columns["P adj"].astype(str).str.contains("e-").any()  # p-values read as "< 0.001"
    findings = next(f for f in frames if "Recommendation" in f.columns)
    assert "gradual" in set(findings.loc[findings["Column"] == "amount", "Kind"])
    assert len(at.get("plotly_chart")) >= 3
    labels = [b.label for b in at.get("download_button")]
    assert "Download HTML report" in labels and "Download column table (CSV)" in labels
    assert any("No late arrivals recorded" in i.value for i in at.info)  # the sample was loaded in one piece
    ws = Workspace(app_workspace)
    assert drift.list_runs(ws)["run_id"].tolist() == [1]
    ws.close()


def test_second_run_with_options_is_saved_and_runs_can_be_compared(app_test, app_workspace):
    at = app_test("pages/drift.py")
    at.toggle[0].set_value(True)  # thresholds from reference days
    at.toggle[1].set_value(False)  # no multivariate checks: faster
    at.multiselect[1].set_value(["device_id"])  # leave one column out
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert "Run 2" in _texts(at)
    frames = [d.value for d in at.dataframe]
    columns = next(f for f in frames if "Statistic" in f.columns)
    assert "device_id" not in set(columns["Column"])
    compared = next(f for f in frames if "run 1" in f.columns and "run 2" in f.columns)
    assert "amount" in set(compared["column"])


def test_picking_a_column_shows_its_distribution(app_test):
    at = app_test("pages/drift.py")
    box = next(s for s in at.selectbox if s.label == "Column")
    box.set_value("country")
    at.run()
    assert not at.exception, at.exception


def test_windows_by_ingest_run_and_an_empty_pick_is_explained(app_test):
    at = app_test("pages/drift.py")
    at.radio[0].set_value("By ingest")
    at.run()
    assert not at.exception, at.exception
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert "Run 2" in _texts(at) and "ingests" in _texts(at)
    at.multiselect[0].set_value([])
    at.run()
    assert "Pick at least one ingest" in _texts(at)


def test_late_arrivals_show_as_a_share_per_event_day(app_test, app_workspace):
    import pandas as pd

    from fraudlab.incremental import record_arrivals
    from fraudlab.ingest import ingest_table

    ws = Workspace(app_workspace)
    newest = ws.df("SELECT * EXCLUDE (ingest_id) FROM transactions ORDER BY ts DESC, transaction_id LIMIT 4")
    late = newest.assign(transaction_id=[f"late-{i}" for i in range(4)],
                         ts=newest["ts"] - pd.to_timedelta([2, 3, 72, 96], unit="h"))  # two within 24 h, two beyond
    report = ingest_table(ws, late, source="a late file")
    marked = record_arrivals(ws, report.ingest_id, 24)
    ws.close()
    assert (marked.late, marked.beyond) == (2, 2)
    at = app_test("pages/drift.py", actor=scientist())  # a loaded file ends the demo session: someone logs in
    assert not at.exception, at.exception
    assert not any("No late arrivals recorded" in i.value for i in at.info)
    chart = next(c for c in at.get("plotly_chart") if "Late arrivals per event day" in c.proto.spec)
    assert "Late, beyond the horizon" in chart.proto.spec
    table = next(d.value for d in at.dataframe if "Late share" in d.value.columns)
    assert {"Event day", "Transactions", "Late rows", "Beyond the horizon"} <= set(table.columns)
    assert table["Late rows"].sum() == 2 and table["Beyond the horizon"].sum() == 2
