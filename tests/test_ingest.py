"""Ingest: good files of many shapes load completely; malformed input gives a clear error or a quarantine reason.

Every load is checked for conservation: rows read = rows loaded + rows quarantined, the transactions table grew by
exactly the loaded rows and the quarantine by exactly the quarantined ones (nothing a user gave us is lost).
"""
from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudlab.errors import IngestError, MappingError
from fraudlab.generate import simulate
from fraudlab.ingest import (
    IngestReport,
    detect,
    ingest_history,
    ingest_path,
    ingest_table,
    inspect_file,
    preview,
    quarantine_csv,
    quarantine_rows,
    reason_counts,
    remove_upload,
    save_upload,
)
from fraudlab.schema import ColumnMapping
from fraudlab.workspace import Workspace

HEADER = "transaction_id,ts,amount,customer_id,merchant_id,is_fraud,lat,lon"
GOOD = [
    "t1,2026-01-01 10:00:00,12.50,c1,m1,0,48.85,2.35",
    "t2,2026-01-01 11:00:00,99.00,c2,m2,1,40.71,-74.00",
    "t3,2026-01-02 09:30:00,5.25,c1,m3,0,51.50,-0.12",
]


@pytest.fixture(scope="module")
def sim():
    """A 2,000-row simulation (seed 11), written in many shapes by the tests."""
    return simulate(rows=2_000, seed=11, days=30)


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join((header,) + rows) + "\n"


def load(ws: Workspace, path, mapping: ColumnMapping | None = None, keep=None) -> IngestReport:
    """Ingest and assert that counts add up and nothing was lost or invented (`keep`: extra columns consented)."""
    before_t, before_q = ws.count("transactions"), ws.count("quarantine")
    report = ingest_path(ws, path, mapping, keep_columns=keep)
    if report.status == "skipped":
        assert ws.count("transactions") == before_t and ws.count("quarantine") == before_q
        return report
    assert report.rows_read == report.rows_loaded + report.rows_quarantined
    assert ws.count("transactions") - before_t == report.rows_loaded
    assert ws.count("quarantine") - before_q == report.rows_quarantined
    if report.ingest_id is not None:
        assert sum(reason_counts(ws, report.ingest_id)["rows"]) >= report.rows_quarantined
        logged = ws.df("SELECT rows_read, rows_loaded, rows_quarantined FROM ingests WHERE ingest_id = ?",
                       [report.ingest_id]).iloc[0].tolist()
        assert logged == [report.rows_read, report.rows_loaded, report.rows_quarantined]
    return report


def reasons_of(ws: Workspace, report: IngestReport) -> list[str]:
    return quarantine_rows(ws, report.ingest_id)["reason"].tolist()


def assert_unchanged(ws: Workspace, version: int) -> None:
    assert ws.version == version
    assert ws.count("transactions") == 0 and ws.count("ingests") == 0 and ws.count("quarantine") == 0


# ------------------------------------------------------------------ good files

@pytest.mark.parametrize("sep", [",", ";", "|", "\t"])
def test_csv_with_any_delimiter_loads_every_row(empty_ws, tmp_path, sim, sep):
    path = tmp_path / "tx.csv"
    sim.transactions.to_csv(path, index=False, sep=sep)
    report = load(empty_ws, path)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (2_000, 2_000, 0)
    got = empty_ws.df("SELECT transaction_id, amount, customer_id FROM transactions ORDER BY transaction_id")
    want = sim.transactions.sort_values("transaction_id")
    assert got["transaction_id"].tolist() == want["transaction_id"].tolist()
    np.testing.assert_allclose(got["amount"].to_numpy(), want["amount"].to_numpy(), rtol=1e-9)


def test_gzip_csv_and_parquet_load_the_same_rows(tmp_path, sim):
    gz, pq = tmp_path / "tx.csv.gz", tmp_path / "tx.parquet"
    sim.transactions.to_csv(gz, index=False, compression="gzip")
    sim.transactions.to_parquet(pq, index=False)
    results = []
    for path in (gz, pq):
        ws = Workspace(tmp_path / f"{path.name}.duckdb")
        assert load(ws, path).rows_loaded == 2_000
        results.append(ws.df("SELECT transaction_id, ts, amount, is_fraud FROM transactions ORDER BY 1"))
        ws.close()
    pd.testing.assert_frame_equal(results[0], results[1])


def test_glob_of_files_with_different_column_orders_lines_up_by_name(empty_ws, tmp_path, sim):
    tx = sim.transactions
    cols = list(tx.columns)
    for k, part in enumerate(np.array_split(np.arange(len(tx)), 3)):
        order = cols[k:] + cols[:k]
        tx.iloc[part][order].to_csv(tmp_path / f"part{k}.csv", index=False)
    report = load(empty_ws, str(tmp_path / "part*.csv"))
    assert report.files == 3 and report.rows_loaded == 2_000
    got = empty_ws.df("SELECT transaction_id, amount, merchant_id FROM transactions ORDER BY 1")
    want = tx.sort_values("transaction_id").reset_index(drop=True)
    assert got["merchant_id"].tolist() == want["merchant_id"].tolist()
    np.testing.assert_allclose(got["amount"], want["amount"])


def test_loading_the_same_file_twice_adds_nothing(empty_ws, tmp_path, sim):
    path = tmp_path / "tx.csv"
    sim.transactions.to_csv(path, index=False)
    first = load(empty_ws, path)
    version = empty_ws.version
    again = load(empty_ws, path)
    assert again.status == "skipped" and again.rows_loaded == 0 and "already loaded" in again.message
    assert empty_ws.count("transactions") == first.rows_loaded and empty_ws.version == version
    # a copy under another name is the same content: also skipped (found while its rows were being checked: that
    # transaction is rolled back, so no row, label, audit entry or version bump is left)
    copy = tmp_path / "copy.csv"
    copy.write_bytes(path.read_bytes())
    counts = [empty_ws.count(t) for t in ("transactions", "labels", "audit", "ingests", "quarantine")]
    assert load(empty_ws, copy).status == "skipped" and empty_ws.version == version
    assert [empty_ws.count(t) for t in ("transactions", "labels", "audit", "ingests", "quarantine")] == counts


def test_overlapping_file_loads_only_new_rows(empty_ws, tmp_path, sim):
    tx = sim.transactions
    tx.iloc[:1500].to_csv(tmp_path / "a.csv", index=False)
    tx.iloc[1000:].to_csv(tmp_path / "b.csv", index=False)
    load(empty_ws, tmp_path / "a.csv")
    report = load(empty_ws, tmp_path / "b.csv")
    assert report.rows_loaded == 500 and report.rows_quarantined == 500
    assert report.reasons == {"transaction_id already in workspace": 500}
    assert empty_ws.count("transactions") == 2_000


