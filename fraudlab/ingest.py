"""Load CSV / Parquet / globs into `transactions`; every bad row goes to `quarantine` with its reason.

DuckDB is the fast path. Each file is inspected first (empty, binary, zip, gzip, encoding) so a file that cannot
be read fails with one clear message before anything changes. CSV files are read as text, one file at a time
(so files with different column orders line up by name and malformed lines land in a rejects table); Parquet is
read typed. Every value is cast with TRY_CAST so nothing fails half-way, one SQL pass assigns each row its
reasons, and the whole load runs in one workspace transaction: it all lands, or nothing does.
"""
from __future__ import annotations

import codecs
import glob as globlib
import gzip
import hashlib
import json
import os
import re
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb
import pandas as pd
import pyarrow as pa

from fraudlab.errors import IngestError
from fraudlab.schema import ColumnMapping, ColumnProfile, check_mapping, detect_mapping
from fraudlab.workspace import CANONICAL_COLUMNS, Workspace, utcnow

Progress = Callable[[float, str], None]
FUTURE_TOLERANCE_DAYS = 1
EARLIEST_TS = "1990-01-01"
SAMPLE_ROWS = 20_000
HEAD_BYTES = 1 << 16
NULL_WORDS = ("", "na", "n/a", "nan", "null", "none", "nat", "-")
TIME_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
                "%Y/%m/%d %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%Y%m%d%H%M%S", "%d/%m/%Y", "%d-%b-%Y %H:%M:%S")
TARGETS = dict(CANONICAL_COLUMNS, label_ts="TIMESTAMP")
KEY_COLUMNS = ("transaction_id", "ts", "amount")
# DuckDB memory while a load runs: above it, temp tables and sorts spill to disk (keeps peak RSS of a 10M-row load
# low). It is a database-wide setting, restored when the load ends.
INGEST_MEMORY_LIMIT = "2GB"


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
    files: int = 1
    engine: str = "duckdb"


@dataclass(frozen=True)
class SourceFile:
    """How to read one file: its kind and, for text, its compression and encoding."""

    path: Path
    kind: str  # csv | parquet
    compression: str = "none"  # none | gzip | zstd
    encoding: str = "utf-8"  # utf-8 | utf-16 | latin-1


@dataclass(frozen=True)
class SourcePreview:
    """What the Data page shows before loading: sample rows, source columns and the detected mapping."""

    source: str
    files: list[str]
    kind: str
    sample: pd.DataFrame
    columns: pd.DataFrame  # column, type, kind, filled, example, mapped_to
    mapping: ColumnMapping


@dataclass
class _Staged:
    """A readable source inside one DuckDB cursor: SQL for its rows (+ __fidx, __row) and what it holds."""

    sql: str
    params: dict[str, Any]
    columns: list[str]
    types: dict[str, str]
    files: list[SourceFile]
    digests: list[str]
    reject_tables: list[tuple[int, str]] = field(default_factory=list)


def _noop(_fraction: float, _message: str) -> None:
    return None


def quote_ident(name: str) -> str:
    """Quote an identifier for SQL, escaping embedded quotes (column names come from users' files)."""
    return '"' + str(name).replace('"', '""') + '"'


# ---------------------------------------------------------------- files: find, inspect, hash

def resolve_paths(path_or_glob: str | Path) -> list[Path]:
    """Expand a path or glob into readable files, or raise IngestError naming what was asked for and why."""
    text = str(path_or_glob).strip()
    if not text:
        raise IngestError("no path given")
    if any(ch in text for ch in "*?["):
        paths = sorted(Path(p) for p in globlib.glob(os.path.expanduser(text), recursive=True))
        paths = [p for p in paths if p.is_file()]
        if not paths:
            raise IngestError(f"{text}: no files match this pattern")
    else:
        path = Path(os.path.expanduser(text))
        if not path.exists():
            raise IngestError(f"{text}: no such file")
        if path.is_dir():
            raise IngestError(f"{text}: is a folder; to load every file in it use a glob such as '{text}/*.csv'")
        paths = [path]
    for path in paths:
        if not os.access(path, os.R_OK):
            raise IngestError(f"{path}: permission denied (the file cannot be read)")
    return paths


