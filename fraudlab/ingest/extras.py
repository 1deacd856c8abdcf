"""Unmapped source columns: kept aside in `transaction_extras` by default, added to `transactions` only with consent.

A source column that no canonical column is mapped to is an *extra*. Without the user's say-so it never widens
`transactions` (which every page, feature and model reads): its values go, as text, to the long side table
``transaction_extras(transaction_id, column_name, value, ingest_id)`` in the same load transaction. The user consents
per column (``keep_columns`` on the load functions, ``--keep-column NAME`` on the command line, the "Add these extra
columns to the transactions" choice on the Load data page); a consented column becomes a column of `transactions`
(numbers as DOUBLE) and so a feature candidate. Both destinations are capped, and what was capped is noted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

import duckdb

from fraudlab.errors import IngestError
from fraudlab.ingest.records import (
    MAX_EXTRA_COLUMNS,
    MAX_SIDE_COLUMNS,
    MAX_SIDE_VALUES,
    SAMPLE_ROWS,
    TARGETS,
    Staged,
)
from fraudlab.ingest.rules import text_expr, value_kind
from fraudlab.schema import ColumnMapping
from fraudlab.workspace import quote_ident

ALL = "all"  # keep_columns=ALL: every unmapped column widens `transactions` (up to MAX_EXTRA_COLUMNS)
SIDE_TABLE = "transaction_extras"
EXISTING_COLUMNS_SQL = ("SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_name = 'transactions'")
Consent = Iterable[str] | str | None


@dataclass
class ExtrasPlan:
    """Where each unmapped column of a load goes.

    `widen`: source column -> (column name in `transactions`, SQL type), the columns the user consented to.
    `side`: source column -> the type its values are read as for the content id (stored as text in the side table).
    """

    widen: dict[str, tuple[str, str]] = field(default_factory=dict)
    side: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _names(columns: Iterable[str], limit: int = 10) -> str:
    cols = [str(c) for c in columns]
    return ", ".join(cols[:limit]) + (", …" if len(cols) > limit else "")


def consented(columns: list[str], mapping: ColumnMapping, keep: Consent) -> list[str]:
    """The unmapped source columns the user chose to add to `transactions`; a name the source lacks is an error."""
    mapped = set(mapping.columns.values())
    unmapped = [c for c in columns if c not in mapped]
    if keep is None:
        return []
    if isinstance(keep, str):
        if keep != ALL:
            keep = [keep]
        else:
            return unmapped
    wanted = [str(k) for k in keep]
    missing = [k for k in wanted if k not in columns]
    if missing:
        raise IngestError(f"column(s) chosen to add to the transactions are not in the source: {_names(missing)} "
                          f"(its unmapped columns: {_names(unmapped) or 'none'}); nothing was loaded")
    return [c for c in unmapped if c in set(wanted)]


def plan_columns(columns: list[str], mapping: ColumnMapping, keep: Consent) -> tuple[list[str], list[str], list[str]]:
    """(widened, kept aside, dropped) unmapped source columns, in file order, within the caps."""
    mapped = set(mapping.columns.values())
    chosen = consented(columns, mapping, keep)
    widen = chosen[:MAX_EXTRA_COLUMNS]
    rest = [c for c in columns if c not in mapped and c not in widen]
    return widen, rest[:MAX_SIDE_COLUMNS], rest[MAX_SIDE_COLUMNS:]


def plan_extras(cur: duckdb.DuckDBPyConnection, staged: Staged, mapping: ColumnMapping, keep: Consent,
                existing: dict[str, str] | None = None) -> ExtrasPlan:
    """Name and type every unmapped column and say where it goes (read on a sample of the staged source)."""
    widen_cols, side_cols, dropped = plan_columns(staged.columns, mapping, keep)
    numeric = numeric_sources(cur, staged, widen_cols + side_cols)
    existing = dict(cur.execute(EXISTING_COLUMNS_SQL).fetchall()) if existing is None else existing
    widen: dict[str, tuple[str, str]] = {}
    taken: set[str] = set()
    for col in widen_cols:
        sqltype = "DOUBLE" if col in numeric else "VARCHAR"
        base = name = extra_name(col)
        n = 1
        while name in taken or (name in existing and existing[name] != sqltype):
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        widen[col] = (name, sqltype)
    side = {c: ("DOUBLE" if c in numeric else "VARCHAR") for c in side_cols}
    return ExtrasPlan(widen, side, _notes(widen, side, dropped))


def _notes(widen: dict[str, tuple[str, str]], side: dict[str, str], dropped: list[str]) -> tuple[str, ...]:
    notes = []
    if widen:
        notes.append(f"{len(widen)} extra column(s) added to the transactions as chosen (usable as features): "
                     + _names(name for name, _ in widen.values()))
    if side:
        notes.append(f"{len(side)} unmapped column(s) kept aside in the table {SIDE_TABLE}, not added to the "
                     f"transactions (so not used as features): {_names(side)}. To use one as a feature, choose it "
                     "under 'Add these extra columns to the transactions' when loading (command line: "
                     "--keep-column NAME)")
    if dropped:
        notes.append(f"{len(dropped)} unmapped column(s) beyond the first {MAX_SIDE_COLUMNS} kept aside were not "
                     f"loaded: {_names(dropped)}")
    return tuple(notes)


def extra_name(source_col: str) -> str:
    """The `transactions` column name of a consented source column (lower-case, safe, never a canonical name)."""
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", str(source_col)).strip("_").lower()[:60] or "col"
    if name[0].isdigit():
        name = "x_" + name
    if name in TARGETS or name in ("ingest_id",) or name.startswith("__"):
        name = "src_" + name
    return name


def create_extra_columns(cur: duckdb.DuckDBPyConnection, widen: dict[str, tuple[str, str]]) -> None:
    """Add the consented columns `transactions` does not have yet (inside the load's transaction)."""
    existing = dict(cur.execute(EXISTING_COLUMNS_SQL).fetchall())
    for name, sqltype in widen.values():
        if name not in existing:
            cur.execute(f"ALTER TABLE transactions ADD COLUMN {quote_ident(name)} {sqltype}")
        elif existing[name] != sqltype:
            raise IngestError(f"column {name!r} changed type ({existing[name]} in the workspace, {sqltype} now) "
                              "while this load ran; load again")


def numeric_sources(cur: duckdb.DuckDBPyConnection, staged: Staged, cols: list[str]) -> set[str]:
    """Unmapped columns read as numbers: typed numeric, or text whose sampled values all read as numbers."""
    numeric = {c for c in cols if value_kind(staged.types[c]) == "number"}
    text_cols = [c for c in cols if value_kind(staged.types[c]) == "text"]
    if text_cols:
        checks = ", ".join(f"count({text_expr(c)}) > 0 AND count({text_expr(c)}) = count(TRY_CAST({text_expr(c)} AS DOUBLE))"
                           for c in text_cols)
        row = cur.execute(f"SELECT {checks} FROM (SELECT * FROM {staged.sql} LIMIT {SAMPLE_ROWS})",
                          staged.params).fetchone()
        numeric |= {c for c, ok in zip(text_cols, row) if ok}
    return numeric


def write_side_rows(cur: duckdb.DuckDBPyConnection, ingest_id: int, side: dict[str, str]) -> tuple[int, list[str]]:
    """Good rows' kept-aside values (non-empty) from `_checked` into the side table; return (values, notes).

    At most MAX_SIDE_VALUES values a load: beyond, the last columns are left out and the note says which.
    """
    if not side:
        return 0, []
    good = int(cur.execute("SELECT count(*) FROM _checked WHERE __reason = ''").fetchone()[0])
    names = list(side)
    fits = len(names) if good == 0 else max(0, min(len(names), MAX_SIDE_VALUES // good))
    notes = []
    if fits < len(names):
        notes.append(f"{len(names) - fits} kept-aside column(s) were not stored ({good:,} rows × {len(names)} "
                     f"columns is more than {MAX_SIDE_VALUES:,} values): {_names(names[fits:])}")
    if fits == 0 or good == 0:
        return 0, notes
    cols = ", ".join(f"__s_{k}" for k in range(fits))
    written = cur.execute(f"""
        INSERT INTO {SIDE_TABLE} (transaction_id, column_name, value, ingest_id)
        SELECT transaction_id, $names[CAST(substr(__k, 5) AS INTEGER) + 1], __v, $id
        FROM (UNPIVOT (SELECT transaction_id, {cols} FROM _checked WHERE __reason = '')
              ON {cols} INTO NAME __k VALUE __v)
        WHERE __v <> ''
    """, {"names": names[:fits], "id": ingest_id}).fetchone()[0]
    return int(written), notes
