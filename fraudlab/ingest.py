"""Load CSV / Parquet / globs into `transactions`; every bad row goes to `quarantine` with its reason.

DuckDB is the fast path: the source is read as text (CSV) or as typed (Parquet), each value is cast
with TRY_CAST so nothing fails half-way, and one SQL pass assigns each row its reasons.
"""
from __future__ import annotations

import glob as globlib
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import pandas as pd
import pyarrow as pa

from fraudlab.errors import IngestError
from fraudlab.schema import ColumnMapping, check_mapping, detect_mapping
from fraudlab.workspace import CANONICAL_COLUMNS, Workspace, utcnow

Progress = Callable[[float, str], None]
FUTURE_TOLERANCE_DAYS = 1
EARLIEST_TS = "1990-01-01"


@dataclass(frozen=True)
class IngestReport:
    """What one load did: counts, reasons for quarantined rows, timing and the mapping used."""

    ingest_id: int | None
    source: str
    status: str  # ok | skipped
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    mapping: dict = field(default_factory=dict)
    message: str = ""


def _noop(_fraction: float, _message: str) -> None:
    return None


def quote_ident(name: str) -> str:
    """Quote an identifier for SQL, escaping embedded quotes (column names come from users' files)."""
    return '"' + str(name).replace('"', '""') + '"'


def resolve_paths(path_or_glob: str | Path) -> list[Path]:
    """Expand a path or glob into existing files, or raise IngestError naming what was asked for."""
    text = str(path_or_glob)
    paths = sorted(Path(p) for p in globlib.glob(text)) if any(ch in text for ch in "*?[") else [Path(text)]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise IngestError(f"{text}: no such file")
    return paths