def inspect_file(path: Path) -> SourceFile:
    """Decide how to read a file from its first bytes; raise IngestError for empty, binary or archive files."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as exc:
        raise IngestError(f"{path}: cannot be opened ({exc.strerror or exc})") from exc
    if not head:
        raise IngestError(f"{path}: the file is empty (0 bytes)")
    if head[:4] == b"PAR1":
        return SourceFile(path, "parquet")
    if head[:4] == b"PK\x03\x04":
        raise IngestError(f"{path}: is a ZIP archive or an Excel workbook, not CSV or Parquet; "
                          "unzip it or save the sheet as CSV first")
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return SourceFile(path, "csv", compression="zstd")
    compression = "none"
    if head[:2] == b"\x1f\x8b":
        compression, head = "gzip", _gunzip_head(path)
        if not head:
            raise IngestError(f"{path}: the gzip file holds no data")
    return SourceFile(path, "csv", compression, _text_encoding(path, head))


def _gunzip_head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
            if len(head) < HEAD_BYTES:
                handle.read()  # a small file is read to its end so a truncated stream is caught here
            return head
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestError(f"{path}: is a damaged gzip file ({exc})") from exc


def _text_encoding(path: Path, head: bytes) -> str:
    """utf-8 (with or without BOM), utf-16 (by BOM) or latin-1; raise for binary content."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    control = sum(head.count(bytes([b])) for b in range(32) if b not in (9, 10, 13))
    if b"\x00" in head or control > 0.01 * len(head):
        raise IngestError(f"{path}: is not a text (CSV) file: it holds binary data. Load CSV (optionally "
                          "gzip'd) or Parquet files")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "latin-1"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(paths: list[Path]) -> str:
    """Content hash of one or more files, so loading the same data twice is recognised."""
    return _combined([_file_digest(p) for p in paths])


def _combined(digests: list[str]) -> str:
    return digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()


# ---------------------------------------------------------------- staging: files -> one relation

def _csv_scan(i: int, source: SourceFile) -> str:
    """read_csv call for file i (its path bound as $f{i}); every value read as text, bad lines kept aside."""
    options = [f"$f{i}", "all_varchar = true", "store_rejects = true", f"rejects_table = '_rej{i}'",
               f"rejects_scan = '_scan{i}'", f"compression = '{source.compression}'"]
    if source.encoding != "utf-8":
        options.append(f"encoding = '{source.encoding}'")
    return f"read_csv({', '.join(options)})"


def _stage(cur: duckdb.DuckDBPyConnection, files: list[SourceFile], sample_rows: int | None = None,
           allow_empty: bool = False) -> _Staged:
    """Make the files readable as one relation in this cursor; raise IngestError naming a file that is not."""
    kinds = {f.kind for f in files}
    if len(kinds) > 1:
        raise IngestError("cannot mix Parquet and CSV files in one load: "
                          + ", ".join(str(f.path) for f in files[:10]))
    digests = [""] * len(files)
    if kinds == {"parquet"}:
        return _stage_parquet(cur, files, digests)
    return _stage_csv(cur, files, digests, sample_rows, allow_empty)


def _describe(cur: duckdb.DuckDBPyConnection, sql: str, params: dict, source: SourceFile) -> list[tuple[str, str]]:
    try:
        return [(r[0], r[1]) for r in cur.execute(f"DESCRIBE SELECT * FROM {sql}", params).fetchall()]
    except duckdb.Error as exc:
        raise IngestError(f"{source.path}: cannot be read as {source.kind.upper()}: {_first_line(exc)}") from exc


def _stage_parquet(cur: duckdb.DuckDBPyConnection, files: list[SourceFile], digests: list[str]) -> _Staged:
    columns: dict[str, str] = {}
    parts, params = [], {}
    for i, source in enumerate(files):
        params[f"f{i}"] = str(source.path)
        for name, sqltype in _describe(cur, f"read_parquet($f{i})", {f"f{i}": str(source.path)}, source):
            columns.setdefault(name, sqltype)
        parts.append(f"SELECT * EXCLUDE (file_row_number), {i} AS __fidx, file_row_number + 1 AS __row "
                     f"FROM read_parquet($f{i}, file_row_number = true)")
    sql = "(" + " UNION ALL BY NAME ".join(parts) + ")"
    types = {r[0]: r[1] for r in cur.execute(f"DESCRIBE SELECT * FROM {sql}", params).fetchall()}
    cols = [c for c in columns if c not in ("__fidx", "__row")]
    return _Staged(sql, params, cols, {c: types[c] for c in cols}, files, digests)


def _stage_csv(cur: duckdb.DuckDBPyConnection, files: list[SourceFile], digests: list[str],
               sample_rows: int | None, allow_empty: bool = False) -> _Staged:
    described = [_describe(cur, _csv_scan(i, f), {f"f{i}": str(f.path)}, f) for i, f in enumerate(files)]
    columns: list[str] = []
    for names in described:
        columns.extend(n for n, _ in names if n not in columns)
    if "__fidx" in columns or "__row" in columns or "__off" in columns:
        raise IngestError("source columns may not be named __fidx, __row or __off")
    cols_sql = ", ".join(f"{quote_ident(c)} VARCHAR" for c in columns)
    cur.execute(f"CREATE TEMP TABLE _src ({cols_sql}, __fidx INTEGER, __off BIGINT)")
    staged = _Staged("", {}, columns, {c: "VARCHAR" for c in columns}, files, digests)
    offset = 0
    limit = "" if sample_rows is None else f" LIMIT {int(sample_rows)}"
    for i, source in enumerate(files):
        try:
            inserted = cur.execute(f"INSERT INTO _src BY NAME SELECT *, $i AS __fidx, $off AS __off "
                                   f"FROM {_csv_scan(i, source)}{limit}",
                                   {"i": i, "off": offset, f"f{i}": str(source.path)}).fetchone()[0]
        except duckdb.Error as exc:
            raise IngestError(f"{source.path}: cannot be read as CSV: {_first_line(exc)}") from exc
        rejected = cur.execute(f"SELECT count(*) FROM _rej{i}").fetchone()[0]
        staged.reject_tables.append((i, f"_rej{i}"))
        if inserted == 0 and rejected == 0 and len(files) == 1 and not allow_empty:
            raise IngestError(f"{source.path}: has a header row ({_shortlist(described[i])}) but no data rows")
        offset += int(inserted)
    if offset == 0 and not allow_empty and not any(cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                               for _, t in staged.reject_tables):
        raise IngestError(f"{len(files)} files: none of them holds any data rows")
    staged.sql = f"(SELECT * EXCLUDE (__off), rowid + 1 - __off - {_first_rowid(cur)} AS __row FROM _src)"
    return staged


