"""The load: validated rows into `transactions`, labels into `labels`, bad rows into `quarantine`, in one transaction."""
from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable

import duckdb
import pandas as pd
import pyarrow as pa

from fraudlab import jobs
from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.data_roots import DataRoots
from fraudlab.errors import IngestError
from fraudlab.ingest.extras import Consent, ExtrasPlan, create_extra_columns, plan_extras, write_side_rows
from fraudlab.ingest.files import combined, digest_and_nul, inspect_file, plain_text, resolve_paths
from fraudlab.ingest.passes import check_rows, drop_checks, duplicate_raw_sql, write_good_rows
from fraudlab.ingest.passes import mark_duplicates as mark_duplicates_in_source
from fraudlab.ingest.records import (
    INGEST_MEMORY_LIMIT,
    TARGETS,
    IngestReport,
    SourceFile,
    Staged,
    no_progress,
)
from fraudlab.ingest.rules import (
    raw_json,
    repeats_in_load_sql,
    row_reasons,
    select_typed,
    with_generated_ids,
)
from fraudlab.ingest.staging import check_width, profile_columns, scan_files
from fraudlab.jobs import Progress
from fraudlab.labels import insert_source_labels
from fraudlab.privacy import is_card_column, mask_card_numbers_in_text_sql
from fraudlab.schema import ColumnMapping, check_mapping, detect_mapping, keep_earlier, mapping_notes
from fraudlab.workspace import CANONICAL_COLUMNS, Workspace, file_sha256, quote_ident, utcnow


def prepare_files(ws: Workspace, path_or_glob: str | Path, progress: Progress, source: str | None,
                  roots: DataRoots | None = None) -> tuple[list[SourceFile], list[str], str, str, IngestReport | None]:
    """Resolve (inside the data folders, see `resolve_paths`) and inspect the files, hash them, and find an earlier
    load of the same content (if any)."""
    paths = resolve_paths(path_or_glob, roots)
    files = [inspect_file(p) for p in paths]
    progress(0.02, f"checking {len(paths)} file(s)")
    digests = [file_sha256(p) for p in paths]
    sha = combined(digests)
    return files, digests, sha, source or str(path_or_glob), _already_loaded(ws, sha)


@jobs.as_job('the load')
def ingest_path(ws: Workspace, path_or_glob: str | Path, mapping: ColumnMapping | None = None,
                progress: Progress | None = None, *, source: str | None = None, who: Actor = SYSTEM,
                roots: DataRoots | None = None, keep_columns: Consent = None) -> IngestReport:
    """Load one file or a glob of files into the workspace; bad rows are quarantined with reasons.

    Paths must lie inside the data folders (`roots`, default FRAUDLAB_DATA_ROOTS); the CLI passes `ANYWHERE`.
    Unmapped source columns are kept aside in `transaction_extras`; those named in `keep_columns` (or every one,
    with ``"all"``) are added to `transactions` instead, as extra columns usable as features.
    """
    progress = progress or no_progress
    paths = resolve_paths(path_or_glob, roots)
    files = [inspect_file(p) for p in paths]
    label = source or str(path_or_glob)
    progress(0.02, f"checking {len(paths)} file(s)")
    def stage(cur: duckdb.DuckDBPyConnection) -> Staged:
        return scan_files(cur, files)

    if _loaded_before(ws, label):  # most likely a reload: the digest first, so it is refused before any work
        sha, nul = digest_and_nul(paths)
        done = _already_loaded(ws, sha)
        return done or _ingest(ws, label, sha, mapping, progress, stage, who=who, keep_columns=keep_columns,
                               nul_free=lambda: not nul)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fraudlab-sha256") as pool:
        # hashlib releases the GIL: the files are hashed (and searched for a NUL byte) while DuckDB reads and
        # checks them (the digest is awaited, and a reload refused, after the checking pass, before any write)
        read = pool.submit(digest_and_nul, paths)
        return _ingest(ws, label, lambda: read.result()[0], mapping, progress, stage, who=who,
                       keep_columns=keep_columns, nul_free=lambda: not read.result()[1])


def _loaded_before(ws: Workspace, source: str) -> bool:
    """Whether a load of this source (path or glob, as given) succeeded before."""
    return bool(ws.scalar("SELECT count(*) FROM ingests WHERE source = ? AND status = 'ok'", [source]))


