"""The Dask ingest path on a real distributed.LocalCluster: same rows and same quarantine as the DuckDB path."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudlab.cli import main as cli_main
from fraudlab.errors import IngestError
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_history, ingest_path, quarantine_rows
from fraudlab.ingest.dask_engine import ingest_path_dask, plain_main
from fraudlab.workspace import Workspace

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with plain_main():  # AppTest leaves the app script as __main__; workers must not re-run it
        local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with local, Client(local) as client:
        yield local, client


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Three CSV parts with rotated column orders, bad values, a malformed line, hostile text; and Parquet parts."""
    folder = tmp_path_factory.mktemp("dask_src")
    tx = simulate(rows=3_000, seed=5, days=30).transactions.copy()
    tx["amount"] = tx["amount"].astype(object)
    tx.loc[3, "amount"] = "12,5O"
    tx.loc[7, "amount"] = -1
    tx.loc[1200, "amount"] = "inf"
    tx["ts"] = tx["ts"].astype(str)
    tx.loc[11, "ts"] = "not a time"
    tx.loc[1500, "ts"] = "2199-01-01 00:00:00"
    tx.loc[2100, "ts"] = "1985-05-05 00:00:00"
    tx.loc[2500, "transaction_id"] = tx.loc[10, "transaction_id"]  # duplicate across files
    tx["lat"] = tx["lat"].astype(object)
    tx.loc[2600, "lat"] = 123.0
    tx["is_fraud"] = tx["is_fraud"].astype(object)
    tx.loc[2700, "is_fraud"] = "maybe"
    tx.loc[5, "merchant_id"] = "<script>alert(1)</script>"
    tx.loc[6, "merchant_id"] = "'; DROP TABLE transactions; --"
    cols = list(tx.columns)
    for k, part in enumerate(np.array_split(np.arange(len(tx)), 3)):
        tx.iloc[part][cols[k:] + cols[:k]].to_csv(folder / f"part{k}.csv", index=False)
        tx.iloc[part].astype({"amount": str, "lat": str, "is_fraud": str}).to_parquet(
            folder / f"part{k}.parquet", index=False)
    with open(folder / "part1.csv", "a") as handle:
        handle.write("a,malformed,line\n")
    return folder


def _same_as_duckdb_path(tmp_path, pattern: str, client, keep=None) -> tuple[Workspace, Workspace]:
    ws_duck, ws_dask = Workspace(tmp_path / "duck.duckdb"), Workspace(tmp_path / "dask.duckdb")
    expected = ingest_path(ws_duck, pattern, keep_columns=keep)
    got = ingest_path_dask(ws_dask, pattern, client=client, keep_columns=keep)
    assert got.notes == expected.notes
    assert got.engine == "dask" and got.files == expected.files == 3
    assert (got.rows_read, got.rows_loaded, got.rows_quarantined) == (
        expected.rows_read, expected.rows_loaded, expected.rows_quarantined)
    assert got.rows_read == got.rows_loaded + got.rows_quarantined
    assert got.reasons == expected.reasons
    rows = "SELECT * EXCLUDE (ingest_id) FROM transactions ORDER BY transaction_id"
    pd.testing.assert_frame_equal(ws_duck.df(rows), ws_dask.df(rows))
    labels = "SELECT * EXCLUDE (recorded_at) FROM labels ORDER BY transaction_id"  # the wall clock of each load
    pd.testing.assert_frame_equal(ws_duck.df(labels), ws_dask.df(labels))
    side = "SELECT * EXCLUDE (ingest_id) FROM transaction_extras ORDER BY ALL"
    pd.testing.assert_frame_equal(ws_duck.df(side), ws_dask.df(side))
    order = ["row_number", "reason", "raw"]
    q_duck = quarantine_rows(ws_duck)[order].sort_values(order).reset_index(drop=True)
    q_dask = quarantine_rows(ws_dask)[order].sort_values(order).reset_index(drop=True)
    pd.testing.assert_frame_equal(q_duck, q_dask)
    assert ingest_history(ws_dask).iloc[0]["engine"] == "dask"
    return ws_duck, ws_dask


def test_csv_glob_gives_the_same_rows_and_quarantine_as_duckdb(tmp_path, files, cluster):
    _, ws = _same_as_duckdb_path(tmp_path, str(files / "part*.csv"), cluster[1])
    reasons = set(ws.df("SELECT split_part(reason, ':', 1) AS r FROM quarantine")["r"])
    assert reasons == {"unparsable amount", "negative amount", "amount not finite", "unparsable time",
                       "time in the future", "time before 1990-01-01", "duplicate transaction_id in this load",
                       "lat out of range", "is_fraud not a boolean", "malformed CSV line"}
    assert ws.scalar("SELECT count(*) FROM transactions WHERE merchant_id = '''; DROP TABLE transactions; --'") == 1


def test_parquet_glob_gives_the_same_rows_and_quarantine_as_duckdb(tmp_path, files, cluster):
    _same_as_duckdb_path(tmp_path, str(files / "part*.parquet"), cluster[1])


def test_loading_again_with_either_engine_adds_nothing(tmp_path, files, cluster):
    ws = Workspace(tmp_path / "ws.duckdb")
    first = ingest_path_dask(ws, str(files / "part*.csv"), client=cluster[1])
    assert ingest_path_dask(ws, str(files / "part*.csv"), client=cluster[1]).status == "skipped"
    assert ingest_path(ws, str(files / "part*.csv")).status == "skipped"
    assert ws.count("transactions") == first.rows_loaded and ws.count("ingests") == 1


