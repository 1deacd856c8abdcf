"""The `feature_defs` table: user-defined features, versioned and audited, and their columns in `features`.

Adding a definition backfills only its column (ALTER TABLE + UPDATE from the computed relation) and appends it
to the numeric feature list, so the next training uses it; dropping removes the column. A full rebuild
(`build_features`) re-applies every active definition through `apply_definitions`, the same SQL, so both
ways give the same values.
"""
from __future__ import annotations

import json

import duckdb
import pandas as pd

from fraudlab.auth.actors import Actor
from fraudlab.auth.permissions import require
from fraudlab.errors import FeatureDefError
from fraudlab.featurelab.defs import FeatureDef, check_definition
from fraudlab.featurelab.sql import relation_sql
from fraudlab.workspace import Workspace, quote_ident, utcnow

META_TABLE = "feature_meta"  # written by fraudlab.features; the numeric list gains and loses user columns here
OLD_INDEX = "features_transaction_id"  # on features built before they were stored in time order, until rebuilt
ACTIVE_SQL = """SELECT name, version, definition, created_by, created_at FROM feature_defs
                WHERE active ORDER BY version"""


def _definitions(rows: list[tuple]) -> list[FeatureDef]:
    return [FeatureDef.from_dict(json.loads(r[2])) for r in rows]


def active_definitions(cur: duckdb.DuckDBPyConnection) -> list[FeatureDef]:
    """The active definitions, oldest first, read inside a caller's transaction."""
    return _definitions(cur.execute(ACTIVE_SQL).fetchall())


def list_definitions(ws: Workspace) -> pd.DataFrame:
    """Active definitions (name, version, what it measures, who added it, when, the definition's fields)."""
    rows = ws.df(ACTIVE_SQL)
    defs = [FeatureDef.from_dict(json.loads(d)) for d in rows["definition"]]
    out = rows.drop(columns=["definition"]).assign(describes=[d.describe() for d in defs])
    fields = pd.DataFrame([d.to_dict() for d in defs], columns=list(FeatureDef.__dataclass_fields__))
    return pd.concat([out.reset_index(drop=True), fields.drop(columns=["name"])], axis=1)


def get_definition(ws: Workspace, name: str) -> FeatureDef:
    """The active definition called `name`, or FeatureDefError listing the names there are."""
    cur = ws.cursor()
    try:
        found = {d.name: d for d in active_definitions(cur)}
    finally:
        cur.close()
    if name not in found:
        raise FeatureDefError(f"no feature definition named {name!r}; defined: {', '.join(found) or 'none yet'}")
    return found[name]


def feature_set_version(ws: Workspace) -> int:
    """The feature-set version: 0 before any definition, then +1 for every add or drop."""
    return int(ws.scalar("SELECT coalesce(max(version), 0) FROM feature_defs"))


