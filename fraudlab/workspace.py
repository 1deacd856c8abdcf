"""The DuckDB workspace: one file holding every table, safe for the many threads of one Streamlit server.

Reads take a fresh cursor per call; writes go through :meth:`Workspace.write`, which serialises them
with a lock, runs them in one transaction, bumps the workspace version (the pages' cache key) and can
append an audit row in the same transaction.
"""
from __future__ import annotations

import hashlib
import json
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from fraudlab.config import load_config
from fraudlab.errors import WorkspaceError

CANONICAL_COLUMNS: dict[str, str] = {
    "transaction_id": "VARCHAR",
    "ts": "TIMESTAMP",
    "amount": "DOUBLE",
    "customer_id": "VARCHAR",
    "card_id": "VARCHAR",
    "device_id": "VARCHAR",
    "ip": "VARCHAR",
    "email": "VARCHAR",
    "merchant_id": "VARCHAR",
    "category": "VARCHAR",
    "channel": "VARCHAR",
    "country": "VARCHAR",
    "currency": "VARCHAR",
    "lat": "DOUBLE",
    "lon": "DOUBLE",
    "merchant_lat": "DOUBLE",
    "merchant_lon": "DOUBLE",
    "is_fraud": "BOOLEAN",
}

_TRANSACTION_COLUMNS_SQL = ",\n    ".join(f"{name} {sqltype}" for name, sqltype in CANONICAL_COLUMNS.items())

# Version 1 is the first release's schema (ten tables here, the rest created lazily by their modules). Each later
# version is a forward migration; opening a workspace applies the ones it lacks, in order, in one transaction.
SCHEMA_V1 = f"""
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
INSERT INTO meta VALUES ('version', '0') ON CONFLICT DO NOTHING;
CREATE SEQUENCE IF NOT EXISTS ingest_seq START 1;
CREATE SEQUENCE IF NOT EXISTS audit_seq START 1;
CREATE SEQUENCE IF NOT EXISTS decision_seq START 1;
CREATE SEQUENCE IF NOT EXISTS drift_run_seq START 1;
CREATE TABLE IF NOT EXISTS transactions (
    {_TRANSACTION_COLUMNS_SQL},
    ingest_id INTEGER
);
CREATE TABLE IF NOT EXISTS ingests (
    ingest_id INTEGER PRIMARY KEY,
    source VARCHAR,
    sha256 VARCHAR,
    started_at TIMESTAMP,
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_quarantined BIGINT,
    seconds DOUBLE,
    mapping VARCHAR,
    engine VARCHAR,
    status VARCHAR
);
CREATE TABLE IF NOT EXISTS quarantine (ingest_id INTEGER, row_number BIGINT, raw VARCHAR, reason VARCHAR);
CREATE TABLE IF NOT EXISTS labels (transaction_id VARCHAR, is_fraud BOOLEAN, label_ts TIMESTAMP, source VARCHAR);
CREATE TABLE IF NOT EXISTS models (
    model_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP,
    kind VARCHAR,
    features VARCHAR,
    params VARCHAR,
    train_from TIMESTAMP,
    train_to TIMESTAMP,
    data_hash VARCHAR,
    metrics VARCHAR,
    status VARCHAR,
    path VARCHAR
);
CREATE TABLE IF NOT EXISTS scores (
    transaction_id VARCHAR,
    model_id VARCHAR,
    score DOUBLE,
    scorer VARCHAR,
    latency_ms DOUBLE,
    scored_at TIMESTAMP,
    reasons VARCHAR
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id BIGINT PRIMARY KEY,
    case_id VARCHAR,
    analyst VARCHAR,
    decision VARCHAR,
    note VARCHAR,
    decided_at TIMESTAMP,
    previous_decision_id BIGINT
);
CREATE TABLE IF NOT EXISTS audit (audit_id BIGINT PRIMARY KEY, logged_at TIMESTAMP, who VARCHAR, action VARCHAR,
                                  details VARCHAR);
CREATE TABLE IF NOT EXISTS drift_runs (run_id BIGINT PRIMARY KEY, created_at TIMESTAMP, reference VARCHAR,
                                       current VARCHAR, results VARCHAR);
"""

