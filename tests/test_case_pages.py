"""Queue and case pages through AppTest: ranking shown, a case opened, reasons read, a decision recorded."""
from __future__ import annotations

from people import analyst

from fraudlab import cases
from fraudlab.workspace import Workspace


def test_queue_page_ranks_cases_and_shows_the_budget(app_test, app_workspace):
    at = app_test("pages/queue.py")
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert {"Cases", "Alerts", "Alerts per day", "Daily alert budget"} <= set(labels)
    table = at.dataframe[0].value
    assert len(table) == cases.PAGE_SIZE
    assert table["Score"].is_monotonic_decreasing and (table["Alerts"] >= 1).all()
    cards = table["Card"][table["Card"] != ""]
    assert cards.str.startswith("••••").all()
    assert not any("_" in c for c in table.columns)  # plain labels, never snake_case
    assert not table.astype(str).isin(["None", "nan", "NaT"]).any().any()


def test_queue_filters_come_from_the_url_so_a_shared_link_shows_the_same_view(app_test, app_workspace):
    at = app_test("pages/queue.py", query={"status": "open", "sort": "expected_loss"})
    assert not at.exception, at.exception
    assert at.multiselect(key="q_status").value == ["open"] and at.selectbox(key="q_sort").value == "expected_loss"
    table = at.dataframe[0].value
    assert table["Expected loss"].is_monotonic_decreasing


def test_case_page_shows_reasons_and_records_a_decision(app_test, app_workspace):
    ws = Workspace(app_workspace)
    top = cases.queue(ws)[0]["case_id"].iloc[0]
    ws.close()
    at = app_test()
    at.session_state["case_id"] = top
    at.switch_page("pages/case.py")
    at.run()
    assert not at.exception, at.exception
    assert any(m.label == "Score" for m in at.metric)
    assert len(at.markdown) >= 3
    assert at.radio[0].value is None  # no decision is preselected
    at.radio[0].set_value("fraud")
    at.text_area[0].input("<script>alert(1)</script> card testing burst")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    ws = Workspace(app_workspace)
    history = cases.decision_history(ws, top)
    assert history["decision"].tolist() == ["fraud"]
    assert history["note"].iloc[0].startswith("<script>")  # stored verbatim, shown as text
    assert ws.scalar("SELECT is_fraud FROM labels WHERE transaction_id = ? AND source = 'analyst'", [top])
    ws.close()


def test_case_page_without_a_case_points_to_the_queue(app_test):
    at = app_test("pages/case.py")
    assert not at.exception
    assert any("Case queue" in i.value for i in at.info)


def test_customer_view_and_team_pages_read_a_customer_and_the_team(app_test, app_workspace):
    ws = Workspace(app_workspace)
    top = cases.queue(ws)[0].iloc[0]
    cases.decide(ws, top["case_id"], "fraud", analyst("ana"), close_reason="card testing")
    ws.close()
    at = app_test("pages/customer.py", query={"customer": top["customer_id"]})
    assert not at.exception, at.exception
    assert {"Payments", "Cases", "Alerts"} <= {m.label for m in at.metric}
    tables = [d.value for d in at.dataframe]
    assert any("Close reason" in t.columns and "card testing" in set(t["Close reason"]) for t in tables)
    team = app_test("pages/team.py")
    assert not team.exception, team.exception
    per_analyst = next(d.value for d in team.dataframe if "Analyst" in d.value.columns)
    assert per_analyst.set_index("Analyst").loc["ana", "Decisions"] == 1