def test_card_simulator_preset(empty_ws, tmp_path, sim):
    tx = sim.transactions
    frame = pd.DataFrame({
        "Unnamed: 0": range(len(tx)), "trans_date_trans_time": tx["ts"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "cc_num": tx["card_id"], "merchant": "fraud_" + tx["merchant_id"], "category": tx["category"],
        "amt": tx["amount"], "first": "Jane", "lat": tx["lat"], "long": tx["lon"], "trans_num": tx["transaction_id"],
        "unix_time": tx["ts"].astype("int64") // 10**9, "merch_lat": tx["merchant_lat"],
        "merch_long": tx["merchant_lon"], "is_fraud": tx["is_fraud"].astype(int)})
    path = tmp_path / "fraudTrain.csv"
    frame.to_csv(path, index=False)
    mapping = detect(path)
    assert mapping.preset.startswith("card simulator")
    assert mapping.columns["amount"] == "amt" and mapping.columns["card_id"] == "cc_num"
    assert mapping.columns["ts"] == "trans_date_trans_time" and mapping.columns["lon"] == "long"
    report = load(empty_ws, path)
    assert report.rows_loaded == len(tx)
    assert empty_ws.scalar("SELECT count(*) FROM transactions WHERE is_fraud") == int(tx["is_fraud"].sum())
    assert "first" not in empty_ws.columns("transactions")  # unmapped columns are kept aside, not added
    assert empty_ws.scalar("SELECT count(*) FROM transaction_extras WHERE column_name = 'first' "
                           "AND value = 'Jane'") == len(tx)


def test_mobile_money_preset_reads_steps_as_hours(empty_ws, tmp_path):
    frame = pd.DataFrame({"step": [1, 1, 2, 743], "type": ["PAYMENT", "TRANSFER", "CASH_OUT", "PAYMENT"],
                          "amount": [9839.64, 181.0, 181.0, 11668.14], "nameOrig": ["C1", "C2", "C3", "C4"],
                          "oldbalanceOrg": [170136.0, 181.0, 181.0, 41554.0], "nameDest": ["M1", "C5", "C6", "M2"],
                          "isFraud": [0, 1, 1, 0], "isFlaggedFraud": [0, 0, 0, 0]})
    path = tmp_path / "paysim.csv"
    frame.to_csv(path, index=False)
    assert detect(path).preset.startswith("mobile money")
    report = load(empty_ws, path)
    assert report.rows_loaded == 4
    got = empty_ws.df("SELECT customer_id, ts, category, is_fraud FROM transactions ORDER BY customer_id")
    assert got["ts"].tolist()[0] == pd.Timestamp("2026-01-01 01:00:00")
    assert got["ts"].tolist()[3] == pd.Timestamp("2026-01-01") + pd.Timedelta(hours=743)
    assert got["is_fraud"].tolist() == [False, True, True, False]


def test_pca_preset_keeps_v_columns_as_numbers(empty_ws, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"Time": [0.0, 0.0, 1.0, 172792.0]})
    for k in range(1, 29):
        frame[f"V{k}"] = rng.normal(size=4)
    frame["Amount"] = [149.62, 2.69, 378.66, 0.0]
    frame["Class"] = [0, 0, 1, 0]
    path = tmp_path / "creditcard.csv"
    frame.to_csv(path, index=False)
    mapping = detect(path)
    assert mapping.preset.startswith("anonymised PCA") and mapping.ts_unit_seconds == 1.0
    report = load(empty_ws, path, keep="all")
    assert report.rows_loaded == 4
    types = dict(empty_ws.df("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'transactions'").values.tolist())
    assert types["v1"] == "DOUBLE" and types["v28"] == "DOUBLE"
    assert empty_ws.scalar("SELECT max(ts) FROM transactions") == pd.Timestamp("2026-01-01") + pd.Timedelta(
        seconds=172792)
    assert empty_ws.scalar("SELECT count(*) FROM transactions WHERE is_fraud") == 1


def test_ecommerce_preset(empty_ws, tmp_path):
    frame = pd.DataFrame({"TransactionID": [2987000, 2987001, 2987002], "isFraud": [0, 0, 1],
                          "TransactionDT": [86400, 86401, 86469], "TransactionAmt": [68.5, 29.0, 59.0],
                          "ProductCD": ["W", "W", "H"], "card1": [13926, 2755, 4663],
                          "P_emaildomain": [None, "gmail.com", "outlook.com"], "DeviceInfo": ["SM", None, "iOS"]})
    path = tmp_path / "train_transaction.parquet"
    frame.to_parquet(path, index=False)
    mapping = detect(path)
    assert mapping.preset.startswith("e-commerce") and mapping.columns["ts"] == "TransactionDT"
    report = load(empty_ws, path)
    assert report.rows_loaded == 3
    got = empty_ws.df("SELECT transaction_id, ts, email, card_id FROM transactions ORDER BY 1")
    assert got["transaction_id"].tolist() == ["2987000", "2987001", "2987002"]
    assert got["ts"].iloc[0] == pd.Timestamp("2017-12-02 00:00:00")
    assert got["card_id"].tolist() == ["13926", "2755", "4663"]


def test_missing_transaction_id_is_generated_and_stable(empty_ws, tmp_path):
    path = write(tmp_path, "noid.csv", csv_text("2026-01-01 10:00,5,c1", "2026-01-01 11:00,6,c2",
                                                header="ts,amount,customer_id"))
    assert load(empty_ws, path).rows_loaded == 2
    ids = empty_ws.df("SELECT transaction_id FROM transactions ORDER BY ts")["transaction_id"].tolist()
    assert len(set(ids)) == 2 and all(i.endswith("-1") for i in ids)  # content hash + occurrence among equals
    again = write(tmp_path, "noid_again.csv", csv_text("2026-01-01 10:00,5,c1", "2026-01-01 11:00,6,c2",
                                                       header="ts,amount,customer_id") + "\n")
    assert load(empty_ws, again).rows_loaded == 0


NOID_HEADER = "ts,amount,customer_id,merchant_id,note"
NOID_ROWS = ("2026-01-01 10:00:00,5.00,c1,m1,first", "2026-01-01 10:00:00,5.00,c1,m1,first",
             "2026-01-01 11:00:00,6.50,c2,m2,", "2026-01-02 09:00:00,7,c3,m1,\"quoted, text\"")