MIGRATIONS: dict[int, str] = {
    # 2: every table the modules used to create lazily now exists from the start, owned here;
    #    labels record when they were written (wall clock) beside when they became known on the data's clock.
    2: """
CREATE TABLE IF NOT EXISTS model_events (model_id VARCHAR, event VARCHAR, happened_at TIMESTAMP, who VARCHAR,
                                         details VARCHAR);
CREATE TABLE IF NOT EXISTS drift_profiles (profile_key VARCHAR, created_at TIMESTAMP, reference VARCHAR,
                                           fingerprint VARCHAR, profile VARCHAR);
CREATE TABLE IF NOT EXISTS feature_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS case_assignments (case_id VARCHAR PRIMARY KEY, assignee VARCHAR, assigned_at TIMESTAMP,
                                             locked_by VARCHAR, locked_until TIMESTAMP);
CREATE TABLE IF NOT EXISTS case_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS customer_segments (customer_id VARCHAR, segment_id INTEGER, segment_name VARCHAR,
                                              assigned_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS segment_profiles (segment_id INTEGER, segment_name VARCHAR, customers BIGINT,
                                             profile VARCHAR, created_at TIMESTAMP);
ALTER TABLE labels ADD COLUMN IF NOT EXISTS recorded_at TIMESTAMP;
""",
    # 3: time-honest evaluation runs (python -m fraudlab evaluate), stored beside their model.
    3: """
CREATE SEQUENCE IF NOT EXISTS evaluation_seq START 1;
CREATE TABLE IF NOT EXISTS evaluations (run_id BIGINT PRIMARY KEY, model_id VARCHAR, created_at TIMESTAMP,
                                        results VARCHAR);
""",
    # 4: a case groups a customer's alerts; a decision names the alerts it covers (existing decisions covered the
    #    one transaction they were made on), carries a close reason; cases have an append-only comment thread.
    4: """
CREATE TABLE IF NOT EXISTS decision_alerts (decision_id BIGINT, alert_id VARCHAR);
INSERT INTO decision_alerts SELECT decision_id, case_id FROM decisions
    WHERE decision_id NOT IN (SELECT decision_id FROM decision_alerts);
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS close_reason VARCHAR;
CREATE SEQUENCE IF NOT EXISTS comment_seq START 1;
CREATE TABLE IF NOT EXISTS case_comments (comment_id BIGINT PRIMARY KEY, case_id VARCHAR, author VARCHAR,
                                          body VARCHAR, created_at TIMESTAMP);
""",
    # 5: the sha256 of each model file, written at registration and checked at every load (a changed file is refused).
    5: """
ALTER TABLE models ADD COLUMN IF NOT EXISTS sha256 VARCHAR;
""",
    # 6: the case tables exist (empty) from the start, so a decision, a ring or a page never meets a missing table;
    #    cases/build.py rebuilds them whole from the scores.
    6: """
CREATE TABLE IF NOT EXISTS alerts AS
    SELECT t.transaction_id AS alert_id, t.* EXCLUDE (transaction_id), NULL::DOUBLE AS score, NULL::VARCHAR AS scorer,
           NULL::VARCHAR AS model_id, NULL::TIMESTAMP AS raised_at, NULL::DOUBLE AS expected_loss,
           NULL::VARCHAR AS reasons, NULL::VARCHAR AS top_reason, NULL::VARCHAR AS segment,
           NULL::VARCHAR AS reason_family, t.transaction_id AS case_id
    FROM transactions t WHERE false;
CREATE TABLE IF NOT EXISTS cases AS
    SELECT case_id, customer_id, 0::BIGINT AS alerts, score, ts AS first_ts, ts, amount, expected_loss, raised_at,
           top_reason, reason_family, reasons, alert_id AS top_alert, card_id, merchant_id, category, channel, country,
           device_id, ip, email, scorer, model_id, segment
    FROM alerts WHERE false;
""",
    # 7: user-defined features (Feature lab): every add and drop is a row, and each one is a new feature-set version.
    7: """
CREATE TABLE IF NOT EXISTS feature_defs (name VARCHAR, version BIGINT, definition VARCHAR, created_by VARCHAR,
                                         created_at TIMESTAMP, active BOOLEAN);
""",
    # 11: the HTTP API: keys per integration (only their sha256 is kept) and every live-scored event with the answer
    #     it got (a retry with the same transaction_id gets the stored answer) and the fields the schema has no
    #     column for (kept, not dropped).
    11: """
CREATE TABLE IF NOT EXISTS api_keys (name VARCHAR PRIMARY KEY, key_sha256 VARCHAR, created_at TIMESTAMP,
                                     created_by VARCHAR, revoked_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS api_events (transaction_id VARCHAR PRIMARY KEY, received_at TIMESTAMP, key_name VARCHAR,
                                       answer VARCHAR, extra VARCHAR);
""",
}
SCHEMA_VERSION = max(MIGRATIONS)