@jobs.as_job('the load')
def ingest_table(ws: Workspace, table: pa.Table | pd.DataFrame, source: str,
                 mapping: ColumnMapping | None = None, progress: Progress | None = None, *,
                 who: Actor = SYSTEM, keep_columns: Consent = None) -> IngestReport:
    """Load an in-memory Arrow table or DataFrame (an upload, a simulation) like a file (`keep_columns`: as
    :func:`ingest_path`)."""
    progress = progress or no_progress
    arrow = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
    digest = _arrow_digest(arrow)
    done = _already_loaded(ws, digest)
    if done is not None:
        return done

    def stage(cur: duckdb.DuckDBPyConnection) -> Staged:
        cur.register("_arrow_in", arrow)  # read in place by both passes; the cursor's end unregisters it
        types = {r[0]: r[1] for r in cur.execute("DESCRIBE _arrow_in").fetchall()}
        cols = list(types)
        if "__fidx" in cols or "__row" in cols:
            raise IngestError(f"{source}: source columns may not be named __fidx or __row")
        check_width(len(cols), source)
        if not cols or arrow.num_rows == 0:
            raise IngestError(f"{source}: the table holds no rows")
        return Staged("(SELECT *, 0 AS __fidx, row_number() OVER () AS __row FROM _arrow_in)", {}, cols, types,
                      [SourceFile(Path(source), "table")], [digest])

    return _ingest(ws, source, digest, mapping, progress, stage, who=who, keep_columns=keep_columns)


def _arrow_digest(arrow: pa.Table) -> str:
    sha = hashlib.sha256(str(arrow.schema).encode())
    for batch in arrow.to_batches():
        for column in batch.columns:
            for buf in column.buffers():
                if buf is not None:
                    sha.update(memoryview(buf))
    return sha.hexdigest()


def _already_loaded(ws: Workspace, sha: str) -> IngestReport | None:
    row = ws.df("SELECT ingest_id, source, rows_read, rows_loaded FROM ingests WHERE sha256 = ? AND status = 'ok' "
                "ORDER BY ingest_id LIMIT 1", [sha])
    if row.empty:
        return None
    first = row.iloc[0]
    return IngestReport(None, str(first["source"]), "skipped", int(first["rows_read"]), 0, 0,
                        message=f"this data was already loaded as ingest {int(first['ingest_id'])} "
                                f"({int(first['rows_loaded']):,} rows); nothing was added")


def _ingest(ws: Workspace, source: str, sha: str | Callable[[], str], mapping: ColumnMapping | None,
            progress: Progress, stage: Callable[[duckdb.DuckDBPyConnection], Staged], engine: str = "duckdb",
            who: Actor = SYSTEM, keep_columns: Consent = None,
            nul_free: Callable[[], bool] | None = None) -> IngestReport:
    """The load in one transaction: stage, map, check every row (first pass), refuse a reload, mark duplicates,
    write the good rows (second pass) and the rest.

    `sha` may be a function that waits for a digest computed while the first pass runs: when it names data
    already loaded, the transaction is rolled back and the earlier load reported. `nul_free` (likewise awaited
    after the first pass) says whether the files hold no NUL byte: a plain-text CSV is checked without a NUL
    test per value, and checked again with it in the rare file that holds one.
    """
    started = time.perf_counter()
    try:
        with ws.memory_capped(INGEST_MEMORY_LIMIT), ws.write("ingest", who, details={"source": source}) as cur:
            cur.execute("SET TimeZone = 'UTC'")
            progress(0.1, "reading")
            staged = stage(cur)
            profiles = profile_columns(cur, staged)
            mapping = mapping or keep_earlier(detect_mapping(staged.columns, profiles=profiles),
                                              earlier_mapping(cur), staged.columns)
            check_mapping(mapping, staged.columns)
            plan = plan_extras(cur, staged, mapping, keep_columns)
            notes = tuple(mapping_notes(mapping, staged.columns, profiles)) + plan.notes
            ingest_id = int(cur.execute("SELECT nextval('ingest_seq')").fetchone()[0])
            progress(0.4, "validating rows")
            skip_nul = nul_free is not None and plain_text(staged.files)
            _check(cur, staged, mapping, plan, source, nul_checks=not skip_nul)
            if callable(sha):
                sha = sha()
                done = _already_loaded(ws, sha)
                if done is not None:
                    raise _AlreadyLoaded(done)
            if skip_nul and not nul_free():
                drop_checks(cur, staged)
                _check(cur, staged, mapping, plan, source, nul_checks=True)
            create_extra_columns(cur, plan.widen)
            mark_duplicates_in_source(cur, staged, mapping, plan)
            progress(0.75, "writing good rows and quarantine")
            write_good_rows(cur, staged, mapping, plan, ingest_id)
            report = finish_load(cur, ingest_id, source, sha, mapping, plan, started, engine, len(staged.files),
                                 good_written=True)
    except _AlreadyLoaded as skipped:
        return skipped.report
    progress(1.0, "done")
    return replace(report, notes=notes + report.notes)