def noid_variants(tmp_path: Path) -> dict[str, Path]:
    """The same rows without ids, saved the ways a spreadsheet or a colleague re-saves them."""
    text = csv_text(*NOID_ROWS, header=NOID_HEADER)
    return {"crlf": write(tmp_path, "crlf.csv", text.replace("\n", "\r\n")),
            "blank line": write(tmp_path, "blank.csv", text + "\n"),
            "gzip": _gz(tmp_path / "again.csv.gz", text.encode()),
            "gzip crlf": _gz(tmp_path / "again_crlf.csv.gz", text.replace("\n", "\r\n").encode()),
            "reformatted": write(tmp_path, "reformatted.csv", text.replace("5.00", "5").replace("6.50", "6.5")
                                 .replace("2026-01-01 10:00:00", "2026-01-01T10:00:00"))}


def _gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data, compresslevel=9, mtime=1))
    return path


@pytest.mark.parametrize("variant", ["crlf", "blank line", "gzip", "gzip crlf", "reformatted"])
def test_rows_without_ids_reloaded_from_a_resaved_file_add_nothing(empty_ws, tmp_path, variant):
    first = load(empty_ws, write(tmp_path, "noid.csv", csv_text(*NOID_ROWS, header=NOID_HEADER)))
    assert first.rows_loaded == 4  # two identical rows are two transactions: their occurrence numbers differ
    before = empty_ws.df("SELECT transaction_id FROM transactions ORDER BY 1")
    again = load(empty_ws, noid_variants(tmp_path)[variant])
    assert again.rows_loaded == 0 and empty_ws.count("transactions") == 4
    assert set(reasons_of(empty_ws, again)) <= {f"transaction_id already in workspace: {i}"
                                               for i in before["transaction_id"]}
    assert again.rows_quarantined == 4


def test_rows_without_ids_in_an_overlapping_reordered_file_load_only_the_new_ones(empty_ws, tmp_path):
    load(empty_ws, write(tmp_path, "noid.csv", csv_text(*NOID_ROWS, header=NOID_HEADER)))
    new = "2026-01-03 08:00:00,9.99,c4,m4,new"
    later = write(tmp_path, "later.csv", csv_text(new, *reversed(NOID_ROWS), NOID_ROWS[0], header=NOID_HEADER))
    report = load(empty_ws, later)
    assert report.rows_loaded == 2  # the new row and a third copy of the repeated row
    assert empty_ws.scalar("SELECT count(*) FROM transactions WHERE customer_id = 'c1'") == 3


def test_user_mapping_override_and_time_unit(empty_ws, tmp_path):
    path = write(tmp_path, "odd.csv", csv_text("a1,3600,10,u1", "a2,7200,20,u2", header="ref,secs,val,who"))
    mapping = ColumnMapping({"transaction_id": "ref", "ts": "secs", "amount": "val", "customer_id": "who"},
                            ts_unit_seconds=1.0, ts_origin="2025-06-01 00:00:00")
    report = load(empty_ws, path, mapping)
    assert report.rows_loaded == 2
    assert empty_ws.scalar("SELECT min(ts) FROM transactions") == pd.Timestamp("2025-06-01 01:00:00")


def test_unix_epoch_seconds_are_detected(empty_ws, tmp_path):
    path = write(tmp_path, "epoch.csv", csv_text("e1,1767261600,10", "e2,1767265200,20",
                                                 header="id,timestamp,amount"))
    load(empty_ws, path)
    assert empty_ws.scalar("SELECT min(ts) FROM transactions") == pd.Timestamp("2026-01-01 10:00:00")


def test_ingest_table_of_a_dataframe(empty_ws, sim):
    report = ingest_table(empty_ws, sim.transactions, source="sim")
    assert report.rows_loaded == 2_000 and empty_ws.count("labels") == 2_000
    assert ingest_table(empty_ws, sim.transactions, source="sim").status == "skipped"


def test_preview_shows_columns_mapping_and_changes_nothing(empty_ws, tmp_path, sim):
    path = tmp_path / "tx.csv"
    sim.transactions.to_csv(path, index=False, sep=";")
    version = empty_ws.version
    pv = preview(path, n=5)
    assert len(pv.sample) == 5 and pv.kind == "csv"
    row = pv.columns.set_index("column").loc["amount"]
    assert row["reads_as"] == "number" and row["mapped_to"] == "amount"
    assert pv.columns.set_index("column").loc["ts", "reads_as"] == "time"
    assert_unchanged(empty_ws, version)


def test_save_upload_keeps_a_safe_name(tmp_path):
    path = save_upload(b"a,b\n1,2\n", "../../etc/pass wd.csv", tmp_path)
    assert path.parent == tmp_path and path.name == "pass_wd.csv" and path.read_bytes() == b"a,b\n1,2\n"


def test_remove_upload_deletes_only_uploaded_files(tmp_path):
    upload = save_upload(b"a,b\n1,2\n", "tx.csv")
    victim = write(tmp_path, "victim.csv", "keep me")
    with pytest.raises(IngestError, match="refused"):
        remove_upload(victim)
    with pytest.raises(IngestError, match="refused"):
        remove_upload(upload.parent / ".." / victim.name)
    assert remove_upload(upload) and not upload.exists() and not upload.parent.exists()
    assert remove_upload(upload) is False
    mine = save_upload(b"x", "mine.csv", tmp_path / "uploads")
    with pytest.raises(IngestError, match="refused"):
        remove_upload(victim, tmp_path / "uploads")
    assert remove_upload(mine, tmp_path / "uploads") and not mine.exists()
    assert victim.read_text() == "keep me"


def test_card_numbers_never_reach_the_quarantine_in_full(empty_ws, tmp_path, monkeypatch):
    monkeypatch.setattr("fraudlab.ingest.extras.SAMPLE_ROWS", 3)  # cc_num reads as numbers; row 5 is a late text
    header = "id,ts,amount,card_number,instrument,cc_num"
    rows = ["k1,2026-01-01 10:00:00,5,4111111111111111,5500005555555559,4000000000000002",
            "k2,2026-01-01 10:00:00,-5,4111 1111 1111 2222,5500005555553333,4000000000000002",  # bad amount
            "k1,2026-01-01 11:00:00,6,4111111111114444,5500005555555555,4000000000000002",  # duplicate id
            "k3,2026-01-01 12:00:00,7,4111111111116666,5500005555556666,4000000000000002,extra",  # malformed line
            "k4,2026-01-01 13:00:00,7,4111111111118888,5500005555558888,4000-0000-0000-7777"]  # cc_num not a number
    mapping = ColumnMapping({"transaction_id": "id", "ts": "ts", "amount": "amount", "card_id": "instrument"})
    report = load(empty_ws, write(tmp_path, "cards.csv", csv_text(*rows, header=header)), mapping, keep="all")
    assert report.rows_loaded == 1 and report.rows_quarantined == 4
    stored = " ".join(empty_ws.df("SELECT raw || reason AS r FROM quarantine")["r"])
    for full in ("4111 1111 1111 2222", "5500005555553333", "4111111111114444", "5500005555555555",
                 "4111111111116666", "5500005555556666", "4000000000000002", "4000-0000-0000-7777"):
        assert full not in stored
    assert "•••• 2222" in stored and "•••• 3333" in stored and "•••• 4444" in stored and "•••• 6666" in stored
    assert "cc_num not a number: •••• 7777" in reasons_of(empty_ws, report)
    raw = json.loads(quarantine_rows(empty_ws, report.ingest_id).set_index("row_number").loc[2, "raw"])
    assert raw["card_number"] == "•••• 2222" and raw["instrument"] == "•••• 3333" and raw["id"] == "k2"


