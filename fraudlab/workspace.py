"""The DuckDB workspace: one file holding every table, safe for the many threads of one Streamlit server.

Reads take a fresh cursor per call; writes go through :meth:`Workspace.write`, which serialises them
with a lock, runs them in one transaction, bumps the workspace version (the pages' cache key) and can
append an audit row in the same transaction.
"""
from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from fraudlab import jobs
from fraudlab.auth.actors import Actor
from fraudlab.config import load_config
from fraudlab.errors import WorkspaceError
from fraudlab.migrations import (  # noqa: F401 (the schema, re-exported where it was)
    CANONICAL_COLUMNS,
    MIGRATIONS,
    SCHEMA_V1,
    SCHEMA_VERSION,
)

LOG = logging.getLogger("fraudlab.workspace")
SLOW_LOCK_WAIT_S = 5.0  # a write that waited longer for another's lock is logged, naming both

# Derived tables, rebuilt whole by the module named (CREATE OR REPLACE ... AS SELECT) and updated in place after an
# append (incremental/, cases/partial.py, cases/entities.py): features (features.py; its user-defined columns are
# added and dropped by featurelab/store.py), alerts, cases, case_history (cases/build.py), case_entities and
# case_entity_pairs (cases/entities.py). Nothing else creates a table.


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
        self._last_writer = ""  # the label of the write that last released the lock, for the slow-wait log
        self._closed = False
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
            for version in sorted(v for v in MIGRATIONS if v > current):  # numbers may have gaps
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

    def close(self, wait_s: float = 30.0) -> None:
        """Close the underlying connection, once the queries other threads' cursors are running have finished.

        DuckDB refuses to close a connection while one of its cursors is mid-query (a live scorer's refresh, a
        page's read); `closed` is set first so that scorers stop starting new work."""
        self._closed = True
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._con.close()
                return
            except duckdb.ResourceInUseException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (the live scorers over it are then closed: fraudlab.api.routes)."""
        return self._closed

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor: DuckDB cursors are safe to use from one thread each."""
        return self._con.cursor()

    def arrow(self, sql: str, params: Sequence[Any] | dict | None = None) -> pa.Table:
        """Run a read query with bound parameters and return an Arrow table."""
        cur = self.cursor()
        try:
            with jobs.attached(cur):
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
            with jobs.attached(cur):
                row = cur.execute(sql, params or []).fetchone()
        finally:
            cur.close()
        return None if row is None else row[0]

    @contextmanager
    def write(
        self, action: str | None = None, who: Actor | None = None, details: dict | None = None, bump: bool = True,
        beside: Callable[[duckdb.DuckDBPyConnection], bool] | None = None,
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Serialised write transaction; bumps the version and, given an action, appends an audit row naming the
        acting identity (an Actor: a typed name is never enough).

        `bump=False` is for bookkeeping that no cached page result depends on (case locks), so opening a case
        does not invalidate every page's cache.

        `beside`: work on other tables run at the same time on a second cursor, in its own transaction and under the
        same lock (so no other writer comes between): committed when it returns True, rolled back when it returns
        False or raises (logged, not raised: it must leave nothing its callers' own path cannot redo), and always
        finished before this transaction commits.
        """
        if action is not None and not isinstance(who, Actor):
            raise TypeError(f"the write '{action}' needs an authenticated Actor, not {type(who).__name__}")
        label = jobs.write_label(action, details)
        asked = time.perf_counter()
        with self._lock:
            waited = time.perf_counter() - asked
            if waited > SLOW_LOCK_WAIT_S:
                LOG.warning("%s waited %.1f s for the write lock (held by %s)", label, waited, self._last_writer)
            jobs.checkpoint(f"starting {label}")
            cur = self.cursor()
            second = None if beside is None else self._beside(beside, label)
            try:
                with jobs.attached(cur):  # a cancelled or over-cap job interrupts the running statement
                    cur.execute("BEGIN TRANSACTION")
                    yield cur
                if second is not None:
                    second.join()
                jobs.checkpoint(f"finishing {label}")  # detached: COMMIT and ROLLBACK are never interrupted
                if action is not None:
                    _insert_audit(cur, who, action, details or {})
                if bump:
                    cur.execute(
                        "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS VARCHAR) WHERE key = 'version'"
                    )
                cur.execute("COMMIT")
            except BaseException as exc:
                cancelled = jobs.rolled_back(cur, label, exc)  # JobCancelled when the job was stopped
                if cancelled is not None:
                    raise cancelled from exc
                raise
            else:
                jobs.committed(label if action is not None else None)
            finally:
                if second is not None:
                    second.join()
                cur.close()
                self._last_writer = label

    def _beside(self, work: Callable[[duckdb.DuckDBPyConnection], bool], label: str) -> threading.Thread:
        """Start `work` on its own cursor and transaction (see :meth:`write`), in this context's job."""
        def run() -> None:
            cur = self.cursor()
            try:
                with jobs.attached(cur):
                    cur.execute("BEGIN TRANSACTION")
                    done = work(cur)
                cur.execute("COMMIT" if done else "ROLLBACK")
            except Exception:  # noqa: BLE001 - reported; the caller's own path redoes the work
                LOG.warning("work beside %s failed and was rolled back", label, exc_info=True)
                try:
                    cur.execute("ROLLBACK")
                except duckdb.Error:
                    pass
            finally:
                cur.close()

        thread = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="write-beside", daemon=True)
        thread.start()
        return thread

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


def _insert_audit(cur: duckdb.DuckDBPyConnection, who: Actor, action: str, details: dict) -> None:
    cur.execute(
        "INSERT INTO audit (audit_id, logged_at, who, action, details, role, via) "
        "VALUES (nextval('audit_seq'), ?, ?, ?, ?, ?, ?)",
        [utcnow(), who.name, action, json.dumps(details, default=str, ensure_ascii=False), who.role, who.via],
    )


def open_workspace(path: str | Path | None = None) -> Workspace:
    """Open (creating if needed) the workspace at path, or the configured default."""
    return Workspace(path)