def _check(cur: duckdb.DuckDBPyConnection, staged: Staged, mapping: ColumnMapping, plan: ExtrasPlan, source: str,
           nul_checks: bool) -> None:
    """The checking pass, the lines the CSV reader could not split, and the refusal of an unreadable time or
    amount column."""
    check_rows(cur, staged, mapping, plan, nul_checks)
    collect_rejects(cur, staged, mapped_card=mapping.columns.get("card_id"))
    refuse_unreadable_key(cur, mapping, source)


class _AlreadyLoaded(Exception):
    """Raised inside a load's transaction (rolling it back) when its digest names data already loaded."""

    def __init__(self, report: IngestReport) -> None:
        super().__init__(report.message)
        self.report = report


def earlier_mapping(cur: duckdb.DuckDBPyConnection) -> ColumnMapping | None:
    """The mapping of the newest successful load (None before the first): a later file of its layout keeps it."""
    row = cur.execute("SELECT mapping FROM ingests WHERE status = 'ok' AND mapping IS NOT NULL "
                      "ORDER BY ingest_id DESC LIMIT 1").fetchone()
    return ColumnMapping.from_dict(json.loads(row[0])) if row else None


def finish_load(cur: duckdb.DuckDBPyConnection, ingest_id: int, source: str, sha: str, mapping: ColumnMapping,
                plan: ExtrasPlan, started: float, engine: str, files: int, good_written: bool = False) -> IngestReport:
    """Write the checked rows (good to transactions, unless `good_written` already did, and the side table, bad to
    quarantine), log the ingest, and report it (its notes: what the side table's cap left out)."""
    rows_read, loaded, quarantined = _write_rows(cur, ingest_id, plan.widen, good_written)
    _, side_notes = write_side_rows(cur, ingest_id, plan.side)
    reasons = _reason_counts(cur)
    seconds = time.perf_counter() - started
    cur.execute("INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok')",
                [ingest_id, source, sha, utcnow(), rows_read, loaded, quarantined, seconds,
                 json.dumps(mapping.to_dict()), engine])
    return IngestReport(ingest_id, source, "ok", rows_read, loaded, quarantined, reasons, seconds,
                        mapping.to_dict(), f"loaded {loaded:,} of {rows_read:,} rows; {quarantined:,} quarantined",
                        files=files, engine=engine, notes=tuple(side_notes))


def build_checked(cur: duckdb.DuckDBPyConnection, staged: Staged, mapping: ColumnMapping,
                  plan: ExtrasPlan, file_names: list[str] | None = None) -> None:
    """Temp table _checked: typed canonical columns, consented extras, kept-aside values (__s_i), __reason ('' when
    good) and __raw for bad rows.

    The raw record names its file when `file_names` is given (default: when the load has several files).
    """
    now = utcnow().strftime("%Y-%m-%d %H:%M:%S")
    extras = plan.widen
    reasons = ", ".join(row_reasons(mapping, extras, staged, now))
    typed = f"(SELECT *, {', '.join(select_typed(staged, mapping, extras, plan.side))} FROM {staged.sql})"
    outer = [f"__t_{t} AS {t}" for t in TARGETS] + [f"__x_{k} AS {quote_ident(name)}"
                                                    for k, (name, _) in enumerate(extras.values())]
    outer += [f"__s_{k}" for k in range(len(plan.side))]
    params = dict(staged.params)
    if file_names is None and len(staged.files) > 1:
        file_names = [str(f.path) for f in staged.files]
    if file_names:
        params["file_names"] = file_names
    cur.execute(f"""
        CREATE TEMP TABLE _checked AS
        SELECT {', '.join(outer)}, __fidx, __row, __reason,
               CASE WHEN __reason <> '' THEN {raw_json(staged, bool(file_names), mapping.columns.get("card_id"))}
               END AS __raw
        FROM (SELECT *, concat_ws('; ', {reasons}) AS __reason
              FROM {with_generated_ids(typed, mapping, extras, plan.side)})
    """, params)


def refuse_unreadable_key(cur: duckdb.DuckDBPyConnection, mapping: ColumnMapping, source: str) -> None:
    """A time or amount column with no readable value at all is a wrong mapping, not bad rows: refuse it."""
    total, times, amounts = cur.execute("SELECT count(*), count(ts), count(amount) FROM _checked").fetchone()
    for target, good in (("ts", times), ("amount", amounts)):
        if total and not good:
            example = cur.execute("SELECT __reason FROM _checked LIMIT 1").fetchone()[0]
            kind = "date/time" if target == "ts" else "number"
            raise IngestError(f"{source}: column {mapping.columns[target]!r} mapped to {target} has no value that "
                              f"reads as a {kind} (first row: {example}); nothing was loaded — choose another "
                              f"column{' or set the time unit' if target == 'ts' else ''} in the mapping")


