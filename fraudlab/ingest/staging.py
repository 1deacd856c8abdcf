"""Staging: files read into one DuckDB relation (CSV or Parquet), profiled for the column mapping."""
from __future__ import annotations

import duckdb

from fraudlab.errors import IngestError
from fraudlab.ingest.records import (
    MAX_COLUMNS,
    MAX_LINE_BYTES,
    SAMPLE_ROWS,
    SourceFile,
    Staged,
    first_line,
)
from fraudlab.ingest.rules import one_of, text_expr, value_kind
from fraudlab.schema import ColumnMapping, ColumnProfile, detect_mapping
from fraudlab.workspace import quote_ident


def _csv_scan(i: int, source: SourceFile, rejects: str | None = "") -> str:
    """read_csv call for file i (its path bound as $f{i}); every value read as text, bad lines kept aside in the
    table `_rej{i}{rejects}` (or, with `rejects=None`, skipped: for a later scan of lines an earlier one kept)."""
    options = [f"$f{i}", "all_varchar = true", f"max_line_size = {MAX_LINE_BYTES}"]
    if rejects is None:
        options.append("ignore_errors = true")
    else:
        options += ["store_rejects = true", f"rejects_table = '_rej{i}{rejects}'", f"rejects_scan = '_scan{i}{rejects}'"]
    options.append(f"compression = '{source.compression}'")
    if source.encoding != "utf-8":
        options.append(f"encoding = '{source.encoding}'")
    return f"read_csv({', '.join(options)})"


def stage_files(cur: duckdb.DuckDBPyConnection, files: list[SourceFile], sample_rows: int | None = None,
           allow_empty: bool = False) -> Staged:
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
        columns = [(r[0], r[1]) for r in cur.execute(f"DESCRIBE SELECT * FROM {sql}", params).fetchall()]
    except duckdb.Error as exc:
        raise IngestError(f"{source.path}: cannot be read as {source.kind.upper()}: {_read_error(exc)}") from exc
    check_width(len(columns), str(source.path))
    return columns


def check_width(columns: int, source: str) -> None:
    """Refuse a source wider than MAX_COLUMNS columns (a wrong delimiter or a pivoted export, not transactions)."""
    if columns > MAX_COLUMNS:
        raise IngestError(f"{source}: has {columns:,} columns; at most {MAX_COLUMNS} are read (is the delimiter "
                          "right? drop unneeded columns first)")


def _read_error(exc: Exception) -> str:
    text = first_line(exc)
    if "maximum line size" in str(exc).lower():
        return f"a line is longer than {MAX_LINE_BYTES >> 20} MB ({text})"
    return text


def _stage_parquet(cur: duckdb.DuckDBPyConnection, files: list[SourceFile], digests: list[str]) -> Staged:
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
    return Staged(sql, params, cols, {c: types[c] for c in cols}, files, digests)


def _csv_columns(cur: duckdb.DuckDBPyConnection, files: list[SourceFile]) -> tuple[list, list[str]]:
    """Each CSV's described columns, and their union in first-seen order (reserved names refused)."""
    described = [_describe(cur, _csv_scan(i, f), {f"f{i}": str(f.path)}, f) for i, f in enumerate(files)]
    columns: list[str] = []
    for names in described:
        columns.extend(n for n, _ in names if n not in columns)
    if "__fidx" in columns or "__row" in columns or "__off" in columns:
        raise IngestError("source columns may not be named __fidx, __row or __off")
    return described, columns


def _stage_csv(cur: duckdb.DuckDBPyConnection, files: list[SourceFile], digests: list[str],
               sample_rows: int | None, allow_empty: bool = False) -> Staged:
    described, columns = _csv_columns(cur, files)
    cols_sql = ", ".join(f"{quote_ident(c)} VARCHAR" for c in columns)
    cur.execute(f"CREATE TEMP TABLE _src ({cols_sql}, __fidx INTEGER, __off BIGINT)")
    staged = Staged("", {}, columns, {c: "VARCHAR" for c in columns}, files, digests)
    offset = 0
    limit = "" if sample_rows is None else f" LIMIT {int(sample_rows)}"
    for i, source in enumerate(files):
        try:
            inserted = cur.execute(f"INSERT INTO _src BY NAME SELECT *, $i AS __fidx, $off AS __off "
                                   f"FROM {_csv_scan(i, source)}{limit}",
                                   {"i": i, "off": offset, f"f{i}": str(source.path)}).fetchone()[0]
        except duckdb.Error as exc:
            raise IngestError(f"{source.path}: cannot be read as CSV: {_read_error(exc)}") from exc
        rejected = cur.execute(f"SELECT count(*) FROM _rej{i}").fetchone()[0]
        staged.reject_tables.append((i, f"_rej{i}"))
        if inserted == 0 and rejected == 0 and len(files) == 1 and not allow_empty:
            raise IngestError(f"{source.path}: has a header row ({_shortlist(described[i])}) but no data rows")
        offset += int(inserted)
    if offset == 0 and not allow_empty and not any(cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                               for _, t in staged.reject_tables):
        raise IngestError(f"{len(files)} files: none of them holds any data rows")
    staged.sql = f"(SELECT * EXCLUDE (__off), rowid + 1 - __off - {first_rowid(cur)} AS __row FROM _src)"
    return staged