def _first_rowid(cur: duckdb.DuckDBPyConnection) -> int:
    """Row ids of a temp table inside a transaction start at a large offset; rows keep insertion (file) order."""
    return int(cur.execute("SELECT coalesce(min(rowid), 0) FROM _src").fetchone()[0])


def _shortlist(columns: list[tuple[str, str]]) -> str:
    names = ", ".join(str(n) for n, _ in columns[:8])
    return names + (", …" if len(columns) > 8 else "")


# ---------------------------------------------------------------- profiling and mapping

def _kind(sqltype: str) -> str:
    t = sqltype.upper()
    if t.startswith(("VARCHAR", "TEXT", "STRING")):
        return "text"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT", "FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "number"
    if t.startswith("TIMESTAMP WITH TIME ZONE") or t.startswith("TIMESTAMPTZ"):
        return "timetz"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "time"
    return "bool" if t == "BOOLEAN" else "other"


def _profile(cur: duckdb.DuckDBPyConnection, staged: _Staged) -> dict[str, ColumnProfile]:
    """Per column on a sample: filled values, how many read as numbers / times, numeric min and max."""
    exprs = []
    for c in staged.columns:
        q, kind = quote_ident(c), _kind(staged.types[c])
        text = _text(c, staged.types[c])
        num = f"TRY_CAST({text} AS DOUBLE)" if kind in ("text", "number") else "NULL::DOUBLE"
        exprs += [f"count({text})", f"count({num})",
                  f"count(TRY_CAST({text} AS TIMESTAMP))" if kind == "text" else f"count({q})",
                  f"min({num})", f"max({num})"]
    row = cur.execute(f"SELECT {', '.join(exprs)} FROM (SELECT * FROM {staged.sql} LIMIT {SAMPLE_ROWS})",
                      staged.params).fetchone()
    profiles = {}
    for k, c in enumerate(staged.columns):
        filled, numeric, timelike, low, high = row[5 * k: 5 * k + 5]
        kind = _kind(staged.types[c])
        if kind in ("time", "timetz"):
            numeric = 0
        elif kind != "text":
            timelike = 0
        profiles[c] = ColumnProfile(c, staged.types[c], int(filled), int(numeric), int(timelike),
                                    None if low is None else float(low), None if high is None else float(high))
    return profiles


# ---------------------------------------------------------------- typed values and reasons (SQL builders)

def _text(col: str, sqltype: str = "VARCHAR") -> str:
    """A column as trimmed text, with empty and NA-like values as NULL."""
    q = quote_ident(col)
    if _kind(sqltype) != "text":
        return f"CAST({q} AS VARCHAR)"
    words = ", ".join(f"'{w}'" for w in NULL_WORDS)
    return f"(CASE WHEN lower(trim({q})) IN ({words}) THEN NULL ELSE trim({q}) END)"


def _double(col: str, sqltype: str) -> str:
    kind = _kind(sqltype)
    if kind == "number":
        return f"CAST({quote_ident(col)} AS DOUBLE)"
    if kind == "bool":
        return f"CAST(CAST({quote_ident(col)} AS INTEGER) AS DOUBLE)"
    return f"TRY_CAST({_text(col, sqltype)} AS DOUBLE)"


def _time(col: str, sqltype: str, mapping: ColumnMapping | None) -> str:
    """ts as a UTC TIMESTAMP: numeric offsets from the mapping's origin, typed times, or many text formats."""
    kind, q = _kind(sqltype), quote_ident(col)
    if mapping is not None and mapping.ts_unit_seconds:
        micros = f"CAST({_double(col, sqltype)} * {float(mapping.ts_unit_seconds) * 1e6!r} AS BIGINT)"
        return f"(TIMESTAMP '{_safe_ts(mapping.ts_origin)}' + to_microseconds({micros}))"
    if kind == "time":
        return f"CAST({q} AS TIMESTAMP)"
    if kind == "timetz":
        return f"CAST({q} AT TIME ZONE 'UTC' AS TIMESTAMP)"
    text = _text(col, sqltype)
    formats = ", ".join(f"'{f}'" for f in TIME_FORMATS)
    return (f"COALESCE(CAST(TRY_CAST({text} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP), "
            f"TRY_STRPTIME({text}, [{formats}]))")


