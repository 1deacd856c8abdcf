"""The Load data page and the home page through streamlit.testing AppTest, over a private ready workspace."""
from __future__ import annotations

import pandas as pd
import pytest
from conftest import APP_PATH, csv_with_bad_rows
from people import admin
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    """300 simulated rows with new ids; rows 0-4 have an unparsable amount, row 5 a negative one."""
    return csv_with_bad_rows(tmp_path_factory.mktemp("page") / "small.csv", 300, 3, "UP-", unparsable=5)


def open_data_page(app_workspace) -> AppTest:
    at = AppTest.from_file(APP_PATH, default_timeout=120)
    at.session_state["fraudlab_actor"] = admin("ada")  # loading data is for admins (a demo session may not)
    at.run()
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def selectbox(at: AppTest, label: str):
    return next(s for s in at.selectbox if s.label == label)


def test_home_page_shows_the_workspace(app_workspace):
    at = AppTest.from_file(APP_PATH, default_timeout=120)
    at.run()
    assert not at.exception
    assert at.title[0].value == "fraudlab"
    assert metrics(at)["Transactions"] == "100,000"
    assert any("Daily activity" == s.value for s in at.subheader)


def test_data_page_opens_with_the_history_of_the_first_load(app_workspace):
    at = open_data_page(app_workspace)
    assert at.title[0].value == "Load data"
    assert any("Type a path or glob" in i.value for i in at.info)
    assert metrics(at)["Rows read"] == "100,000" and metrics(at)["Quarantined"] == "0"
    assert any("Every row passed validation" in s.value for s in at.success)
    history = at.dataframe[-1].value
    assert len(history) == 1 and history["engine"].iloc[0] == "duckdb"


def test_load_a_csv_by_path_and_see_the_validation_report(app_workspace, small_csv):
    at = open_data_page(app_workspace)
    at.text_input(key="data_source").input(str(small_csv)).run()
    assert not at.exception and not at.error
    sample, columns = at.dataframe[0].value, at.dataframe[1].value
    assert len(sample) == 10 and "UP-T0000000001" in sample["transaction_id"].tolist()
    assert columns.set_index("column").loc["amount", "mapped_to"] == "amount"
    assert selectbox(at, "ts *").value == "ts" and selectbox(at, "amount *").value == "amount"
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert any("loaded 294 of 300 rows; 6 quarantined" in s.value for s in at.success)
    m = metrics(at)
    assert (m["Rows read"], m["Loaded"], m["Quarantined"]) == ("300", "294", "6")
    bad = at.dataframe[2].value
    assert set(bad["reason"].str.split(":").str[0]) == {"unparsable amount", "negative amount"}
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("download_button")) == 1
    history = at.dataframe[-1].value
    assert len(history) == 2 and history["rows_quarantined"].tolist() == [6, 0]
    assert history["rows_loaded"].sum() == 100_294


def test_loading_the_same_file_again_adds_nothing(app_workspace, small_csv):
    at = open_data_page(app_workspace)
    at.text_input(key="data_source").input(str(small_csv)).run()
    at.button[0].click().run()
    at.button[0].click().run()
    assert not at.exception
    assert any("already loaded" in s.value for s in at.success)
    assert len(at.dataframe[-1].value) == 2


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"", "empty"),
    (bytes(range(256)) * 8, "binary"),
    (b"transaction_id,ts,amount\n", "no data rows"),
])
def test_unreadable_sources_show_a_clear_error_not_a_traceback(app_workspace, tmp_path, content, message):
    path = tmp_path / "input.csv"
    if content is not None:
        path.write_bytes(content)
    at = open_data_page(app_workspace)
    at.text_input(key="data_source").input(str(path)).run()
    assert not at.exception
    assert message in at.error[0].value and "input.csv" in at.error[0].value