def scan_files(cur: duckdb.DuckDBPyConnection, files: list[SourceFile]) -> Staged:
    """Like :func:`stage_files` for a whole load, without copying a CSV into a temp table: `sql` reads the files
    (rows numbered in file order by a streaming window), `check_sql` reads them once more keeping bad lines aside
    (for the load's one checking pass, after which `reject_tables` are filled)."""
    if {f.kind for f in files} != {"csv"}:
        return stage_files(cur, files)
    described, columns = _csv_columns(cur, files)
    params = {f"f{i}": str(f.path) for i, f in enumerate(files)}
    _refuse_empty(cur, files, described)
    staged = Staged(_csv_union(files, None), params, columns, {c: "VARCHAR" for c in columns}, files,
                    [""] * len(files), [(i, f"_rej{i}") for i in range(len(files))])
    staged.check_sql = _csv_union(files, "")
    if len(files) == 1:
        staged.check_unnumbered = f"(SELECT *, 0 AS __fidx FROM {_csv_scan(0, files[0], '')})"
    return staged


def _csv_union(files: list[SourceFile], rejects: str | None) -> str:
    """Every file's rows, numbered within the file (`__row`, as the staged temp table numbers them), one relation."""
    parts = [f"SELECT *, {i} AS __fidx, row_number() OVER () AS __row FROM {_csv_scan(i, f, rejects)}"
             for i, f in enumerate(files)]
    return "(" + " UNION ALL BY NAME ".join(parts) + ")"


def _refuse_empty(cur: duckdb.DuckDBPyConnection, files: list[SourceFile], described: list) -> None:
    """The errors :func:`stage_files` gives for a file (or glob) without data rows, from a first row of each."""
    found = False
    for i, source in enumerate(files):
        params = {f"f{i}": str(source.path)}
        try:
            rows = cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM {_csv_scan(i, source, 'e')} LIMIT 1)",
                               params).fetchone()[0]
            if not rows:
                rows = cur.execute(f"SELECT count(*) FROM _rej{i}e").fetchone()[0]
        except duckdb.Error as exc:
            raise IngestError(f"{source.path}: cannot be read as CSV: {_read_error(exc)}") from exc
        if rows == 0 and len(files) == 1:
            raise IngestError(f"{source.path}: has a header row ({_shortlist(described[i])}) but no data rows")
        found = found or rows > 0
    if not found:
        raise IngestError(f"{len(files)} files: none of them holds any data rows")


def unreadable_file(staged: Staged) -> str | None:
    """The first of the staged CSV files its reader refuses when read to the end (None when all read), tried on a
    connection of its own (a failed statement has ended the load's transaction)."""
    with duckdb.connect() as probe:
        for i, source in enumerate(staged.files):
            try:
                probe.execute(f"SELECT count(*) FROM {_csv_scan(i, source, None)}", {f"f{i}": str(source.path)})
            except duckdb.Error:
                return str(source.path)
    return None


def first_rowid(cur: duckdb.DuckDBPyConnection) -> int:
    """Row ids of a temp table inside a transaction start at a large offset; rows keep insertion (file) order."""
    return int(cur.execute("SELECT coalesce(min(rowid), 0) FROM _src").fetchone()[0])


def _shortlist(columns: list[tuple[str, str]]) -> str:
    names = ", ".join(str(n) for n, _ in columns[:8])
    return names + (", …" if len(columns) > 8 else "")


_YES_WORDS = ("1", "1.0", "true", "t", "yes", "y")
_FLAG_WORDS = _YES_WORDS + ("0", "0.0", "false", "f", "no", "n")


def profile_columns(cur: duckdb.DuckDBPyConnection, staged: Staged) -> dict[str, ColumnProfile]:
    """Per column on a sample: filled values, how many read as numbers / times, numeric min and max."""
    exprs, texts = [], []
    for k, c in enumerate(staged.columns):
        q, kind = quote_ident(c), value_kind(staged.types[c])
        # each column's text once, in an inner projection: inlined seven times a column, the query took seconds
        # to plan (200k characters of SQL on 19 columns)
        texts.append(f"{text_expr(c, staged.types[c])} AS __prof_{k}")
        text = f"__prof_{k}"
        num = f"TRY_CAST({text} AS DOUBLE)" if kind in ("text", "number") else "NULL::DOUBLE"
        flag = f"lower(CAST({text} AS VARCHAR))"
        exprs += [f"count({text})", f"count({num})",
                  f"count(TRY_CAST({text} AS TIMESTAMP))" if kind == "text" else f"count({q})",
                  f"min({num})", f"max({num})",
                  f"count(*) FILTER ({one_of(flag, _FLAG_WORDS)})", f"count(*) FILTER ({one_of(flag, _YES_WORDS)})"]
    row = cur.execute(f"SELECT {', '.join(exprs)} FROM (SELECT *, {', '.join(texts)} "
                      f"FROM (SELECT * FROM {staged.sql} LIMIT {SAMPLE_ROWS}))", staged.params).fetchone()
    profiles = {}
    for k, c in enumerate(staged.columns):
        filled, numeric, timelike, low, high, binary, positives = row[7 * k: 7 * k + 7]
        kind = value_kind(staged.types[c])
        if kind in ("time", "timetz"):
            numeric = 0
        elif kind != "text":
            timelike = 0
        profiles[c] = ColumnProfile(c, staged.types[c], int(filled), int(numeric), int(timelike),
                                    None if low is None else float(low), None if high is None else float(high),
                                    int(binary), int(positives))
    return profiles


def sample_and_detect(cur: duckdb.DuckDBPyConnection, files: list[SourceFile], mapping: ColumnMapping | None
                      ) -> tuple[Staged, dict[str, ColumnProfile], ColumnMapping]:
    """Stage a sample of the files, profile its columns and detect the mapping (unless one is given)."""
    cur.execute("SET TimeZone = 'UTC'")
    staged = stage_files(cur, files, sample_rows=SAMPLE_ROWS)
    profiles = profile_columns(cur, staged)
    return staged, profiles, mapping or detect_mapping(staged.columns, profiles=profiles)