# Derived tables, rebuilt whole by the module named (CREATE OR REPLACE ... AS SELECT): features (features.py; its
# user-defined columns are added and dropped by featurelab/store.py),
# alerts, cases, case_history, case_entities (cases/build.py). Nothing else creates a table.


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks (a loaded file's identity, a model file's seal)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_workspace(src: str | Path, dst: str | Path) -> Path:
    """Copy a closed workspace file and its models folder (a backup, or a private copy for a test)."""
    import shutil

    src, dst = Path(src), Path(dst)
    shutil.copy(src, dst)
    models = src.parent / f"{src.stem}_models"
    if models.is_dir():
        shutil.copytree(models, dst.parent / f"{dst.stem}_models", dirs_exist_ok=True)
    return dst


@lru_cache(maxsize=1)
def _default_memory_limit() -> str:
    with duckdb.connect() as con:
        return str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0]).replace("'", "")


def utcnow() -> datetime:
    """Current UTC time as a naive datetime, the form every TIMESTAMP column holds."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def quote_ident(name: str) -> str:
    """Quote an identifier for SQL, escaping embedded quotes (column names come from users' files)."""
    return '"' + str(name).replace('"', '""') + '"'


class Workspace:
    """Owns one DuckDB workspace file: schema, reads, serialised writes, version counter, audit."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else load_config().workspace_path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise WorkspaceError(f"cannot open workspace {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        try:
            self._migrate()
        except BaseException:
            self._con.close()
            raise

    def _migrate(self) -> None:
        """Create the schema of a new file, or bring an older workspace forward, one version at a time."""
        with self.write(bump=False) as cur:  # one transaction: a failed migration leaves the file as it was
            cur.execute(SCHEMA_V1)
            row = cur.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            current = int(row[0]) if row else 1
            if current > SCHEMA_VERSION:
                raise WorkspaceError(f"workspace {self.path} has schema version {current}, newer than this "
                                     f"fraudlab ({SCHEMA_VERSION}): upgrade fraudlab to open it")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                if version in MIGRATIONS:  # numbers may have gaps (branches merged in any order)
                    cur.execute(MIGRATIONS[version])
            cur.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])

    @property
    def schema_version(self) -> int:
        """The schema version this workspace file is at (always the newest once opened)."""
        return int(self.scalar("SELECT value FROM meta WHERE key = 'schema_version'"))

    @property
    def models_dir(self) -> Path:
        """Folder beside the workspace file where model files are saved."""
        folder = self.path.parent / f"{self.path.stem}_models"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def close(self) -> None:
        """Close the underlying connection."""
        self._con.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor: DuckDB cursors are safe to use from one thread each."""
        return self._con.cursor()

    def arrow(self, sql: str, params: Sequence[Any] | dict | None = None) -> pa.Table:
        """Run a read query with bound parameters and return an Arrow table."""
        cur = self.cursor()
        try:
            return cur.sql(sql, params=params or None).to_arrow_table()
        finally:
            cur.close()

    def df(self, sql: str, params: Sequence[Any] | dict | None = None) -> pd.DataFrame:
        """Run a read query and return pandas (through Arrow, which is faster than .df() in duckdb 2)."""
        return self.arrow(sql, params).to_pandas()

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        """Run a query and return the first column of the first row (None when empty)."""
        cur = self.cursor()
        try:
            row = cur.execute(sql, params or []).fetchone()
        finally:
            cur.close()
        return None if row is None else row[0]

    @contextmanager
    def write(
        self, action: str | None = None, who: str = "system", details: dict | None = None, bump: bool = True
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Serialised write transaction; bumps the version and, given an action, appends an audit row.

        `bump=False` is for bookkeeping that no cached page result depends on (case locks), so opening a case
        does not invalidate every page's cache.
        """
        with self._lock:
            cur = self.cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                yield cur
                if action is not None:
                    _insert_audit(cur, who, action, details or {})
                if bump:
                    cur.execute(
                        "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS VARCHAR) WHERE key = 'version'"
                    )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()

    @contextmanager
    def memory_capped(self, limit: str) -> Iterator[None]:
        """Cap DuckDB's memory (it spills to disk beyond) while heavy work runs, then restore the previous limit.

        Restored outside the work's own transaction, so a failure cannot leave the cap in place.
        """
        cur = self.cursor()
        previous = str(cur.execute("SELECT current_setting('memory_limit')").fetchone()[0]).replace("'", "")
        cur.execute(f"SET memory_limit = '{limit}'")
        try:
            yield
        finally:
            # the setting reads back rounded ("18.8 GiB"): RESET when it was DuckDB's default
            cur.execute("RESET memory_limit" if previous == _default_memory_limit() else f"SET memory_limit = '{previous}'")
            cur.close()

    @property
    def version(self) -> int:
        """Counter bumped by every write; pages use it as their cache key."""
        return int(self.scalar("SELECT value FROM meta WHERE key = 'version'"))

    def has_table(self, name: str) -> bool:
        """Whether a table or view of that name exists."""
        return bool(
            self.scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])
        )

    def columns(self, table: str) -> list[str]:
        """Column names of a table, in order."""
        rows = self.arrow(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        )
        return rows.column("column_name").to_pylist()

    def count(self, table: str) -> int:
        """Row count of a workspace table (the name must be one of ours, never user input)."""
        if table not in self.tables():
            raise WorkspaceError(f"no table named {table!r} in the workspace")
        return int(self.scalar(f'SELECT count(*) FROM "{table}"'))

    def tables(self) -> list[str]:
        """Names of all tables in the workspace."""
        return self.arrow("SELECT table_name FROM information_schema.tables ORDER BY 1").column(0).to_pylist()

    def audit_log(self, limit: int = 200) -> pd.DataFrame:
        """Newest audit rows first."""
        return self.df("SELECT * FROM audit ORDER BY audit_id DESC LIMIT ?", [limit])


def _insert_audit(cur: duckdb.DuckDBPyConnection, who: str, action: str, details: dict) -> None:
    cur.execute(
        "INSERT INTO audit VALUES (nextval('audit_seq'), ?, ?, ?, ?)",
        [utcnow(), who, action, json.dumps(details, default=str)],
    )


def open_workspace(path: str | Path | None = None) -> Workspace:
    """Open (creating if needed) the workspace at path, or the configured default."""
    return Workspace(path)
