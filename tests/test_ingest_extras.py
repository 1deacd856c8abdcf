"""Unmapped source columns never widen `transactions` without consent: they are kept aside in `transaction_extras`.

A chosen column (keep_columns / --keep-column / the Load data page's choice) widens `transactions` as before.
"""
from __future__ import annotations

import pandas as pd
import pytest

from fraudlab.errors import IngestError
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_path, quarantine_rows
from fraudlab.schema import ColumnMapping
from fraudlab.workspace import Workspace

WIDTH = 19  # canonical columns + ingest_id


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """300 simulated rows (no id column) with 100 extra columns, one bad amount; as a CSV file."""
    tx = simulate(rows=300, seed=3, days=10).transactions.drop(columns=["transaction_id", "label_ts"])
    extras = pd.DataFrame({f"attr{k}": (tx["amount"] * k).round(2) if k % 2 else "v" + str(k)
                           for k in range(100)}, index=tx.index)
    frame = pd.concat([tx, extras], axis=1)
    frame["amount"] = frame["amount"].astype(object)
    frame.loc[frame.index[4], "amount"] = "-5"
    path = tmp_path_factory.mktemp("wide") / "wide.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _side(ws: Workspace) -> int:
    return int(ws.scalar("SELECT count(*) FROM transaction_extras"))


def test_100_extra_columns_are_kept_aside_and_transactions_keep_their_width(empty_ws, wide):
    path, frame = wide
    report = ingest_path(empty_ws, path)
    assert report.rows_loaded == len(frame) - 1 and report.rows_quarantined == 1
    assert len(empty_ws.columns("transactions")) == WIDTH
    assert _side(empty_ws) == 100 * report.rows_loaded  # every value of every good row, none of the bad one
    got = empty_ws.df("SELECT e.value, t.amount FROM transaction_extras e JOIN transactions t USING (transaction_id) "
                      "WHERE column_name = 'attr7'")
    assert (got["value"].astype(float) - (got["amount"] * 7).round(2)).abs().max() < 0.011
    assert set(empty_ws.df("SELECT DISTINCT value FROM transaction_extras WHERE column_name = 'attr8'")["value"]) \
        == {"v8"}
    assert quarantine_rows(empty_ws, report.ingest_id)["reason"].tolist() == ["negative amount: -5"]
    assert any("100 unmapped column(s) kept aside in the table transaction_extras" in n and "--keep-column" in n
               for n in report.notes)


def test_chosen_columns_widen_transactions_and_the_rest_stay_aside(empty_ws, wide):
    path, frame = wide
    report = ingest_path(empty_ws, path, keep_columns=["attr1", "attr2"])
    types = dict(empty_ws.df("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'transactions'").values.tolist())
    assert len(types) == WIDTH + 2 and types["attr1"] == "DOUBLE" and types["attr2"] == "VARCHAR"
    assert empty_ws.scalar("SELECT count(DISTINCT column_name) FROM transaction_extras") == 98
    assert _side(empty_ws) == 98 * report.rows_loaded
    assert any("2 extra column(s) added to the transactions" in n for n in report.notes)


def test_reloading_adds_no_side_rows_whatever_was_chosen(empty_ws, wide, tmp_path):
    path, frame = wide
    first = ingest_path(empty_ws, path)
    side, rows = _side(empty_ws), empty_ws.count("transactions")
    assert ingest_path(empty_ws, path).status == "skipped"
    crlf = tmp_path / "wide_crlf.csv"
    crlf.write_bytes(path.read_bytes().replace(b"\n", b"\r\n") + b"\r\n")
    again = ingest_path(empty_ws, crlf, keep_columns=["attr1"])  # same content ids: the choice is not part of them
    assert again.rows_loaded == 0 and again.rows_quarantined == first.rows_read
    assert _side(empty_ws) == side and empty_ws.count("transactions") == rows


def test_more_than_64_chosen_columns_widen_64_and_keep_the_rest_aside(empty_ws, wide):
    path, _ = wide
    report = ingest_path(empty_ws, path, keep_columns="all")
    columns = empty_ws.columns("transactions")
    assert len(columns) == WIDTH + 64 and "attr63" in columns and "attr64" not in columns
    assert empty_ws.scalar("SELECT count(DISTINCT column_name) FROM transaction_extras") == 36
    assert any("64 extra column(s) added" in n for n in report.notes)


def test_side_table_caps_are_noted(empty_ws, wide, monkeypatch):
    path, _ = wide
    monkeypatch.setattr("fraudlab.ingest.extras.MAX_SIDE_COLUMNS", 10)
    monkeypatch.setattr("fraudlab.ingest.extras.MAX_SIDE_VALUES", 1_000)
    report = ingest_path(empty_ws, path)
    assert any("90 unmapped column(s) beyond the first 10 kept aside were not loaded" in n for n in report.notes)
    assert any("7 kept-aside column(s) were not stored" in n and "attr3" in n for n in report.notes)
    assert empty_ws.scalar("SELECT count(DISTINCT column_name) FROM transaction_extras") == 3
    assert len(empty_ws.columns("transactions")) == WIDTH


def test_a_column_not_in_the_source_is_refused_and_nothing_loads(empty_ws, wide):
    path, _ = wide
    with pytest.raises(IngestError, match="not in the source: nope"):
        ingest_path(empty_ws, path, keep_columns=["nope"])
    assert empty_ws.count("transactions") == 0 and empty_ws.count("ingests") == 0


def test_card_numbers_kept_aside_are_masked(empty_ws, tmp_path):
    path = tmp_path / "cards.csv"
    path.write_text("id,ts,amount,card_number,memo\n"
                    "c1,2026-01-01 10:00:00,5,4111111111111111,hello\nc2,2026-01-01 11:00:00,6,5500005555555559,\n")
    ingest_path(empty_ws, path, ColumnMapping({"transaction_id": "id", "ts": "ts", "amount": "amount"}))
    got = empty_ws.df("SELECT transaction_id, column_name, value FROM transaction_extras ORDER BY 1, 2")
    assert got.values.tolist() == [["c1", "card_number", "•••• 1111"], ["c1", "memo", "hello"],
                                   ["c2", "card_number", "•••• 5559"]]


def test_cli_keep_column(tmp_path, wide, capsys):
    from fraudlab.cli import main

    path, _ = wide
    ws_path = tmp_path / "cli.duckdb"
    assert main(["ingest", str(path), "--workspace", str(ws_path), "--keep-column", "attr1",
                 "--keep-column", "attr3"]) == 0
    assert "98 unmapped column(s) kept aside" in capsys.readouterr().out
    ws = Workspace(ws_path)
    try:
        assert {"attr1", "attr3"} <= set(ws.columns("transactions")) and "attr5" not in ws.columns("transactions")
    finally:
        ws.close()