def source_columns(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """Columns of `transactions` a definition may name."""
    return [r[0] for r in cur.execute("DESCRIBE transactions").fetchall()]


def taken_names(cur: duckdb.DuckDBPyConnection) -> set[str]:
    """Names a new feature may not take: built-in features, columns of `features`, active definitions."""
    lists = cur.execute(f"SELECT value FROM {META_TABLE} WHERE key IN ('numeric', 'categorical')").fetchall()
    taken = {n for (value,) in lists for n in json.loads(value)}
    if _has_features(cur):
        taken |= {r[0] for r in cur.execute("DESCRIBE features").fetchall()}
    return taken | {d.name for d in active_definitions(cur)} | {"transaction_id", "ts", "label"}


def _has_features(cur: duckdb.DuckDBPyConnection) -> bool:
    return bool(cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'features'")
                .fetchone()[0])


def _set_numeric(cur: duckdb.DuckDBPyConnection, add: str | None = None, drop: str | None = None) -> None:
    row = cur.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'numeric'").fetchone()
    numeric = [n for n in (json.loads(row[0]) if row else []) if n != drop] + ([add] if add else [])
    cur.execute(f"INSERT OR REPLACE INTO {META_TABLE} VALUES ('numeric', ?)", [json.dumps(numeric)])


def backfill_column(cur: duckdb.DuckDBPyConnection, defn: FeatureDef, columns: list[str]) -> None:
    """Add the feature's column to `features` and fill it for every row (one window pass over transactions)."""
    name = quote_ident(defn.name)
    cur.execute(f"ALTER TABLE features ADD COLUMN {name} DOUBLE")
    cur.execute(f"UPDATE features SET {name} = v.{name} FROM ({relation_sql(defn, columns)}) v "
                f"WHERE features.transaction_id = v.transaction_id")


def apply_definitions(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """Inside a full rebuild, before `features` is indexed: add every active definition's column; returns names."""
    columns = source_columns(cur)
    defs = active_definitions(cur)
    for defn in defs:
        backfill_column(cur, defn, columns)
    return [d.name for d in defs]


def leaky_columns(cur) -> set[str]:
    """Source columns the built-in leakage guard left out because alone they predict the label."""
    row = cur.execute("SELECT value FROM feature_meta WHERE key = 'excluded'").fetchone()
    excluded = json.loads(row[0]) if row else {}
    return {col for col, why in excluded.items() if "predicts the label" in why or "derived from the label" in why}


def add_definition(ws: Workspace, defn: FeatureDef, who: Actor | None) -> FeatureDef:
    """Check, store and backfill one definition (a new feature-set version); returns it normalised."""
    require(ws, who, "edit_features", defn.name)
    cur = ws.cursor()
    try:
        checked = check_definition(defn, source_columns(cur), leaky_columns(cur))
        if checked.name in taken_names(cur):
            raise FeatureDefError(f"a feature named {checked.name!r} already exists (built-in or defined): "
                                  f"choose another name")
        cur.execute(f"EXPLAIN {relation_sql(checked, source_columns(cur))}")  # a type error surfaces here, not later
    except duckdb.Error as exc:
        raise FeatureDefError(f"feature {defn.name!r} does not compute: {str(exc).splitlines()[0]}") from exc
    finally:
        cur.close()
    version = feature_set_version(ws) + 1
    with ws.write("add_feature", who, {"name": checked.name, "version": version, **checked.to_dict()}) as wcur:
        wcur.execute("INSERT INTO feature_defs VALUES (?, ?, ?, ?, ?, true)",
                     [checked.name, version, json.dumps(checked.to_dict()), who.name, utcnow()])
        if _has_features(wcur):
            backfill_column(wcur, checked, source_columns(wcur))
            _set_numeric(wcur, add=checked.name)
    return checked


def drop_definition(ws: Workspace, name: str, who: Actor | None) -> int:
    """Deactivate a definition and remove its column from `features`; returns the new feature-set version."""
    require(ws, who, "edit_features", name)
    defn = get_definition(ws, name)
    version = feature_set_version(ws) + 1
    with ws.write("drop_feature", who, {"name": name, "version": version}) as cur:
        cur.execute("UPDATE feature_defs SET active = false WHERE name = ? AND active", [name])
        cur.execute("INSERT INTO feature_defs VALUES (?, ?, ?, ?, ?, false)",
                    [name, version, json.dumps(defn.to_dict()), who.name, utcnow()])
        if _has_features(cur) and name in {r[0] for r in cur.execute("DESCRIBE features").fetchall()}:
            # DuckDB refuses to drop a column of an indexed table: a table built before features lost their
            # index (fraudlab.features.store_features) has one: drop it, then put it back
            indexed = cur.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = ?",
                                  [OLD_INDEX]).fetchone()[0]
            cur.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")
            cur.execute(f"ALTER TABLE features DROP COLUMN {quote_ident(name)}")
            if indexed:
                cur.execute(f"CREATE INDEX IF NOT EXISTS {OLD_INDEX} ON features (transaction_id)")
            _set_numeric(cur, drop=name)
    return version