def file_sha256(paths: list[Path]) -> str:
    """Content hash of one or more files, so loading the same data twice is recognised."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PAR1"


def _read_relation_sql(paths: list[Path]) -> tuple[str, list]:
    """SQL (and parameters) that reads the files as a relation: Parquet typed, CSV as text."""
    names = [str(p) for p in paths]
    if all(_is_parquet(p) for p in paths):
        return "SELECT * FROM read_parquet(?, union_by_name = true)", [names]
    if any(_is_parquet(p) for p in paths):
        raise IngestError("cannot mix Parquet and CSV files in one load: " + ", ".join(names))
    return ("SELECT * FROM read_csv(?, all_varchar = true, store_rejects = true, "
            "filename = false)", [names])


def ingest_path(ws: Workspace, path_or_glob: str | Path, mapping: ColumnMapping | None = None,
                progress: Progress | None = None) -> IngestReport:
    """Load one file or a glob of files into the workspace; bad rows are quarantined with reasons."""
    progress = progress or _noop
    paths = resolve_paths(path_or_glob)
    progress(0.05, f"hashing {len(paths)} file(s)")
    sha = file_sha256(paths)
    source = str(path_or_glob)
    done = _already_loaded(ws, sha)
    if done is not None:
        return done
    sql, params = _read_relation_sql(paths)
    progress(0.15, "reading")
    return _ingest(ws, source, sha, mapping, progress, lambda cur: cur.execute(
        f"CREATE TEMP TABLE _src AS {sql}", params))


def ingest_table(ws: Workspace, table: pa.Table | pd.DataFrame, source: str,
                 mapping: ColumnMapping | None = None, progress: Progress | None = None) -> IngestReport:
    """Load an in-memory Arrow table or DataFrame (an upload, a simulation) like a file."""
    progress = progress or _noop
    arrow = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
    sha = hashlib.sha256(str(arrow.schema).encode())
    for batch in arrow.to_batches():
        for column in batch.columns:
            for buf in column.buffers():
                if buf is not None:
                    sha.update(memoryview(buf))
    digest = sha.hexdigest()
    done = _already_loaded(ws, digest)
    if done is not None:
        return done

    def stage(cur: duckdb.DuckDBPyConnection) -> None:
        cur.register("_arrow_in", arrow)
        cur.execute("CREATE TEMP TABLE _src AS SELECT * FROM _arrow_in")
        cur.unregister("_arrow_in")

    return _ingest(ws, source, digest, mapping, progress, stage)


def _already_loaded(ws: Workspace, sha: str) -> IngestReport | None:
    row = ws.df("SELECT ingest_id, source, rows_read, rows_loaded FROM ingests WHERE sha256 = ? AND status = 'ok' "
                "ORDER BY ingest_id LIMIT 1", [sha])
    if row.empty:
        return None
    first = row.iloc[0]
    return IngestReport(None, str(first["source"]), "skipped", int(first["rows_read"]), 0, 0,
                        message=f"this data was already loaded as ingest {int(first['ingest_id'])} "
                                f"({int(first['rows_loaded'])} rows); nothing was added")


def _ingest(ws: Workspace, source: str, sha: str, mapping: ColumnMapping | None, progress: Progress,
            stage: Callable[[duckdb.DuckDBPyConnection], None]) -> IngestReport:
    started = time.perf_counter()
    with ws.write("ingest", details={"source": source}) as cur:
        cur.execute("SET TimeZone = 'UTC'")
        try:
            stage(cur)
        except duckdb.Error as exc:
            raise IngestError(f"{source}: cannot be read: {_first_line(exc)}") from exc
        src_cols = [r[0] for r in cur.execute("SELECT column_name FROM (DESCRIBE _src)").fetchall()]
        numeric = _numeric_columns(cur, src_cols)
        mapping = mapping or detect_mapping(src_cols, numeric)
        check_mapping(mapping, src_cols)
        ingest_id = cur.execute("SELECT nextval('ingest_seq')").fetchone()[0]
        progress(0.35, "validating rows")
        extras = _add_extra_columns(cur, src_cols, mapping, numeric)
        _build_checked(cur, mapping, sha, extras, src_cols)
        progress(0.7, "writing good rows and quarantine")
        counts = _write_rows(cur, ingest_id, src_cols, extras)
        reasons = _reason_counts(cur)
        rows_read, loaded, quarantined = counts
        seconds = time.perf_counter() - started
        cur.execute("INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'duckdb', 'ok')",
                    [ingest_id, source, sha, utcnow(), rows_read, loaded, quarantined, seconds,
                     json.dumps(mapping.to_dict())])
    progress(1.0, "done")
    return IngestReport(int(ingest_id), source, "ok", rows_read, loaded, quarantined, reasons, seconds,
                        mapping.to_dict(),
                        message=f"loaded {loaded:,} of {rows_read:,} rows; {quarantined:,} quarantined")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _numeric_columns(cur: duckdb.DuckDBPyConnection, cols: list[str]) -> set[str]:
    """Columns whose non-empty values (in a sample) all read as numbers."""
    if not cols:
        return set()
    checks = ", ".join(
        f"bool_and(TRY_CAST({quote_ident(c)} AS DOUBLE) IS NOT NULL OR {quote_ident(c)} IS NULL "
        f"OR trim(CAST({quote_ident(c)} AS VARCHAR)) = '') AND count({quote_ident(c)}) > 0" for c in cols)
    row = cur.execute(f"SELECT {checks} FROM (SELECT * FROM _src LIMIT 100000)").fetchone()
    return {c for c, ok in zip(cols, row) if ok}


def _extra_name(source_col: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", str(source_col)).strip("_").lower() or "col"
    if name[0].isdigit():
        name = "x_" + name
    if name in CANONICAL_COLUMNS or name in ("ingest_id", "label_ts"):
        name = "src_" + name
    return name


def _add_extra_columns(cur: duckdb.DuckDBPyConnection, src_cols: list[str], mapping: ColumnMapping,
                       numeric: set[str]) -> dict[str, tuple[str, str]]:
    """Add unmapped source columns to `transactions` (numbers as DOUBLE); return source -> (name, type)."""
    mapped = set(mapping.columns.values())
    existing = {r[0]: r[1] for r in cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'transactions'").fetchall()}
    extras: dict[str, tuple[str, str]] = {}
    for col in src_cols:
        if col in mapped:
            continue
        name = _extra_name(col)
        sqltype = "DOUBLE" if col in numeric else "VARCHAR"
        if name in existing:
            sqltype = "DOUBLE" if existing[name] == "DOUBLE" else "VARCHAR"
        else:
            cur.execute(f"ALTER TABLE transactions ADD COLUMN {quote_ident(name)} {sqltype}")
            existing[name] = sqltype
        extras[col] = (name, sqltype)
    return extras


def _text(col: str) -> str:
    return f"NULLIF(trim(CAST({quote_ident(col)} AS VARCHAR)), '')"


def _ts_expr(mapping: ColumnMapping, col: str) -> str:
    if mapping.ts_unit_seconds:
        return (f"(TIMESTAMP '{_safe_ts(mapping.ts_origin)}' + to_microseconds(CAST("
                f"TRY_CAST({_text(col)} AS DOUBLE) * {float(mapping.ts_unit_seconds)} * 1e6 AS BIGINT)))")
    return (f"COALESCE(CAST(TRY_CAST({_text(col)} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP), "
            f"TRY_STRPTIME({_text(col)}, ['%d/%m/%Y %H:%M:%S', '%d/%m/%Y %H:%M', '%m/%d/%Y %H:%M:%S', "
            f"'%m/%d/%Y %H:%M', '%Y/%m/%d %H:%M:%S', '%d.%m.%Y %H:%M:%S', '%Y%m%d%H%M%S']))")


def _safe_ts(text: str) -> str:
    if not re.fullmatch(r"[0-9:\- T]+", text):
        raise IngestError(f"time origin {text!r} is not a timestamp like 2026-01-01 00:00:00")
    return text


def _bool_expr(col: str) -> str:
    t = f"lower({_text(col)})"
    return (f"CASE WHEN {t} IN ('1', '1.0', 'true', 't', 'yes', 'y', 'fraud') THEN TRUE "
            f"WHEN {t} IN ('0', '0.0', 'false', 'f', 'no', 'n', 'legit', 'legitimate') THEN FALSE END")


def _build_checked(cur: duckdb.DuckDBPyConnection, mapping: ColumnMapping, sha: str,
                   extras: dict[str, tuple[str, str]], src_cols: list[str]) -> None:
    """Create temp table _checked: typed canonical columns, extras, and a reason per row ('' when good)."""
    m = mapping.columns
    select = ["_row"]
    reasons = []
    for target, sqltype in list(CANONICAL_COLUMNS.items()) + [("label_ts", "TIMESTAMP")]:
        col = m.get(target)
        if col is None:
            if target == "transaction_id":
                select.append(f"'{sha[:10]}-' || CAST(_row AS VARCHAR) AS transaction_id")
            else:
                select.append(f"CAST(NULL AS {sqltype}) AS {target}")
            continue
        raw = _text(col)
        if target in ("ts", "label_ts"):
            expr = _ts_expr(mapping, col) if target == "ts" else (
                f"CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)")
        elif sqltype == "DOUBLE":
            expr = f"TRY_CAST({raw} AS DOUBLE)"
        elif sqltype == "BOOLEAN":
            expr = _bool_expr(col)
        else:
            expr = raw
        select.append(f"{expr} AS {target}")
        if target in ("transaction_id", "ts", "amount"):
            select.append(f"{raw} AS _raw_{target}")
        elif sqltype != "VARCHAR":
            select.append(f"{raw} AS _raw_{target}")
    for col, (name, sqltype) in extras.items():
        expr = f"TRY_CAST({_text(col)} AS DOUBLE)" if sqltype == "DOUBLE" else _text(col)
        select.append(f"{expr} AS {quote_ident(name)}")
    cur.execute(f"CREATE TEMP TABLE _typed AS SELECT {', '.join(select)} "
                f"FROM (SELECT row_number() OVER () AS _row, * FROM _src)")
    reasons.append("CASE WHEN _raw_ts IS NULL THEN 'missing time' WHEN ts IS NULL THEN "
                   "'unparsable time: ' || left(_raw_ts, 60) "
                   f"WHEN ts > now()::TIMESTAMP + INTERVAL {FUTURE_TOLERANCE_DAYS} DAY THEN "
                   "'time in the future: ' || CAST(ts AS VARCHAR) "
                   f"WHEN ts < TIMESTAMP '{EARLIEST_TS}' THEN 'time before {EARLIEST_TS}: ' || CAST(ts AS VARCHAR) END")
    reasons.append("CASE WHEN _raw_amount IS NULL THEN 'missing amount' WHEN amount IS NULL THEN "
                   "'unparsable amount: ' || left(_raw_amount, 60) WHEN NOT isfinite(amount) THEN "
                   "'amount not finite: ' || left(_raw_amount, 60) WHEN amount < 0 THEN "
                   "'negative amount: ' || left(_raw_amount, 60) END")
    if "transaction_id" in m:
        reasons.append("CASE WHEN _raw_transaction_id IS NULL THEN 'missing transaction_id' END")
    for target, sqltype in CANONICAL_COLUMNS.items():
        if target in m and target not in ("ts", "amount", "transaction_id") and sqltype != "VARCHAR":
            kind = "not a boolean" if sqltype == "BOOLEAN" else "not a number"
            reasons.append(f"CASE WHEN _raw_{target} IS NOT NULL AND {target} IS NULL THEN "
                           f"'{target} {kind}: ' || left(_raw_{target}, 60) END")
    for target, limit in (("lat", 90), ("lon", 180), ("merchant_lat", 90), ("merchant_lon", 180)):
        if target in m:
            reasons.append(f"CASE WHEN abs({target}) > {limit} THEN '{target} out of range: ' || "
                           f"CAST({target} AS VARCHAR) END")
    if "label_ts" in m:
        reasons.append("CASE WHEN _raw_label_ts IS NOT NULL AND label_ts IS NULL THEN "
                       "'unparsable label time: ' || left(_raw_label_ts, 60) END")
    cur.execute(f"""
        CREATE TEMP TABLE _checked AS
        SELECT t.*, concat_ws('; ', {', '.join(reasons)},
            CASE WHEN transaction_id IS NOT NULL AND row_number() OVER (PARTITION BY transaction_id ORDER BY _row) > 1
                 THEN 'duplicate transaction_id in this load: ' || left(transaction_id, 60) END,
            CASE WHEN e.transaction_id IS NOT NULL THEN 'transaction_id already in workspace: '
                 || left(t.transaction_id, 60) END) AS _reason
        FROM _typed t
        LEFT JOIN (SELECT DISTINCT transaction_id FROM transactions) e USING (transaction_id)
    """)


def _write_rows(cur: duckdb.DuckDBPyConnection, ingest_id: int, src_cols: list[str],
                extras: dict[str, tuple[str, str]]) -> tuple[int, int, int]:
    targets = list(CANONICAL_COLUMNS) + [name for name, _ in extras.values()]
    cols = ", ".join(quote_ident(c) for c in targets)
    cur.execute(f"INSERT INTO transactions ({cols}, ingest_id) SELECT {cols}, ? FROM _checked "
                f"WHERE _reason = '' ORDER BY ts, _row", [ingest_id])
    cur.execute("INSERT INTO labels SELECT transaction_id, is_fraud, label_ts, 'data' FROM _checked "
                "WHERE _reason = '' AND is_fraud IS NOT NULL")
    raw = "struct_pack(" + ", ".join(f"{quote_ident(c)} := s.{quote_ident(c)}" for c in src_cols) + ")"
    cur.execute(f"""
        INSERT INTO quarantine
        SELECT ?, s._row, to_json({raw}), c._reason
        FROM _checked c JOIN (SELECT row_number() OVER () AS _row, * FROM _src) s USING (_row)
        WHERE c._reason <> ''
    """, [ingest_id])
    rejected = _csv_rejects(cur, ingest_id)
    total, bad = cur.execute("SELECT count(*), count(*) FILTER (_reason <> '') FROM _checked").fetchone()
    return int(total) + rejected, int(total - bad), int(bad) + rejected


def _csv_rejects(cur: duckdb.DuckDBPyConnection, ingest_id: int) -> int:
    """Move lines the CSV reader could not split into columns into quarantine."""
    try:
        cur.execute("SELECT 1 FROM reject_errors LIMIT 0")
    except duckdb.Error:
        return 0
    cur.execute("""
        INSERT INTO quarantine
        SELECT ?, line, to_json(struct_pack(line := csv_line)),
               'malformed CSV line: ' || error_type || ' — ' || left(error_message, 120)
        FROM reject_errors
    """, [ingest_id])
    return int(cur.execute("SELECT count(*) FROM reject_errors").fetchone()[0])


def _reason_counts(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = cur.execute("""
        SELECT split_part(r, ':', 1) AS kind, count(*) FROM (
            SELECT unnest(string_split(_reason, '; ')) AS r FROM _checked WHERE _reason <> '')
        GROUP BY 1 ORDER BY 2 DESC
    """).fetchall()
    counts = {str(k): int(n) for k, n in rows}
    try:
        for kind, n in cur.execute("SELECT 'malformed CSV line', count(*) FROM reject_errors").fetchall():
            if n:
                counts[kind] = int(n)
    except duckdb.Error:
        pass
    return counts


def quarantine_rows(ws: Workspace, ingest_id: int | None = None, limit: int | None = None) -> pd.DataFrame:
    """Quarantined rows with their reasons, newest load first; all loads when ingest_id is None."""
    sql = "SELECT ingest_id, row_number, reason, raw FROM quarantine"
    params: list = []
    if ingest_id is not None:
        sql += " WHERE ingest_id = ?"
        params.append(ingest_id)
    sql += " ORDER BY ingest_id DESC, row_number"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return ws.df(sql, params)


def ingest_history(ws: Workspace) -> pd.DataFrame:
    """One row per load, newest first."""
    return ws.df("SELECT * FROM ingests ORDER BY ingest_id DESC")


def register_cli(subparsers) -> None:
    """Add `ingest PATH_OR_GLOB [--workspace FILE]`."""
    parser = subparsers.add_parser("ingest", help="load CSV / Parquet files (or a glob) into the workspace")
    parser.add_argument("path", help="file path or glob, e.g. 'data/*.csv.gz'")
    parser.add_argument("--workspace", default=None, help="workspace file (default: FRAUDLAB_WORKSPACE)")
    parser.set_defaults(func=_cli_ingest)


def _cli_ingest(args) -> int:
    ws = Workspace(args.workspace)
    report = ingest_path(ws, args.path)
    print(f"{report.source}: {report.message} in {report.seconds:.2f} s")
    for reason, count in report.reasons.items():
        print(f"  {count:>10,}  {reason}")
    return 0
