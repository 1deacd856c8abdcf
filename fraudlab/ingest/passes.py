"""The DuckDB load's two passes over its source, so no row is copied twice and nothing large spills to disk.

1. :func:`check_rows` reads every row once, types and checks it, and keeps only what the checks and the load's
   bookkeeping need in the narrow temp table `_checked` (id, time, amount, label, kept-aside values, file and row
   number, the reasons, and the raw record of a bad row); a CSV's malformed lines land in its rejects tables.
2. :func:`write_good_rows` reads the source again and inserts the typed good rows straight into `transactions`,
   skipping the (usually few) rows `_checked` marks bad or duplicate; the typing runs only here, the checks only in
   the first pass.

The first pass reads one CSV file in parallel: `row_number() OVER ()` would run the scan on one thread, so it
numbers the rows it stored (in file order) by row id. The second pass needs no numbers unless rows are bad; then it
skips them by number, on one thread (inserting every row and deleting the bad ones by position was slower: DuckDB's
COMMIT rewrites inserted rows that have deletions, as long as the insert itself).

Results are those of the one-table path the Dask engine still uses (`load.build_checked`): the same typed values,
reasons, raw records, generated ids and duplicate rule; the rows are written in time order.
"""
from __future__ import annotations

import duckdb

from fraudlab.errors import IngestError
from fraudlab.ingest.extras import ExtrasPlan
from fraudlab.ingest.records import TARGETS, Staged, first_line
from fraudlab.ingest.rules import raw_json, repeats_in_load_sql, row_reasons, select_typed, with_generated_ids
from fraudlab.ingest.staging import unreadable_file
from fraudlab.privacy import is_card_column, mask_card_sql
from fraudlab.schema import ColumnMapping
from fraudlab.workspace import CANONICAL_COLUMNS, quote_ident, utcnow

# What the checking pass keeps of every row: the typed columns the checks and the labels need.
KEPT = ("transaction_id", "ts", "amount", "is_fraud", "label_ts")


def _params(staged: Staged, file_names: bool = False) -> dict:
    params = dict(staged.params)
    if file_names and len(staged.files) > 1:
        params["file_names"] = [str(f.path) for f in staged.files]
    return params


def _typed_rows(source_sql: str, staged: Staged, mapping: ColumnMapping, plan: ExtrasPlan) -> str:
    """Rows of `source_sql` with typed columns (__t_*, __x_*, __s_*, __sx_*) and the transaction id filled in."""
    typed = f"(SELECT *, {', '.join(select_typed(staged, mapping, plan.widen, plan.side))} FROM {source_sql})"
    return with_generated_ids(typed, mapping, plan.widen, plan.side)


def _outer(plan: ExtrasPlan) -> list[str]:
    """The typed columns under the names `_checked` of the one-table path gives them."""
    outer = [f"__t_{t} AS {t}" for t in TARGETS]
    outer += [f"__x_{k} AS {quote_ident(name)}" for k, (name, _) in enumerate(plan.widen.values())]
    return outer + [f"__s_{k}" for k in range(len(plan.side))]


def check_rows(cur: duckdb.DuckDBPyConnection, staged: Staged, mapping: ColumnMapping, plan: ExtrasPlan,
               nul_checks: bool = True) -> None:
    """Temp table _checked, one row per source row: KEPT columns, kept-aside values (__s_i), __fidx, __row, __reason
    ('' when good), __raw (the record as read, for bad rows) and __dup (set by :func:`mark_duplicates`).

    `nul_checks=False` when the files' bytes hold no NUL (see `rules.row_reasons`)."""
    now = utcnow().strftime("%Y-%m-%d %H:%M:%S")
    reasons = ", ".join(row_reasons(mapping, plan.widen, staged, now, nul_checks))
    raw = raw_json(staged, len(staged.files) > 1, mapping.columns.get("card_id"))
    kept = [f"__t_{t} AS {t}" for t in KEPT] + [f"__s_{k}" for k in range(len(plan.side))]
    # generated ids number identical rows by __row inside the query: only mapped ids can be numbered afterwards
    later = bool(staged.check_unnumbered) and "transaction_id" in mapping.columns
    source, table, row = (staged.check_unnumbered, "_checked_rows", "") if later else (staged.checking_sql,
                                                                                        "_checked", "__row, ")
    sql = f"""
        CREATE TEMP TABLE {table} AS
        SELECT {', '.join(kept)}, __fidx, {row}__reason, CASE WHEN __reason <> '' THEN {raw} END AS __raw,
               false AS __dup
        FROM (SELECT *, concat_ws('; ', {reasons}) AS __reason
              FROM {_typed_rows(source, staged, mapping, plan)})
    """
    try:
        cur.execute(sql, _params(staged, file_names=True))
    except duckdb.InterruptException:
        raise
    except duckdb.Error as exc:
        # a file the CSV reader gives up on partway (the staging read only its start): name it, as staging does
        path = unreadable_file(staged) if staged.check_sql else None
        if path is None:
            raise
        raise IngestError(f"{path}: cannot be read as CSV: {first_line(exc)}") from exc
    if later:
        number_rows(cur, table)


def drop_checks(cur: duckdb.DuckDBPyConnection, staged: Staged) -> None:
    """Drop what :func:`check_rows` and `load.collect_rejects` made, so the rows can be checked again."""
    for table in ["_checked", "_rejects"] + [t for _, t in staged.reject_tables]:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    for i, _ in staged.reject_tables:
        cur.execute(f"DROP TABLE IF EXISTS _scan{i}")