def mark_duplicates(cur: duckdb.DuckDBPyConnection, plan: ExtrasPlan) -> None:
    """Quarantine repeats of a transaction_id within this load and ids the workspace already holds (the one-table
    `_checked` of the Dask path; the DuckDB path's is `passes.mark_duplicates`)."""
    raw = duplicate_raw_sql(plan)
    cur.execute(repeats_in_load_sql(f"__raw = {raw}"))
    cur.execute(f"""
        UPDATE _checked SET __reason = 'transaction_id already in workspace: ' || left(transaction_id, 60),
                            __raw = {raw}
        WHERE __reason = '' AND transaction_id IN (SELECT transaction_id FROM transactions)
    """)


def _write_rows(cur: duckdb.DuckDBPyConnection, ingest_id: int, extras: dict[str, tuple[str, str]],
                good_written: bool = False) -> tuple[int, int, int]:
    """Good rows of _checked to transactions (unless `good_written`) and labels; bad rows and _rejects to
    quarantine; return counts."""
    if not good_written:
        targets = list(CANONICAL_COLUMNS) + [name for name, _ in extras.values()]
        cols = ", ".join(quote_ident(c) for c in targets)
        order = "" if _in_time_order(cur) else " ORDER BY ts, __fidx, __row"
        cur.execute(f"INSERT INTO transactions ({cols}, ingest_id) SELECT {cols}, $id FROM _checked "
                    f"WHERE __reason = ''{order}", {"id": ingest_id})
    insert_source_labels(cur, "SELECT transaction_id, is_fraud, label_ts FROM _checked WHERE __reason = ''")
    cur.execute("INSERT INTO quarantine SELECT $id, __row, __raw, __reason FROM _checked WHERE __reason <> '' "
                "ORDER BY __fidx, __row", {"id": ingest_id})
    rejected = cur.execute("INSERT INTO quarantine SELECT $id, __row, __raw, __reason FROM _rejects "
                           "ORDER BY __fidx, __row", {"id": ingest_id}).fetchone()[0]
    total, bad = cur.execute("SELECT count(*), count(*) FILTER (__reason <> '') FROM _checked").fetchone()
    return int(total) + int(rejected), int(total - bad), int(bad) + int(rejected)


def _in_time_order(cur: duckdb.DuckDBPyConnection) -> bool:
    """Whether _checked's good rows, as stored, are already ordered by (ts, __fidx, __row): then the insert keeps
    that order without sorting every column of every row (sources are usually written in time order)."""
    return not cur.execute("""
        SELECT count(*) FROM (
            SELECT ts, __fidx, __row, lag(ts) OVER w AS p_ts, lag(__fidx) OVER w AS p_fidx, lag(__row) OVER w AS p_row
            FROM _checked WHERE __reason = '' WINDOW w AS (ORDER BY rowid))
        WHERE ts < p_ts OR (ts = p_ts AND (__fidx, __row) <= (p_fidx, p_row))
    """).fetchone()[0]


def collect_rejects(cur: duckdb.DuckDBPyConnection, staged: Staged, fidx: int | None = None,
                    mapped_card: str | None = None) -> None:
    """Temp table _rejects (__fidx, __row, __raw, __reason): one row per line the CSV reader could not split.

    When the source has a card column, card-number-like digit runs in the kept line are masked.
    """
    cur.execute("CREATE TEMP TABLE _rejects (__fidx INTEGER, __row BIGINT, __raw VARCHAR, __reason VARCHAR)")
    cards = any(is_card_column(c, mapped_card) for c in staged.columns)
    line = mask_card_numbers_in_text_sql("any_value(csv_line)") if cards else "any_value(csv_line)"
    for i, table in staged.reject_tables:
        cur.execute(f"""
            INSERT INTO _rejects
            SELECT $fidx, line, to_json(struct_pack(_file := $file, line := {line})),
                   'malformed CSV line: ' || min(error_type || ' — ' || left(error_message, 120))
            FROM {table} GROUP BY line
        """, {"fidx": i if fidx is None else fidx, "file": str(staged.files[i].path)})


def _reason_counts(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = cur.execute("""
        SELECT split_part(r, ':', 1) AS kind, count(*) FROM (
            SELECT unnest(string_split(__reason, '; ')) AS r FROM _checked WHERE __reason <> '')
        GROUP BY 1 ORDER BY 2 DESC, 1
    """).fetchall()
    counts = {str(k): int(n) for k, n in rows}
    n = int(cur.execute("SELECT count(*) FROM _rejects").fetchone()[0])
    if n:
        counts["malformed CSV line"] = counts.get("malformed CSV line", 0) + n
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