def _safe_ts(text: str) -> str:
    if not re.fullmatch(r"[0-9:\- T.]+", str(text)):
        raise IngestError(f"time origin {text!r} is not a timestamp like 2026-01-01 00:00:00")
    return str(text)


def _bool(col: str, sqltype: str) -> str:
    kind = _kind(sqltype)
    if kind == "bool":
        return quote_ident(col)
    if kind == "number":
        return (f"CASE WHEN {quote_ident(col)} = 1 THEN TRUE WHEN {quote_ident(col)} = 0 THEN FALSE END")
    t = f"lower({_text(col, sqltype)})"
    return (f"CASE WHEN {t} IN ('1', '1.0', 'true', 't', 'yes', 'y', 'fraud') THEN TRUE "
            f"WHEN {t} IN ('0', '0.0', 'false', 'f', 'no', 'n', 'legit', 'legitimate') THEN FALSE END")


def _typed_expr(target: str, col: str, sqltype: str, mapping: ColumnMapping) -> str:
    kind = TARGETS[target]
    if target == "ts":
        return _time(col, sqltype, mapping)
    if target == "label_ts":
        return _time(col, sqltype, None)
    if kind == "DOUBLE":
        return _double(col, sqltype)
    if kind == "BOOLEAN":
        return _bool(col, sqltype)
    return _text(col, sqltype)


def _select_typed(staged: _Staged, mapping: ColumnMapping, extras: dict[str, tuple[str, str]]) -> list[str]:
    """Select-list items: typed canonical columns as __t_<name>, their raw text as __r_<name>, extras as __x_i."""
    items = []
    for target in TARGETS:
        col = mapping.columns.get(target)
        if col is None:
            items.append(_generated_id(staged) if target == "transaction_id"
                         else f"CAST(NULL AS {TARGETS[target]}) AS __t_{target}")
            continue
        items.append(f"{_typed_expr(target, col, staged.types[col], mapping)} AS __t_{target}")
        if target in KEY_COLUMNS or TARGETS[target] != "VARCHAR":
            items.append(f"{_text(col, staged.types[col])} AS __r_{target}")
    for k, (col, (_name, sqltype)) in enumerate(extras.items()):
        if sqltype == "DOUBLE":
            items.append(f"{_double(col, staged.types[col])} AS __x_{k}")
            if _kind(staged.types[col]) == "text":
                items.append(f"{_text(col)} AS __xr_{k}")
        else:
            items.append(f"{_text(col, staged.types[col]) if _kind(staged.types[col]) != 'text' else quote_ident(col)}"
                         f" AS __x_{k}")
    return items


def _generated_id(staged: _Staged) -> str:
    """transaction_id from the file's content hash and row number, stable across reloads of the same file."""
    cases = " ".join(f"WHEN {i} THEN '{d[:12]}'" for i, d in enumerate(staged.digests) if re.fullmatch("[0-9a-f]*", d))
    return f"(CASE __fidx {cases} END || '-' || CAST(__row AS VARCHAR)) AS __t_transaction_id"


def _row_reasons(mapping: ColumnMapping, extras: dict[str, tuple[str, str]], staged: _Staged, now: str) -> list[str]:
    """One SQL CASE per check; each yields a reason text or NULL."""
    m = mapping.columns
    reasons = [
        "CASE WHEN __r_ts IS NULL THEN 'missing time' WHEN __t_ts IS NULL THEN "
        "'unparsable time: ' || left(__r_ts, 60) "
        f"WHEN __t_ts > TIMESTAMP '{now}' + INTERVAL {FUTURE_TOLERANCE_DAYS} DAY THEN "
        "'time in the future: ' || CAST(__t_ts AS VARCHAR) "
        f"WHEN __t_ts < TIMESTAMP '{EARLIEST_TS}' THEN 'time before {EARLIEST_TS}: ' || CAST(__t_ts AS VARCHAR) END",
        "CASE WHEN __r_amount IS NULL THEN 'missing amount' WHEN __t_amount IS NULL THEN "
        "'unparsable amount: ' || left(__r_amount, 60) WHEN NOT isfinite(__t_amount) THEN "
        "'amount not finite: ' || left(__r_amount, 60) WHEN __t_amount < 0 THEN "
        "'negative amount: ' || left(__r_amount, 60) END",
    ]
    if "transaction_id" in m:
        reasons.append("CASE WHEN __r_transaction_id IS NULL THEN 'missing transaction_id' END")
    for target, sqltype in TARGETS.items():
        if target in m and target not in ("ts", "amount", "transaction_id") and sqltype != "VARCHAR":
            kind = {"BOOLEAN": "not a boolean", "TIMESTAMP": "not a time"}.get(sqltype, "not a number")
            reasons.append(f"CASE WHEN __r_{target} IS NOT NULL AND __t_{target} IS NULL THEN "
                           f"'{target} {kind}: ' || left(__r_{target}, 60) END")
    for target, limit in (("lat", 90), ("lon", 180), ("merchant_lat", 90), ("merchant_lon", 180)):
        if target in m:
            reasons.append(f"CASE WHEN abs(__t_{target}) > {limit} THEN '{target} out of range: ' || "
                           f"CAST(__t_{target} AS VARCHAR) END")
    for k, (col, (name, sqltype)) in enumerate(extras.items()):
        if sqltype == "DOUBLE" and _kind(staged.types[col]) == "text":
            reasons.append(f"CASE WHEN __xr_{k} IS NOT NULL AND __x_{k} IS NULL THEN "
                           f"'{name} not a number: ' || left(__xr_{k}, 60) END")
    return reasons


