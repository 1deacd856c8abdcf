"""The workspace owns the schema: a new file gets every table, an older workspace is migrated forward, in place."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

from fraudlab.errors import WorkspaceError
from fraudlab.workspace import SCHEMA_VERSION, Workspace

RELEASE_1 = Path(__file__).parent / "fixtures" / "workspace_release_1.sql"
EVERY_TABLE = {"transactions", "ingests", "quarantine", "labels", "models", "scores", "decisions", "audit",
               "drift_runs", "drift_profiles", "model_events", "feature_meta", "case_assignments", "case_meta",
               "customer_segments", "segment_profiles", "evaluations", "decision_alerts", "case_comments", "alerts", "cases", "meta"}


def _release_1_file(path: Path) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute(RELEASE_1.read_text())
    return path


def test_a_new_workspace_has_every_table_at_the_newest_schema(tmp_path):
    ws = Workspace(tmp_path / "new.duckdb")
    assert EVERY_TABLE <= set(ws.tables())
    assert ws.schema_version == SCHEMA_VERSION
    assert "recorded_at" in ws.columns("labels")


def test_a_first_release_workspace_is_migrated_forward_and_keeps_its_data(tmp_path):
    ws = Workspace(_release_1_file(tmp_path / "old.duckdb"))
    assert ws.schema_version == SCHEMA_VERSION
    assert EVERY_TABLE <= set(ws.tables())
    assert ws.count("transactions") == 2 and ws.count("decisions") == 1 and ws.version == 7
    assert ws.df("SELECT * FROM decision_alerts").values.tolist() == [[1, "T1"]]  # the old decision covers its case
    labels = ws.df("SELECT * FROM labels ORDER BY transaction_id")
    assert labels["recorded_at"].isna().all() and labels["source"].tolist() == ["analyst", "data"]
    ws.close()
    again = Workspace(tmp_path / "old.duckdb")  # opening twice migrates nothing more
    assert again.schema_version == SCHEMA_VERSION and again.count("labels") == 2


def test_a_workspace_from_a_newer_fraudlab_is_refused_untouched(tmp_path):
    path = tmp_path / "future.duckdb"
    Workspace(path).close()
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(WorkspaceError, match="newer than this fraudlab"):
        Workspace(path)
    with duckdb.connect(str(path)) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "99"


def test_closing_waits_for_a_query_another_thread_is_running(tmp_path):
    ws = Workspace(tmp_path / "w.duckdb")
    started, result = threading.Event(), {}

    def long_read() -> None:
        cur = ws.cursor()
        started.set()
        result["n"] = cur.execute("SELECT count(*) FROM range(200000000) t(i) WHERE i % 7 = 3").fetchone()[0]

    reader = threading.Thread(target=long_read)
    reader.start()
    started.wait()
    time.sleep(0.05)  # the read is running: DuckDB would refuse a plain close
    ws.close()
    reader.join()
    assert ws.closed and result["n"] == 28571429
    with pytest.raises(duckdb.Error):
        ws.cursor()


def test_work_beside_a_write_runs_in_its_own_transaction_and_never_sinks_the_write(tmp_path):
    ws = Workspace(tmp_path / "ws.duckdb")
    seen = {}

    def beside(cur) -> bool:  # another table, at the same time: it sees only what was committed before
        seen["meta"] = cur.execute("SELECT count(*) FROM meta WHERE key = 'main'").fetchone()[0]
        cur.execute("INSERT INTO meta VALUES ('beside', 'kept')")
        return True

    with ws.write(bump=False, beside=beside) as cur:
        cur.execute("INSERT INTO meta VALUES ('main', 'kept')")
        time.sleep(0.1)
    assert seen == {"meta": 0}
    assert ws.scalar("SELECT count(*) FROM meta WHERE key IN ('main', 'beside')") == 2

    def refused(cur) -> bool:
        cur.execute("INSERT INTO meta VALUES ('refused', 'x')")
        return False

    def broken(cur) -> bool:
        cur.execute("INSERT INTO meta VALUES ('broken', 'x')")
        raise RuntimeError("the work beside failed")

    for work in (refused, broken):
        with ws.write(bump=False, beside=work) as cur:
            cur.execute("INSERT INTO meta VALUES (?, 'kept')", [f"main after {work.__name__}"])
    assert ws.scalar("SELECT count(*) FROM meta WHERE key IN ('refused', 'broken')") == 0
    assert ws.scalar("SELECT count(*) FROM meta WHERE key LIKE 'main after %'") == 2

    with pytest.raises(ValueError), ws.write(bump=False, beside=refused) as cur:  # a failed write waits, rolls back
        cur.execute("INSERT INTO meta VALUES ('failed', 'x')")
        raise ValueError("the write failed")
    assert ws.scalar("SELECT count(*) FROM meta WHERE key = 'failed'") == 0
    ws.close()