def test_ids_already_in_the_workspace_are_quarantined(tmp_path, files, cluster):
    ws = Workspace(tmp_path / "ws.duckdb")
    first = ingest_path(ws, files / "part0.csv")
    report = ingest_path_dask(ws, str(files / "part[01].csv"), client=cluster[1])
    assert report.reasons["transaction_id already in workspace"] == first.rows_loaded
    assert ws.count("transactions") == ws.scalar("SELECT count(DISTINCT transaction_id) FROM transactions")


def test_unreadable_file_in_the_glob_changes_nothing(tmp_path, files, cluster):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.csv").write_bytes((files / "part0.csv").read_bytes())
    (folder / "b.csv").write_bytes(bytes(range(256)) * 10)
    ws = Workspace(tmp_path / "ws.duckdb")
    with pytest.raises(IngestError, match="b.csv.*binary"):
        ingest_path_dask(ws, str(folder / "*.csv"), client=cluster[1])
    assert ws.count("transactions") == 0 and ws.count("ingests") == 0 and ws.version == 0


def test_scheduler_from_the_environment_and_the_cli_engine_option(tmp_path, files, cluster, monkeypatch, capsys):
    monkeypatch.setenv("FRAUDLAB_DASK_SCHEDULER", cluster[0].scheduler_address)
    path = tmp_path / "cli.duckdb"
    transitions = cluster[1].run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
    assert cli_main(["ingest", str(files / "part*.parquet"), "--workspace", str(path), "--engine", "dask"]) == 0
    assert "quarantined" in capsys.readouterr().out
    ws = Workspace(path)
    assert ingest_history(ws).iloc[0]["engine"] == "dask" and ws.count("transactions") > 2_900
    after = cluster[1].run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
    assert after > transitions  # the work ran on this cluster's scheduler


def test_without_a_scheduler_a_local_cluster_is_started(tmp_path, files, monkeypatch):
    monkeypatch.delenv("FRAUDLAB_DASK_SCHEDULER", raising=False)
    ws = Workspace(tmp_path / "ws.duckdb")
    steps = []
    report = ingest_path_dask(ws, str(files / "part*.parquet"), progress=lambda f, m: steps.append((f, m)))
    assert report.engine == "dask" and report.rows_loaded > 2_900
    assert steps[-1] == (1.0, "done") and any("validated 3 of 3" in m for _, m in steps)
    assert [f for f, _ in steps] == sorted(f for f, _ in steps)


def test_new_row_rules_content_ids_and_card_masking_match_the_duckdb_path(tmp_path, cluster):
    folder = tmp_path / "hardened"
    folder.mkdir()
    header = "ts,amount,customer_id,card_number,risk"
    rows = [["2026-01-01 10:00:00,5,c1,4111111111111111,1.5"] * 2 + ["2026-01-01 10:00:00,1e39,c2,4111111111112222,1"],
            ["2026-01-02 10:00:00,6,c\x002,4111111111113333,2", "2026-01-02 11:00:00,7,c3,4111111111114444,1e39"],
            [f"2026-01-03 10:00:00,8,{'z' * 1_100_000},4111111111115555,3", "2026-01-03 11:00:00,9,c4,x,inf",
             "2026-01-03 12:00:00,9,c5,4111111111116666,1,extra"]]
    for k, part in enumerate(rows):
        (folder / f"part{k}.csv").write_text("\n".join([header] + part) + "\n")
    ws_duck, ws_dask = _same_as_duckdb_path(tmp_path, str(folder / "part*.csv"), cluster[1], keep=["risk"])
    reasons = set(ws_dask.df("SELECT split_part(reason, ':', 1) AS r FROM quarantine")["r"])
    assert reasons == {"amount beyond 1e12", "NUL byte in customer_id", "risk beyond 3.4e38",
                       "field customer_id longer than 1 MB", "risk not finite", "malformed CSV line"}
    assert ws_dask.count("transactions") == 2  # the two identical rows of part0 are two transactions
    assert "41111111111" not in " ".join(ws_dask.df("SELECT raw FROM quarantine")["raw"])


def test_unmapped_columns_are_kept_aside_or_added_as_chosen_like_the_duckdb_path(tmp_path, cluster):
    folder = tmp_path / "extras"
    folder.mkdir()
    tx = simulate(rows=600, seed=6, days=10).transactions.drop(columns=["transaction_id", "label_ts"])
    tx["memo"] = "note " + tx.index.astype(str)
    tx["score_a"] = (tx["amount"] / 3).round(3)
    tx["card_number"] = "4111111111" + tx.index.astype(str).str.zfill(6)
    for k, part in enumerate(np.array_split(np.arange(len(tx)), 3)):
        chunk = tx.iloc[part]
        (chunk.drop(columns=["memo"]) if k == 1 else chunk).to_csv(folder / f"part{k}.csv", index=False)
    ws_duck, ws_dask = _same_as_duckdb_path(tmp_path, str(folder / "part*.csv"), cluster[1], keep=["score_a"])
    assert "score_a" in ws_dask.columns("transactions") and "memo" not in ws_dask.columns("transactions")
    assert ws_dask.scalar("SELECT count(*) FROM transaction_extras WHERE column_name = 'memo'") == 400
    assert "41111111110" not in " ".join(ws_dask.df("SELECT value FROM transaction_extras")["value"])