def _raw_json(staged: _Staged, with_file: bool) -> str:
    """JSON of the source record as read (plus the file name when a load has several files)."""
    fields = [f"{quote_ident(c)} := {quote_ident(c)}" for c in staged.columns]
    if with_file:
        fields.insert(0, "_file := $file_names[__fidx + 1]")
    return f"to_json(struct_pack({', '.join(fields)}))"


# ---------------------------------------------------------------- the load

def prepare_files(ws: Workspace, path_or_glob: str | Path, progress: Progress, source: str | None
                  ) -> tuple[list[SourceFile], list[str], str, str, IngestReport | None]:
    """Resolve and inspect the files, hash them, and find an earlier load of the same content (if any)."""
    paths = resolve_paths(path_or_glob)
    files = [inspect_file(p) for p in paths]
    progress(0.02, f"checking {len(paths)} file(s)")
    digests = [_file_digest(p) for p in paths]
    sha = _combined(digests)
    return files, digests, sha, source or str(path_or_glob), _already_loaded(ws, sha)


def ingest_path(ws: Workspace, path_or_glob: str | Path, mapping: ColumnMapping | None = None,
                progress: Progress | None = None, *, source: str | None = None) -> IngestReport:
    """Load one file or a glob of files into the workspace; bad rows are quarantined with reasons."""
    progress = progress or _noop
    files, digests, sha, label, done = prepare_files(ws, path_or_glob, progress, source)
    if done is not None:
        return done

    def stage(cur: duckdb.DuckDBPyConnection) -> _Staged:
        staged = _stage(cur, files)
        staged.digests = digests
        return staged

    return _ingest(ws, label, sha, mapping, progress, stage)


def ingest_table(ws: Workspace, table: pa.Table | pd.DataFrame, source: str,
                 mapping: ColumnMapping | None = None, progress: Progress | None = None) -> IngestReport:
    """Load an in-memory Arrow table or DataFrame (an upload, a simulation) like a file."""
    progress = progress or _noop
    arrow = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
    digest = _arrow_digest(arrow)
    done = _already_loaded(ws, digest)
    if done is not None:
        return done

    def stage(cur: duckdb.DuckDBPyConnection) -> _Staged:
        cur.register("_arrow_in", arrow)
        cur.execute("CREATE TEMP TABLE _src AS SELECT *, 0 AS __fidx FROM _arrow_in")
        cur.unregister("_arrow_in")
        types = {r[0]: r[1] for r in cur.execute("DESCRIBE _src").fetchall()}
        cols = [c for c in types if c != "__fidx"]
        if not cols or cur.execute("SELECT count(*) FROM _src").fetchone()[0] == 0:
            raise IngestError(f"{source}: the table holds no rows")
        return _Staged(f"(SELECT *, rowid + 1 - {_first_rowid(cur)} AS __row FROM _src)", {}, cols, {c: types[c] for c in cols},
                       [SourceFile(Path(source), "table")], [digest])

    return _ingest(ws, source, digest, mapping, progress, stage)


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


def _ingest(ws: Workspace, source: str, sha: str, mapping: ColumnMapping | None, progress: Progress,
            stage: Callable[[duckdb.DuckDBPyConnection], _Staged], engine: str = "duckdb") -> IngestReport:
    started = time.perf_counter()
    with ws.memory_capped(INGEST_MEMORY_LIMIT), ws.write("ingest", details={"source": source}) as cur:
        cur.execute("SET TimeZone = 'UTC'")
        progress(0.1, "reading")
        staged = stage(cur)
        _collect_rejects(cur, staged)
        mapping = mapping or detect_mapping(staged.columns, profiles=_profile(cur, staged))
        check_mapping(mapping, staged.columns)
        ingest_id = int(cur.execute("SELECT nextval('ingest_seq')").fetchone()[0])
        progress(0.4, "validating rows")
        extras = _add_extra_columns(cur, staged, mapping)
        _build_checked(cur, staged, mapping, extras)
        _refuse_unreadable_key(cur, mapping, source)
        _mark_duplicates(cur, extras)
        progress(0.75, "writing good rows and quarantine")
        report = finish_load(cur, ingest_id, source, sha, mapping, extras, started, engine, len(staged.files))
    progress(1.0, "done")
    return report