def test_quarantine_download_neutralises_formula_cells(empty_ws, tmp_path, monkeypatch):
    path = write(tmp_path, "evil.csv", csv_text("t9,2026-01-01 10:00:00,-3,=HYPERLINK(\"http://x\"),m1,0,1,1"))
    report = load(empty_ws, path)
    rows = quarantine_rows(empty_ws, report.ingest_id).assign(reason="=cmd|' /C calc'!A0", raw="@SUM(1)")
    monkeypatch.setattr("fraudlab.ingest.history.quarantine_rows", lambda *_a, **_k: rows)
    csv = pd.read_csv(__import__("io").BytesIO(quarantine_csv(empty_ws, report.ingest_id)))
    assert csv["reason"].tolist() == ["'=cmd|' /C calc'!A0"] and csv["raw"].tolist() == ["'@SUM(1)"]


def test_history_and_quarantine_download(empty_ws, tmp_path):
    path = write(tmp_path, "bad.csv", csv_text(GOOD[0], "t9,2026-01-01 10:00:00,-3,c1,m1,0,1,1"))
    report = load(empty_ws, path)
    hist = ingest_history(empty_ws)
    assert hist.iloc[0]["ingest_id"] == report.ingest_id and hist.iloc[0]["engine"] == "duckdb"
    csv = pd.read_csv(__import__("io").BytesIO(quarantine_csv(empty_ws, report.ingest_id)))
    assert csv["reason"].tolist() == ["negative amount: -3"]
    assert json.loads(csv["raw"].iloc[0])["transaction_id"] == "t9"


# ------------------------------------------------------------------ unreadable files: one clear error, no change