def number_rows(cur: duckdb.DuckDBPyConnection, table: str) -> None:
    """`_checked` from `table` (one file's rows, stored in file order by the order-preserving insert) with __row, the
    row's number in the file, from its row id; `table` is dropped."""
    first = int(cur.execute(f"SELECT coalesce(min(rowid), 0) FROM {table}").fetchone()[0])
    cur.execute(f"CREATE TEMP TABLE _checked AS SELECT *, rowid + 1 - {first} AS __row FROM {table}")
    cur.execute(f"DROP TABLE {table}")


def duplicate_raw_sql(plan: ExtrasPlan) -> str:
    """SQL of a duplicate row's raw record: its typed values (card numbers masked), over `_checked`-named columns."""
    typed = [f"{t} := {mask_card_sql(t) if t == 'card_id' else t}" for t in TARGETS]
    typed += [f"{quote_ident(n)} := {mask_card_sql(quote_ident(n)) if is_card_column(col) or is_card_column(n) else quote_ident(n)}"
              for col, (n, _) in plan.widen.items()]
    typed += [f"{quote_ident(col)} := __s_{k}" for k, col in enumerate(plan.side)]  # already masked
    return f"to_json(struct_pack({', '.join(typed)}))"


def mark_duplicates(cur: duckdb.DuckDBPyConnection, staged: Staged, mapping: ColumnMapping,
                    plan: ExtrasPlan) -> None:
    """Quarantine repeats of a transaction_id within this load (the first in file order stays) and ids the
    workspace already holds; their raw records (typed values) are read back from the source for those rows only."""
    cur.execute(repeats_in_load_sql("__dup = true"))
    cur.execute("""
        UPDATE _checked SET __reason = 'transaction_id already in workspace: ' || left(transaction_id, 60),
                            __dup = true
        WHERE __reason = '' AND transaction_id IN (SELECT transaction_id FROM transactions)
    """)
    if not cur.execute("SELECT count(*) FROM _checked WHERE __dup").fetchone()[0]:
        return
    dups = "SELECT __fidx, __row FROM _checked WHERE __dup"
    rows = _select_rows(staged, mapping, plan, dups, keep=True)
    cur.execute(f"""
        UPDATE _checked SET __raw = d.__raw
        FROM (SELECT __fidx AS f, __row AS r, {duplicate_raw_sql(plan)} AS __raw
              FROM (SELECT {', '.join(_outer(plan))}, __fidx, __row FROM {rows})) d
        WHERE __dup AND __fidx = d.f AND __row = d.r
    """, _params(staged))


def _select_rows(staged: Staged, mapping: ColumnMapping, plan: ExtrasPlan, listed: str, keep: bool) -> str:
    """Typed rows of the source with (keep) or without (not keep) the rows the query `listed` names by (__fidx,
    __row); with mapped ids the rows are chosen before any typing, generated ids need every row first."""
    def pick(rows: str) -> str:
        exists = "EXISTS" if keep else "NOT EXISTS"
        return (f"(SELECT * FROM {rows} __src WHERE {exists} (SELECT 1 FROM ({listed}) __l "
                f"WHERE __l.__fidx = __src.__fidx AND __l.__row = __src.__row))")

    if "transaction_id" in mapping.columns:
        return _typed_rows(pick(staged.sql), staged, mapping, plan)
    return pick(_typed_rows(staged.sql, staged, mapping, plan))


def in_time_order(cur: duckdb.DuckDBPyConnection) -> bool:
    """Whether the good rows, in source order, are already ordered by (ts, __fidx, __row): then the insert keeps
    that order without sorting every column of every row (sources are usually written in time order).

    `_checked` is read in its stored order (a streaming `lag`, no sort); should that not be source order, (__fidx,
    __row) going backwards says "not in order" and the insert sorts: a wrong guess costs time, never the order.
    """
    return not cur.execute("""
        SELECT count(*) FROM (
            SELECT ts, __fidx, __row, lag(ts) OVER () AS p_ts, lag(__fidx) OVER () AS p_fidx,
                   lag(__row) OVER () AS p_row
            FROM _checked WHERE __reason = '')
        WHERE p_row IS NOT NULL AND (ts < p_ts OR __fidx < p_fidx OR (__fidx = p_fidx AND __row <= p_row))
    """).fetchone()[0]


def write_good_rows(cur: duckdb.DuckDBPyConnection, staged: Staged, mapping: ColumnMapping, plan: ExtrasPlan,
                    ingest_id: int) -> None:
    """Insert the typed good rows into `transactions` in time order, read straight from the source (second pass)."""
    targets = list(CANONICAL_COLUMNS) + [name for name, _ in plan.widen.values()]
    cols = ", ".join(quote_ident(c) for c in targets)
    skip = "SELECT __fidx, __row FROM _checked WHERE __reason <> ''"
    if cur.execute(f"SELECT count(*) FROM ({skip})").fetchone()[0]:
        rows = _select_rows(staged, mapping, plan, skip, keep=False)
    else:
        rows = _typed_rows(staged.sql, staged, mapping, plan)
    order = "" if in_time_order(cur) else " ORDER BY ts, __fidx, __row"
    params = _params(staged)
    params["id"] = ingest_id
    cur.execute(f"INSERT INTO transactions ({cols}, ingest_id) SELECT {cols}, $id FROM "
                f"(SELECT {', '.join(_outer(plan))}, __fidx, __row FROM {rows}){order}", params)