def finish_load(cur: duckdb.DuckDBPyConnection, ingest_id: int, source: str, sha: str, mapping: ColumnMapping,
                extras: dict[str, tuple[str, str]], started: float, engine: str, files: int) -> IngestReport:
    """Write the checked rows (good to transactions, bad to quarantine), log the ingest, and report it."""
    rows_read, loaded, quarantined = _write_rows(cur, ingest_id, extras)
    reasons = _reason_counts(cur)
    seconds = time.perf_counter() - started
    cur.execute("INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok')",
                [ingest_id, source, sha, utcnow(), rows_read, loaded, quarantined, seconds,
                 json.dumps(mapping.to_dict()), engine])
    return IngestReport(ingest_id, source, "ok", rows_read, loaded, quarantined, reasons, seconds,
                        mapping.to_dict(), f"loaded {loaded:,} of {rows_read:,} rows; {quarantined:,} quarantined",
                        files=files, engine=engine)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _extra_name(source_col: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", str(source_col)).strip("_").lower()[:60] or "col"
    if name[0].isdigit():
        name = "x_" + name
    if name in TARGETS or name in ("ingest_id",) or name.startswith("__"):
        name = "src_" + name
    return name


_EXISTING_COLUMNS_SQL = ("SELECT column_name, data_type FROM information_schema.columns "
                         "WHERE table_name = 'transactions'")


def _add_extra_columns(cur: duckdb.DuckDBPyConnection, staged: _Staged,
                       mapping: ColumnMapping) -> dict[str, tuple[str, str]]:
    """Add unmapped source columns to `transactions` (numbers as DOUBLE); return source -> (name, type)."""
    existing = dict(cur.execute(_EXISTING_COLUMNS_SQL).fetchall())
    mapped = set(mapping.columns.values())
    numeric = _numeric_sources(cur, staged, [c for c in staged.columns if c not in mapped])
    extras = _plan_extras(existing, staged.columns, mapped, numeric)
    _create_extra_columns(cur, extras)
    return extras


def _plan_extras(existing: dict[str, str], columns: list[str], mapped: set[str],
                 numeric: set[str]) -> dict[str, tuple[str, str]]:
    """Name and type for each unmapped source column, avoiding clashes with existing columns of another type."""
    extras: dict[str, tuple[str, str]] = {}
    taken: set[str] = set()
    for col in columns:
        if col in mapped:
            continue
        sqltype = "DOUBLE" if col in numeric else "VARCHAR"
        base = name = _extra_name(col)
        n = 1
        while name in taken or (name in existing and existing[name] != sqltype):
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        extras[col] = (name, sqltype)
    return extras


def _create_extra_columns(cur: duckdb.DuckDBPyConnection, extras: dict[str, tuple[str, str]]) -> None:
    existing = dict(cur.execute(_EXISTING_COLUMNS_SQL).fetchall())
    for name, sqltype in extras.values():
        if name not in existing:
            cur.execute(f"ALTER TABLE transactions ADD COLUMN {quote_ident(name)} {sqltype}")
        elif existing[name] != sqltype:
            raise IngestError(f"column {name!r} changed type ({existing[name]} in the workspace, {sqltype} now) "
                              "while this load ran; load again")


def _numeric_sources(cur: duckdb.DuckDBPyConnection, staged: _Staged, cols: list[str]) -> set[str]:
    """Unmapped columns to keep as numbers: typed numeric, or text whose sampled values all read as numbers."""
    numeric = {c for c in cols if _kind(staged.types[c]) == "number"}
    text_cols = [c for c in cols if _kind(staged.types[c]) == "text"]
    if text_cols:
        checks = ", ".join(f"count({_text(c)}) > 0 AND count({_text(c)}) = count(TRY_CAST({_text(c)} AS DOUBLE))"
                           for c in text_cols)
        row = cur.execute(f"SELECT {checks} FROM (SELECT * FROM {staged.sql} LIMIT {SAMPLE_ROWS})",
                          staged.params).fetchone()
        numeric |= {c for c, ok in zip(text_cols, row) if ok}
    return numeric


def _build_checked(cur: duckdb.DuckDBPyConnection, staged: _Staged, mapping: ColumnMapping,
                   extras: dict[str, tuple[str, str]], file_names: list[str] | None = None) -> None:
    """Temp table _checked: typed canonical columns, extras, __reason ('' when good) and __raw for bad rows.

    The raw record names its file when `file_names` is given (default: when the load has several files).
    """
    now = utcnow().strftime("%Y-%m-%d %H:%M:%S")
    reasons = ", ".join(_row_reasons(mapping, extras, staged, now))
    outer = [f"__t_{t} AS {t}" for t in TARGETS] + [f"__x_{k} AS {quote_ident(name)}"
                                                    for k, (name, _) in enumerate(extras.values())]
    params = dict(staged.params)
    if file_names is None and len(staged.files) > 1:
        file_names = [str(f.path) for f in staged.files]
    if file_names:
        params["file_names"] = file_names
    cur.execute(f"""
        CREATE TEMP TABLE _checked AS
        SELECT {', '.join(outer)}, __fidx, __row, __reason,
               CASE WHEN __reason <> '' THEN {_raw_json(staged, bool(file_names))} END AS __raw
        FROM (SELECT *, concat_ws('; ', {reasons}) AS __reason
              FROM (SELECT *, {', '.join(_select_typed(staged, mapping, extras))} FROM {staged.sql}))
    """, params)


def _refuse_unreadable_key(cur: duckdb.DuckDBPyConnection, mapping: ColumnMapping, source: str) -> None:
    """A time or amount column with no readable value at all is a wrong mapping, not bad rows: refuse it."""
    total, times, amounts = cur.execute("SELECT count(*), count(ts), count(amount) FROM _checked").fetchone()
    for target, good in (("ts", times), ("amount", amounts)):
        if total and not good:
            example = cur.execute("SELECT __reason FROM _checked LIMIT 1").fetchone()[0]
            kind = "date/time" if target == "ts" else "number"
            raise IngestError(f"{source}: column {mapping.columns[target]!r} mapped to {target} has no value that "
                              f"reads as a {kind} (first row: {example}); nothing was loaded — choose another "
                              f"column{' or set the time unit' if target == 'ts' else ''} in the mapping")


def _mark_duplicates(cur: duckdb.DuckDBPyConnection, extras: dict[str, tuple[str, str]]) -> None:
    """Quarantine repeats of a transaction_id within this load and ids the workspace already holds."""
    typed = [f"{t} := {t}" for t in TARGETS] + [f"{quote_ident(n)} := {quote_ident(n)}" for n, _ in extras.values()]
    raw = f"to_json(struct_pack({', '.join(typed)}))"
    cur.execute(f"""
        UPDATE _checked SET __reason = 'duplicate transaction_id in this load: ' || left(transaction_id, 60),
                            __raw = {raw}
        FROM (SELECT __fidx AS f, __row AS r FROM (
                SELECT __fidx, __row, row_number() OVER (PARTITION BY transaction_id ORDER BY __fidx, __row) AS n
                FROM _checked WHERE __reason = '' AND transaction_id IN (
                    SELECT transaction_id FROM _checked WHERE __reason = '' GROUP BY 1 HAVING count(*) > 1))
              WHERE n > 1) d
        WHERE __fidx = d.f AND __row = d.r
    """)
    cur.execute(f"""
        UPDATE _checked SET __reason = 'transaction_id already in workspace: ' || left(transaction_id, 60),
                            __raw = {raw}
        WHERE __reason = '' AND transaction_id IN (SELECT transaction_id FROM transactions)
    """)


def _write_rows(cur: duckdb.DuckDBPyConnection, ingest_id: int,
                extras: dict[str, tuple[str, str]]) -> tuple[int, int, int]:
    """Good rows of _checked to transactions (+ labels); bad rows and _rejects to quarantine; return counts."""
    targets = list(CANONICAL_COLUMNS) + [name for name, _ in extras.values()]
    cols = ", ".join(quote_ident(c) for c in targets)
    cur.execute(f"INSERT INTO transactions ({cols}, ingest_id) SELECT {cols}, $id FROM _checked "
                f"WHERE __reason = '' ORDER BY ts, __fidx, __row", {"id": ingest_id})
    cur.execute("INSERT INTO labels SELECT transaction_id, is_fraud, label_ts, 'data' FROM _checked "
                "WHERE __reason = '' AND is_fraud IS NOT NULL")
    cur.execute("INSERT INTO quarantine SELECT $id, __row, __raw, __reason FROM _checked WHERE __reason <> '' "
                "ORDER BY __fidx, __row", {"id": ingest_id})
    rejected = cur.execute("INSERT INTO quarantine SELECT $id, __row, __raw, __reason FROM _rejects "
                           "ORDER BY __fidx, __row", {"id": ingest_id}).fetchone()[0]
    total, bad = cur.execute("SELECT count(*), count(*) FILTER (__reason <> '') FROM _checked").fetchone()
    return int(total) + int(rejected), int(total - bad), int(bad) + int(rejected)


def _collect_rejects(cur: duckdb.DuckDBPyConnection, staged: _Staged, fidx: int | None = None) -> None:
    """Temp table _rejects (__fidx, __row, __raw, __reason): one row per line the CSV reader could not split."""
    cur.execute("CREATE TEMP TABLE _rejects (__fidx INTEGER, __row BIGINT, __raw VARCHAR, __reason VARCHAR)")
    for i, table in staged.reject_tables:
        cur.execute(f"""
            INSERT INTO _rejects
            SELECT $fidx, line, to_json(struct_pack(_file := $file, line := any_value(csv_line))),
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


# ---------------------------------------------------------------- preview / detect (no workspace change)

def save_upload(data: bytes, name: str, folder: str | Path | None = None) -> Path:
    """Write uploaded bytes to a file (keeping a safe version of its name) and return its path."""
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="fraudlab_upload_"))
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^0-9A-Za-z._-]+", "_", Path(str(name)).name).lstrip(".") or "upload.csv"
    path = folder / safe
    path.write_bytes(data)
    return path


def _as_path(path_or_upload: Any) -> str | Path:
    if hasattr(path_or_upload, "getvalue"):
        return save_upload(path_or_upload.getvalue(), getattr(path_or_upload, "name", "upload.csv"))
    return path_or_upload


def preview(path_or_upload: Any, n: int = 20, mapping: ColumnMapping | None = None) -> SourcePreview:
    """Sample rows, source columns with types and the detected (or given) mapping, without loading anything."""
    path = _as_path(path_or_upload)
    files = [inspect_file(p) for p in resolve_paths(path)][:20]
    con = duckdb.connect()
    try:
        cur = con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        staged = _stage(cur, files, sample_rows=SAMPLE_ROWS)
        profiles = _profile(cur, staged)
        mapping = mapping or detect_mapping(staged.columns, profiles=profiles)
        sample = cur.execute(f"SELECT * EXCLUDE (__fidx, __row) FROM {staged.sql} LIMIT {int(n)}",
                             staged.params).to_arrow_table().to_pandas()
    finally:
        con.close()
    mapped_to = {v: k for k, v in mapping.columns.items()}
    columns = pd.DataFrame({
        "column": staged.columns,
        "type": [staged.types[c] for c in staged.columns],
        "reads_as": [_reads_as(profiles[c]) for c in staged.columns],
        "filled": [profiles[c].non_null for c in staged.columns],
        "example": [_example(sample, c) for c in staged.columns],
        "mapped_to": [mapped_to.get(c, "") for c in staged.columns],
    })
    return SourcePreview(str(path), [str(f.path) for f in files], files[0].kind, sample, columns, mapping)


def detect(path_or_upload: Any) -> ColumnMapping:
    """The mapping the detector would use for this file or glob."""
    return preview(path_or_upload, n=1).mapping


def _reads_as(profile: ColumnProfile) -> str:
    if profile.non_null == 0:
        return "empty"
    if profile.is_numeric:
        return "number"
    return "time" if profile.is_time else "text"


def _example(sample: pd.DataFrame, col: str) -> str:
    values = sample[col].dropna() if col in sample else []
    return "" if len(values) == 0 else str(values.iloc[0])[:40]


# ---------------------------------------------------------------- reading back

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


def quarantine_csv(ws: Workspace, ingest_id: int | None = None) -> bytes:
    """The quarantine (one load or all) as CSV bytes, for a download button."""
    return quarantine_rows(ws, ingest_id).to_csv(index=False).encode()


def reason_counts(ws: Workspace, ingest_id: int) -> pd.DataFrame:
    """Quarantined rows of one load per reason kind (text before the first ':'), most common first."""
    return ws.df("""
        SELECT split_part(r, ':', 1) AS reason, count(*) AS rows FROM (
            SELECT unnest(string_split(reason, '; ')) AS r FROM quarantine WHERE ingest_id = ?)
        GROUP BY 1 ORDER BY 2 DESC, 1
    """, [ingest_id])


def ingest_history(ws: Workspace) -> pd.DataFrame:
    """One row per load, newest first."""
    return ws.df("SELECT * FROM ingests ORDER BY ingest_id DESC")


# ---------------------------------------------------------------- command line

def register_cli(subparsers) -> None:
    """Add `ingest PATH_OR_GLOB [--workspace FILE] [--engine duckdb|dask] [--map target=column ...]`."""
    parser = subparsers.add_parser("ingest", help="load CSV / Parquet files (or a glob) into the workspace")
    parser.add_argument("path", help="file path or glob, e.g. 'data/*.csv.gz'")
    parser.add_argument("--workspace", default=None, help="workspace file (default: FRAUDLAB_WORKSPACE)")
    parser.add_argument("--engine", choices=("duckdb", "dask"), default="duckdb")
    parser.add_argument("--map", action="append", default=[], metavar="TARGET=COLUMN",
                        help="override the detected mapping for one column, e.g. --map ts=EventTime")
    parser.set_defaults(func=_cli_ingest)


def _cli_ingest(args) -> int:
    ws = Workspace(args.workspace)
    mapping = None
    if args.map:
        mapping = detect(args.path)
        for item in args.map:
            target, _, column = item.partition("=")
            mapping = mapping.with_column(target.strip(), column.strip() or None)
    if args.engine == "dask":
        from fraudlab.ingest_dask import ingest_path_dask
        report = ingest_path_dask(ws, args.path, mapping)
    else:
        report = ingest_path(ws, args.path, mapping)
    print(f"{report.source}: {report.message} in {report.seconds:.2f} s")
    for reason, count in report.reasons.items():
        print(f"  {count:>10,}  {reason}")
    return 0