@pytest.mark.parametrize("name, content, message", [
    ("empty.csv", b"", "empty"),
    ("header.csv", (HEADER + "\n").encode(), "no data rows"),
    ("junk.csv", bytes(range(256)) * 64, "binary"),
    ("junk.bin", np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "binary"),
    ("empty.csv.gz", gzip.compress(b""), "no data"),
    ("broken.csv.gz", gzip.compress(csv_text(*GOOD * 50).encode())[:-12], "damaged gzip"),
])
def test_unreadable_files_raise_one_clear_error_and_change_nothing(empty_ws, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    version = empty_ws.version
    with pytest.raises(IngestError, match=message) as info:
        ingest_path(empty_ws, path)
    assert name in str(info.value)
    assert_unchanged(empty_ws, version)


def test_zip_archive_is_refused_with_a_hint(empty_ws, tmp_path):
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("tx.csv", csv_text(*GOOD))
    with pytest.raises(IngestError, match="ZIP archive.*unzip"):
        ingest_path(empty_ws, path)
    assert_unchanged(empty_ws, 0)


def test_wrong_extension_is_read_by_content(empty_ws, tmp_path, sim):
    parquet_named_csv = tmp_path / "really_parquet.csv"
    sim.transactions.head(50).to_parquet(parquet_named_csv, index=False)
    csv_named_parquet = write(tmp_path, "really_csv.parquet", csv_text(*GOOD))
    assert inspect_file(parquet_named_csv).kind == "parquet" and inspect_file(csv_named_parquet).kind == "csv"
    assert load(empty_ws, parquet_named_csv).rows_loaded == 50
    assert load(empty_ws, csv_named_parquet).rows_loaded == 3


def test_missing_paths_and_empty_globs_are_named(empty_ws, tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        ingest_path(empty_ws, tmp_path / "nope.csv")
    with pytest.raises(IngestError, match="no files match"):
        ingest_path(empty_ws, str(tmp_path / "*.csv"))
    with pytest.raises(IngestError, match="is a folder"):
        ingest_path(empty_ws, tmp_path)
    assert_unchanged(empty_ws, 0)


def test_mixing_csv_and_parquet_in_one_glob_is_refused(empty_ws, tmp_path, sim):
    sim.transactions.head(5).to_parquet(tmp_path / "a.dat", index=False)
    write(tmp_path, "b.dat", csv_text(*GOOD))
    with pytest.raises(IngestError, match="cannot mix Parquet and CSV"):
        ingest_path(empty_ws, str(tmp_path / "*.dat"))
    assert_unchanged(empty_ws, 0)


@pytest.mark.parametrize("header, missing", [
    ("transaction_id,ts,customer_id", "amount"),
    ("transaction_id,amount,customer_id", "ts"),
])
def test_missing_required_column_is_a_mapping_error(empty_ws, tmp_path, header, missing):
    path = write(tmp_path, "x.csv", csv_text("t1,2026-01-01 10:00:00,c1", header=header))
    if missing == "ts":
        path = write(tmp_path, "x.csv", csv_text("t1,10.5,c1", header=header))
    with pytest.raises(MappingError, match=f"no column mapped to required {missing}"):
        ingest_path(empty_ws, path)
    assert_unchanged(empty_ws, 0)


def test_mapping_to_an_absent_column_is_refused(empty_ws, tmp_path):
    path = write(tmp_path, "x.csv", csv_text(*GOOD))
    with pytest.raises(MappingError, match="not in the file"):
        ingest_path(empty_ws, path, ColumnMapping({"ts": "ts", "amount": "amt"}))
    assert_unchanged(empty_ws, 0)


def test_amount_column_with_no_number_at_all_is_refused(empty_ws, tmp_path):
    path = write(tmp_path, "x.csv", csv_text("t1,2026-01-01,abc,c1,m1,0,1,1", "t2,2026-01-01,xyz,c1,m1,0,1,1"))
    with pytest.raises(IngestError, match="no value that reads as a number"):
        ingest_path(empty_ws, path)
    assert_unchanged(empty_ws, 0)


# ------------------------------------------------------------------ bad rows: quarantined with the right reason

@pytest.mark.parametrize("row, reason", [
    ("b1,2026-01-01 10:00:00,\"12,5O\",c1,m1,0,1,1", "unparsable amount: 12,5O"),
    ("b1,2026-01-01 10:00:00,-5.00,c1,m1,0,1,1", "negative amount: -5.00"),
    ("b1,2026-01-01 10:00:00,inf,c1,m1,0,1,1", "amount not finite: inf"),
    ("b1,2026-01-01 10:00:00,-Infinity,c1,m1,0,1,1", "amount not finite: -Infinity"),
    ("b1,2026-01-01 10:00:00,NaN,c1,m1,0,1,1", "missing amount"),
    ("b1,2026-01-01 10:00:00,2e12,c1,m1,0,1,1", "amount beyond 1e12: 2e12"),
    ("b1,2026-01-01 10:00:00,,c1,m1,0,1,1", "missing amount"),
    ("b1,,5,c1,m1,0,1,1", "missing time"),
    ("b1,2026-13-45 99:00:00,5,c1,m1,0,1,1", "unparsable time: 2026-13-45 99:00:00"),
    ("b1,yesterday,5,c1,m1,0,1,1", "unparsable time: yesterday"),
    ("b1,2199-01-01 00:00:00,5,c1,m1,0,1,1", "time in the future: 2199-01-01 00:00:00"),
    ("b1,1970-01-01 00:00:00,5,c1,m1,0,1,1", "time before 1990-01-01"),
    ("b1,1899-12-31,5,c1,m1,0,1,1", "time before 1990-01-01"),
    ("b1,2026-01-01 10:00:00,5,c1,m1,maybe,1,1", "is_fraud not a boolean: maybe"),
    ("b1,2026-01-01 10:00:00,5,c1,m1,2,1,1", "is_fraud not a boolean"),
    ("b1,2026-01-01 10:00:00,5,c1,m1,0,91.5,1", "lat out of range: 91.5"),
    ("b1,2026-01-01 10:00:00,5,c1,m1,0,1,-180.01", "lon out of range: -180.01"),
    ("b1,2026-01-01 10:00:00,5,c1,m1,0,north,1", "lat not a number: north"),
    (",2026-01-01 10:00:00,5,c1,m1,0,1,1", "missing transaction_id"),
])
def test_bad_rows_go_to_quarantine_with_reason(empty_ws, tmp_path, row, reason):
    path = write(tmp_path, "mixed.csv", csv_text(*GOOD, row))
    report = load(empty_ws, path)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (4, 3, 1)
    bad = quarantine_rows(empty_ws, report.ingest_id)
    assert bad["reason"].iloc[0].startswith(reason), bad["reason"].iloc[0]
    assert bad["row_number"].iloc[0] == 4
    raw = json.loads(bad["raw"].iloc[0])
    assert raw["customer_id"] == "c1" and raw["merchant_id"] == "m1"  # the raw record is kept as read


def test_a_row_with_several_problems_lists_them_all(empty_ws, tmp_path):
    path = write(tmp_path, "x.csv", csv_text(*GOOD, "b1,someday,-1,c1,m1,x,200,1"))
    report = load(empty_ws, path)
    reason = reasons_of(empty_ws, report)[0]
    for part in ("unparsable time", "negative amount", "is_fraud not a boolean", "lat out of range"):
        assert part in reason
    counts = dict(reason_counts(empty_ws, report.ingest_id).values.tolist())
    assert counts["negative amount"] == 1 and counts["lat out of range"] == 1


def test_duplicate_ids_within_a_file_keep_the_first(empty_ws, tmp_path):
    path = write(tmp_path, "dup.csv", csv_text(*GOOD, "t1,2026-01-03 10:00:00,7,c9,m9,0,1,1",
                                               "t2,2026-01-03 11:00:00,8,c9,m9,0,1,1"))
    report = load(empty_ws, path)
    assert report.rows_loaded == 3 and report.reasons == {"duplicate transaction_id in this load": 2}
    assert empty_ws.scalar("SELECT amount FROM transactions WHERE transaction_id = 't1'") == 12.5


@pytest.mark.parametrize("rows, stored", [
    (["a,2026-01-02 10:00:00,1", "b,2026-01-01 10:00:00,2", "c,2026-01-01 10:00:00,3", "d,2026-01-03 10:00:00,4"],
     ["b", "c", "a", "d"]),  # out of order: sorted by time, ties in file order
    (["a,2026-01-01 10:00:00,1", "x,yesterday,2", "b,2026-01-01 10:00:00,3", "a,2026-01-02 10:00:00,4",
      "c,2026-01-03 10:00:00,5"], ["a", "b", "c"]),  # in order around a bad row and a duplicate
])
def test_rows_are_stored_in_time_order_with_ties_in_file_order(empty_ws, tmp_path, rows, stored):
    report = load(empty_ws, write(tmp_path, "order.csv", csv_text(*rows, header="transaction_id,ts,amount")))
    assert report.rows_loaded == len(stored)
    assert empty_ws.df("SELECT transaction_id FROM transactions ORDER BY rowid")["transaction_id"].tolist() == stored


def test_duplicate_ids_across_files_of_one_glob(empty_ws, tmp_path):
    write(tmp_path, "a.csv", csv_text(*GOOD))
    write(tmp_path, "b.csv", csv_text(GOOD[0].replace("12.50", "13.00"), "t4,2026-01-04 10:00:00,1,c4,m4,0,1,1"))
    report = load(empty_ws, str(tmp_path / "*.csv"))
    assert report.rows_loaded == 4 and report.reasons == {"duplicate transaction_id in this load": 1}
    raw = json.loads(quarantine_rows(empty_ws, report.ingest_id)["raw"].iloc[0])
    assert raw["amount"] == 13.0


def test_ids_already_in_the_workspace_are_quarantined(empty_ws, tmp_path):
    load(empty_ws, write(tmp_path, "a.csv", csv_text(*GOOD)))
    report = load(empty_ws, write(tmp_path, "b.csv", csv_text(GOOD[1], "t7,2026-01-05 10:00:00,1,c4,m4,0,1,1")))
    assert report.rows_loaded == 1 and reasons_of(empty_ws, report) == ["transaction_id already in workspace: t2"]


def test_ragged_rows_are_quarantined_as_malformed_lines(empty_ws, tmp_path):
    path = write(tmp_path, "ragged.csv", csv_text(*GOOD, "r1,2026-01-01 10:00:00,5,c1,m1,0,1,1,EXTRA,MORE",
                                                  "r2,2026-01-01 10:00:00,5,c1", "r3,2026-01-01 12:00:00,6,c3,m1,0,1,1"))
    report = load(empty_ws, path)
    assert report.rows_read == 6 and report.rows_loaded == 4
    assert report.reasons == {"malformed CSV line": 2}
    raws = quarantine_rows(empty_ws, report.ingest_id)["raw"].tolist()
    assert any("EXTRA,MORE" in r for r in raws) and any("r2," in r for r in raws)


def test_unterminated_quote_is_kept_verbatim_never_lost(empty_ws, tmp_path):
    path = write(tmp_path, "quote.csv", csv_text(*GOOD, 'q1,2026-01-01 10:00:00,5,"c1 never closed,m1,0,1,1',
                                                 "q2,2026-01-01 10:00:00,5,c2,m1,0,1,1"))
    report = load(empty_ws, path)
    assert report.rows_read == 5 and report.rows_loaded == 5
    assert empty_ws.scalar("SELECT customer_id FROM transactions WHERE transaction_id = 'q1'") == '"c1 never closed'


def test_unterminated_quote_among_quoted_fields_quarantines_lines_and_loses_nothing(empty_ws, tmp_path):
    text = ('id,ts,amount,name\nt1,2026-01-01,5,"Smith, J"\nt2,2026-01-01,6,"bad\nt3,2026-01-01,7,ok\n'
            't4,2026-01-01,8,"Lee, K"\nt5,2026-01-01,9,z\n')
    report = load(empty_ws, write(tmp_path, "quotes.csv", text))
    assert report.rows_read == 5 and report.rows_quarantined >= 1
    raws = " ".join(quarantine_rows(empty_ws, report.ingest_id)["raw"])
    loaded = set(empty_ws.df("SELECT transaction_id FROM transactions")["transaction_id"])
    for tid in ("t1", "t2", "t3", "t4", "t5"):
        assert tid in loaded or f"{tid}," in raws, tid
    assert set(reason_counts(empty_ws, report.ingest_id)["reason"]) == {"malformed CSV line"}


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-8-sig"])
def test_other_encodings_decode_correctly(empty_ws, tmp_path, encoding):
    path = write(tmp_path, "enc.csv", csv_text(GOOD[0].replace("m1", "Café Zürich"), *GOOD[1:]), encoding)
    report = load(empty_ws, path)
    assert report.rows_loaded == 3
    assert "transaction_id" in empty_ws.columns("transactions")
    assert empty_ws.scalar("SELECT merchant_id FROM transactions WHERE transaction_id = 't1'") == "Café Zürich"


HOSTILE = ["<script>alert(1)</script>", "'; DROP TABLE transactions; --", "x" * 100_000,
           "line one\nline two", 'say "hi", then ;|\t', "=HYPERLINK(\"http://x\")", "\u202eevil", "NULL-ish"]


def test_hostile_strings_are_stored_verbatim_and_harmless(empty_ws, tmp_path):
    frame = pd.DataFrame({"transaction_id": [f"h{k}" for k in range(len(HOSTILE))] + ["'; DROP TABLE ingests; --"],
                          "ts": "2026-01-01 10:00:00", "amount": 1.0,
                          "merchant_id": HOSTILE + ["m"], "note": HOSTILE + ["n"]})
    path = tmp_path / "hostile.csv"
    frame.to_csv(path, index=False)
    report = load(empty_ws, path, keep=["note"])
    assert report.rows_loaded == len(frame)
    got = empty_ws.df("SELECT transaction_id, merchant_id, note FROM transactions ORDER BY transaction_id")
    want = frame.sort_values("transaction_id").reset_index(drop=True)
    assert got["merchant_id"].tolist() == want["merchant_id"].tolist()
    assert got["note"].tolist() == want["note"].tolist()
    assert got["transaction_id"].tolist() == want["transaction_id"].tolist()
    assert empty_ws.has_table("ingests") and empty_ws.count("ingests") == 1


def test_hostile_column_names_are_quoted(empty_ws, tmp_path):
    path = write(tmp_path, "cols.csv", csv_text("t1,2026-01-01 10:00:00,5,a,b",
                                                header='id,ts,amount,"x""); DROP TABLE t; --",<b>col</b>'))
    assert load(empty_ws, path, keep="all").rows_loaded == 1
    cols = empty_ws.columns("transactions")
    assert any("drop_table" in c for c in cols) and "b_col_b" in cols


def test_mixed_type_extra_column_is_kept_as_text(empty_ws, tmp_path):
    path = write(tmp_path, "mixed.csv", csv_text("t1,2026-01-01,5,1", "t2,2026-01-01,6,two", "t3,2026-01-01,7,3.5",
                                                 header="id,ts,amount,score"))
    assert load(empty_ws, path, keep=["score"]).rows_loaded == 3
    got = empty_ws.df("SELECT score FROM transactions ORDER BY transaction_id")["score"].tolist()
    assert got == ["1", "two", "3.5"]


def test_mixed_types_in_a_parquet_object_column(empty_ws, tmp_path):
    frame = pd.DataFrame({"id": ["p1", "p2", "p3"], "ts": pd.to_datetime(["2026-01-01"] * 3),
                          "amount": ["10", "x", "3.5"]})
    path = tmp_path / "mixed.parquet"
    frame.to_parquet(path, index=False)
    report = load(empty_ws, path)
    assert report.rows_loaded == 2 and reasons_of(empty_ws, report) == ["unparsable amount: x"]


def test_numeric_extra_with_a_late_text_value_quarantines_that_row(empty_ws, tmp_path):
    n = 25_000  # beyond the type-sniffing sample
    frame = pd.DataFrame({"id": [f"n{k}" for k in range(n)], "ts": "2026-01-01 10:00:00", "amount": 1.0,
                          "score": [str(k) for k in range(n - 1)] + ["oops"]})
    path = tmp_path / "late.csv"
    frame.to_csv(path, index=False)
    report = load(empty_ws, path, keep=["score"])
    assert report.rows_loaded == n - 1 and reasons_of(empty_ws, report) == ["score not a number: oops"]


def test_huge_amounts_are_quarantined_and_the_sum_stays_finite(empty_ws, tmp_path):
    path = write(tmp_path, "huge.csv", csv_text(*GOOD, "h1,2026-01-01 10:00:00,1e39,c1,m1,0,1,1",
                                                "h2,2026-01-01 10:00:00,1e308,c1,m1,0,1,1",
                                                "h3,2026-01-01 10:00:00,1e308,c1,m1,0,1,1"))
    report = load(empty_ws, path)
    assert report.rows_loaded == 3 and report.rows_quarantined == 3
    assert reasons_of(empty_ws, report) == ["amount beyond 1e12: 1e39", "amount beyond 1e12: 1e308",
                                            "amount beyond 1e12: 1e308"]
    total = empty_ws.scalar("SELECT sum(amount) FROM transactions")
    assert np.isfinite(total) and total == pytest.approx(116.75)


def test_numeric_extra_beyond_float32_or_not_finite_is_quarantined_naming_the_column(empty_ws, tmp_path):
    path = write(tmp_path, "extra.csv", csv_text("x1,2026-01-01,5,1.5", "x2,2026-01-01,6,1e39", "x3,2026-01-01,7,inf",
                                                 "x4,2026-01-01,8,-3.3e38", header="id,ts,amount,risk"))
    report = load(empty_ws, path, keep=["risk"])
    assert report.rows_loaded == 2
    assert reasons_of(empty_ws, report) == ["risk beyond 3.4e38: 1e39", "risk not finite: inf"]
    frame = pd.DataFrame({"id": ["p1", "p2", "p3"], "ts": pd.to_datetime(["2026-01-02"] * 3), "amount": 1.0,
                          "velocity": [1.0, float("nan"), float("-inf")]})
    frame.to_parquet(tmp_path / "extra.parquet", index=False)
    report = load(empty_ws, tmp_path / "extra.parquet", keep="all")
    assert report.rows_loaded == 2 and reasons_of(empty_ws, report) == ["velocity not finite: -inf"]
    assert np.isfinite(empty_ws.scalar("SELECT sum(risk) FROM transactions"))


def test_timestamps_with_time_zones_become_utc(empty_ws, tmp_path):
    path = write(tmp_path, "tz.csv", csv_text("z1,2026-01-01T10:00:00+02:00,5", "z2,2026-01-01T10:00:00Z,5",
                                              header="id,ts,amount"))
    load(empty_ws, path)
    got = empty_ws.df("SELECT ts FROM transactions ORDER BY transaction_id")["ts"].tolist()
    assert got == [pd.Timestamp("2026-01-01 08:00:00"), pd.Timestamp("2026-01-01 10:00:00")]


def test_day_first_dates_are_read(empty_ws, tmp_path):
    path = write(tmp_path, "dmy.csv", csv_text("d1,31/01/2026 10:00:00,5", "d2,13/02/2026 10:00,5",
                                               header="id,date,amount"))
    report = load(empty_ws, path)
    assert report.rows_loaded == 2
    assert empty_ws.scalar("SELECT max(ts) FROM transactions") == pd.Timestamp("2026-02-13 10:00:00")


def test_no_header_row_gives_a_hint(empty_ws, tmp_path):
    path = write(tmp_path, "nohead.csv", "1,2,3\n4,5,6\n7,8,9\n")
    with pytest.raises(MappingError):
        ingest_path(empty_ws, path)
    assert_unchanged(empty_ws, 0)


# ------------------------------------------------------------------ bounded work

def test_a_file_with_more_than_256_columns_is_refused(empty_ws, tmp_path):
    header = "id,ts,amount," + ",".join(f"c{k}" for k in range(254))
    path = write(tmp_path, "wide.csv", csv_text("w1,2026-01-01,5," + ",".join("1" * 254), header=header))
    version = empty_ws.version
    with pytest.raises(IngestError, match="has 257 columns; at most 256"):
        ingest_path(empty_ws, path)
    assert_unchanged(empty_ws, version)
    frame = pd.DataFrame({f"c{k}": [1] for k in range(257)})
    with pytest.raises(IngestError, match="257 columns"):
        ingest_table(empty_ws, frame, source="wide frame")


def test_a_glob_over_too_many_files_or_too_deep_is_refused(empty_ws, tmp_path, monkeypatch):
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(4):
        write(folder, f"p{k}.csv", csv_text(f"g{k},2026-01-01,5,c1,m1,0,1,1"))
    monkeypatch.setattr("fraudlab.ingest.files.MAX_GLOB_FILES", 3)  # 10,000 in use; 4 files prove the rule
    with pytest.raises(IngestError, match="more than 3 files"):
        ingest_path(empty_ws, str(folder / "*.csv"))
    monkeypatch.undo()
    assert load(empty_ws, str(folder / "*.csv")).rows_loaded == 4
    six = tmp_path / "deep" / "1" / "2" / "3" / "4" / "5" / "6"
    six.mkdir(parents=True)
    write(six, "ok.csv", csv_text("d6,2026-01-01,5,c1,m1,0,1,1"))
    assert load(empty_ws, str(tmp_path / "deep" / "**" / "*.csv")).rows_loaded == 1
    (six / "7").mkdir()
    write(six / "7", "deep.csv", csv_text("d7,2026-01-01,5,c1,m1,0,1,1"))
    with pytest.raises(IngestError, match="7 folder levels below the first wildcard"):
        ingest_path(empty_ws, str(tmp_path / "deep" / "**" / "*.csv"))
    with pytest.raises(IngestError, match="reaches 7 folder levels"):
        ingest_path(empty_ws, str(tmp_path / "deep" / "/".join(["*"] * 7) / "*.csv"))


def test_an_over_long_field_or_a_nul_byte_quarantines_only_that_row(empty_ws, tmp_path):
    long_field = "x" * 1_500_000
    longer_than_a_default_line = "y" * 3_000_000
    path = write(tmp_path, "big.csv", csv_text(*GOOD, f"L1,2026-01-01 10:00:00,5,{long_field},m1,0,1,1",
                                               f"L2,2026-01-01 10:00:00,5,c1,{longer_than_a_default_line},0,1,1",
                                               "N1,2026-01-01 10:00:00,5,c\x001,m1,0,1,1"))
    report = load(empty_ws, path)
    assert report.rows_loaded == 3
    bad = quarantine_rows(empty_ws, report.ingest_id)
    assert bad["reason"].tolist() == ["field customer_id longer than 1 MB", "field merchant_id longer than 1 MB",
                                      "NUL byte in customer_id"]
    raw = json.loads(bad["raw"].iloc[0])
    assert raw["customer_id"].startswith("x" * 1000) and raw["customer_id"].endswith("(1500000 characters)")
    assert len(bad["raw"].iloc[0]) < 2_000


def test_cli_ingest_with_a_mapping_override_and_a_clear_error(tmp_path, capsys):
    from fraudlab.cli import main

    path = write(tmp_path, "cli.csv", csv_text("c1,2026-01-01 10:00:00,5,x", "c2,2026-01-01 11:00:00,-1,y",
                                               header="ref,when,val,who"))
    ws_path = tmp_path / "cli.duckdb"
    assert main(["ingest", str(path), "--workspace", str(ws_path), "--map", "amount=val", "--map", "ts=when",
                 "--map", "transaction_id=ref"]) == 0
    out = capsys.readouterr().out
    assert "loaded 1 of 2 rows; 1 quarantined" in out and "negative amount" in out
    assert main(["ingest", str(tmp_path / "missing.csv"), "--workspace", str(ws_path)]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err


def test_a_failed_load_restores_the_memory_limit(empty_ws, tmp_path):
    before = empty_ws.scalar("SELECT current_setting('memory_limit')")
    path = write(tmp_path, "x.csv", csv_text("t1,2026-01-01,abc,c1,m1,0,1,1"))
    with pytest.raises(IngestError):
        ingest_path(empty_ws, path)
    load(empty_ws, write(tmp_path, "y.csv", csv_text(*GOOD)))
    assert empty_ws.scalar("SELECT current_setting('memory_limit')") == before


def test_text_shortcut_reads_every_value_as_trim_and_na_words_do():
    """`text_expr` returns most values untouched without trim(); on hostile text it equals the plain rule."""
    import random

    import duckdb

    from fraudlab.ingest.records import NULL_WORDS
    from fraudlab.ingest.rules import one_of, text_expr

    t = 'trim("x")'
    plain_rule = f"(CASE WHEN strlen({t}) > 4 THEN {t} WHEN {one_of(f'lower({t})', NULL_WORDS)} THEN NULL ELSE {t} END)"
    alphabet = ["a", "N", "n", "-", "/", " ", "\t", "\n", "\x00", "'", "0", "T", "é", "\u00a0", "\u2009", "\u3000"]
    rng = random.Random(1)
    values = [None, ""] + [v for w in NULL_WORDS for v in (w, w.upper(), w.title(), f" {w} ", f"\u00a0{w}")]
    values += ["".join(rng.choice(alphabet) for _ in range(n)) for n in range(1, 8) for _ in range(800)]
    with duckdb.connect() as con:
        con.execute("CREATE TABLE v (x VARCHAR)")
        con.executemany("INSERT INTO v VALUES (?)", [[v] for v in values])
        differ = con.execute(f"SELECT x FROM v WHERE {plain_rule} IS DISTINCT FROM {text_expr('x')}").fetchall()
        kept = con.execute(f"SELECT {text_expr('x')} FROM (VALUES ('  Ann  '), ('N/A'), ('abcde'), ('nan')) s(x)")
        assert [r[0] for r in kept.fetchall()] == ["Ann", None, "abcde", None]
    assert differ == []


def test_a_csv_read_in_parallel_numbers_its_rows_in_file_order(empty_ws, tmp_path):
    """The checking pass reads one CSV in parallel and numbers rows from the stored order: bad rows on chunk and
    vector boundaries (and after a malformed line) keep their file row numbers; the good rows stay in file order."""
    n = 300_000
    bad = {1, 2047, 2048, 2049, 122_880, 122_881, 250_000, n}
    lines = [HEADER]
    for i in range(1, n + 1):
        amount = "-5.00" if i in bad else "12.50"
        lines.append(f"t{i},2026-01-{1 + i // 86400:02d} {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d},{amount},c{i % 97},"
                     f"m{i % 13},0,48.85,2.35")
    lines.insert(200_001, "broken,line,with,far,too,many,fields,here,and,more")  # after data row 200,000
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    report = ingest_path(empty_ws, path)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (n + 1, n - len(bad), len(bad) + 1)
    q = quarantine_rows(empty_ws, report.ingest_id)
    negative = q[q["reason"].str.startswith("negative amount")]
    assert sorted(negative["row_number"]) == sorted(bad)  # data rows, the malformed line not counted
    assert [json.loads(r)["transaction_id"] for r in negative.sort_values("row_number")["raw"]] == [
        f"t{i}" for i in sorted(bad)]
    stored = empty_ws.df("SELECT transaction_id FROM transactions ORDER BY rowid")["transaction_id"]
    assert stored.tolist() == [f"t{i}" for i in range(1, n + 1) if i not in bad]


@pytest.mark.parametrize("shape", ["plain", "gzip", "second file of a glob", "latin-1"])
def test_a_nul_byte_is_found_whatever_the_file_shape(empty_ws, tmp_path, shape):
    """A plain CSV is checked without a NUL test per value when its bytes hold no NUL; one that does (or a gzip'd
    file, whose bytes say nothing) is checked with it, so the row is quarantined either way."""
    nul_row = "N1,2026-01-03 10:00:00,5,c\x001,m1,0,1,1"
    if shape == "gzip":
        path = tmp_path / "nul.csv.gz"
        path.write_bytes(gzip.compress(csv_text(*GOOD, nul_row).encode()))
    elif shape == "second file of a glob":
        (tmp_path / "parts").mkdir()
        write(tmp_path, "parts/a.csv", csv_text(*GOOD))
        write(tmp_path, "parts/b.csv", csv_text(nul_row))
        path = tmp_path / "parts" / "*.csv"
    else:
        path = write(tmp_path, "nul.csv", csv_text(*GOOD, nul_row, "é1,2026-01-03 11:00:00,5,c9,m1,0,1,1"),
                     encoding="latin-1" if shape == "latin-1" else "utf-8")
    report = load(empty_ws, path)
    assert reasons_of(empty_ws, report) == ["NUL byte in customer_id"]
    assert report.rows_loaded == report.rows_read - 1


def test_file_digest_is_the_workspace_hash_and_notes_nul_bytes(tmp_path):
    from fraudlab.ingest.files import combined, digest_and_nul
    from fraudlab.workspace import file_sha256

    clean, dirty = write(tmp_path, "a.csv", csv_text(*GOOD) * 5000), write(tmp_path, "b.csv", "x\n1\x00\n")
    assert digest_and_nul([clean]) == (file_sha256(clean), False)
    assert digest_and_nul([clean, dirty]) == (combined([file_sha256(clean), file_sha256(dirty)]), True)


def test_boolean_shortcut_reads_labels_as_the_word_lists_do():
    """The usual label spellings are compared as they are; every spelling still reads as TRUE_WORDS/FALSE_WORDS say."""
    import duckdb

    from fraudlab.ingest.rules import FALSE_WORDS, TRUE_WORDS, _bool

    words = [w for base in TRUE_WORDS + FALSE_WORDS for w in (base, base.upper(), base.title(), f" {base} ")]
    with duckdb.connect() as con:
        read = con.execute(f"SELECT x, {_bool('x', 'VARCHAR')} FROM unnest($w || ['maybe', NULL, '2']) t(x)",
                           {"w": words}).fetchall()
    expected = {w: w.strip().lower() in TRUE_WORDS for w in words}
    assert {x: b for x, b in read if x in expected} == expected
    assert [b for x, b in read if x not in expected] == [None, None, None]