def test_correct_the_mapping_by_hand(app_workspace, tmp_path):
    path = tmp_path / "odd.csv"
    pd.DataFrame({"ref": ["o1", "o2"], "when": [3600, 7200], "howmuch": [10.0, 20.0], "who": ["a", "b"]}).to_csv(
        path, index=False)
    at = open_data_page(app_workspace)
    at.text_input(key="data_source").input(str(path)).run()
    selectbox(at, "amount *").select("howmuch").run()
    selectbox(at, "ts *").select("—").run()
    at.button[0].click().run()
    assert not at.exception and "required ts" in at.error[0].value  # MappingError shown, nothing loaded
    selectbox(at, "ts *").select("when").run()
    selectbox(at, "transaction_id").select("ref").run()
    selectbox(at, "Time column holds").select("seconds since an origin").run()
    next(t for t in at.text_input if t.label.startswith("Origin")).input("2025-06-01 00:00:00").run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert metrics(at)["Loaded"] == "2"


def test_preset_picker_maps_a_public_layout(app_workspace, tmp_path):
    path = tmp_path / "paysim.csv"
    pd.DataFrame({"step": [1, 2], "type": ["PAYMENT", "TRANSFER"], "amount": [9.5, 181.0],
                  "nameOrig": ["C1", "C2"], "nameDest": ["M1", "C3"], "isFraud": [0, 1]}).to_csv(path, index=False)
    at = open_data_page(app_workspace)
    at.text_input(key="data_source").input(str(path)).run()
    assert selectbox(at, "customer_id").value == "nameOrig"
    selectbox(at, "Layout preset").select("mobile money (step, nameOrig, isFraud)").run()
    assert selectbox(at, "Time column holds").value == "hours (steps) since an origin"
    at.button[0].click().run()
    assert not at.exception and metrics(at)["Loaded"] == "2"


def test_extra_columns_are_kept_aside_unless_chosen_on_the_page(app_workspace, tmp_path):
    from fraudlab.workspace import Workspace

    path = tmp_path / "extras.csv"
    pd.DataFrame({"transaction_id": ["x1", "x2"], "ts": ["2026-01-01 10:00:00", "2026-01-01 11:00:00"],
                  "amount": [5.0, 6.0], "risk_score": [0.5, 0.7], "memo": ["a", "b"]}).to_csv(path, index=False)
    at = open_data_page(app_workspace)
    at.text_input(key="data_source").input(str(path)).run()
    picker = next(m for m in at.multiselect if m.label.startswith("Add these extra columns to the transactions"))
    assert set(picker.options) == {"risk_score", "memo"} and picker.value == []
    picker.select("risk_score").run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert any("1 unmapped column(s) kept aside" in i.value and "memo" in i.value for i in at.info)
    ws = Workspace(app_workspace)
    try:
        assert "risk_score" in ws.columns("transactions") and "memo" not in ws.columns("transactions")
        assert ws.df("SELECT transaction_id, value FROM transaction_extras WHERE column_name = 'memo' "
                     "ORDER BY 1").values.tolist() == [["x1", "a"], ["x2", "b"]]
    finally:
        ws.close()


def test_a_load_past_its_cap_shows_a_clear_message_and_changes_nothing(app_workspace, small_csv, monkeypatch):
    from fraudlab.workspace import Workspace

    at = open_data_page(app_workspace)
    at.text_input(key="data_source").input(str(small_csv)).run()
    monkeypatch.setenv("FRAUDLAB_JOB_CAP_SECONDS", "0.05")
    next(b for b in at.button if b.label == "Load").click().run()
    assert not at.exception
    message = at.error[0].value
    assert "the load ran past its cap of 0.05 s (FRAUDLAB_JOB_CAP_SECONDS)" in message
    assert "Nothing was kept" in message or "Rolled back" in message
    ws = Workspace(app_workspace)
    try:
        assert ws.count("ingests") == 1 and ws.count("transactions") == 100_000
    finally:
        ws.close()
