"""Which columns are monitored and of what kind (numeric / categorical), from which table."""
from __future__ import annotations

from dataclasses import dataclass

from fraudlab.drift.settings import ID_COLUMNS, SKIP_COLUMNS
from fraudlab.workspace import Workspace, quote_ident


@dataclass(frozen=True)
class ColumnSpec:
    """A monitored column: where it lives, how it is treated and the SQL expression that reads it."""

    name: str
    source: str  # transactions | features | scores
    kind: str    # numeric | categorical | id

    @property
    def alias(self) -> str:
        return {"transactions": "t", "features": "f", "scores": "s"}[self.source]

    def expr(self) -> str:
        col = f"{self.alias}.{quote_ident(self.name if self.source != 'scores' else 'score')}"
        if self.kind == "categorical":
            return f"CAST({col} AS VARCHAR)"
        if self.kind == "numeric":
            return f"TRY_CAST({col} AS DOUBLE)"
        return col


def _column_types(ws: Workspace, table: str) -> dict[str, str]:
    frame = ws.df("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                  "ORDER BY ordinal_position", [table])
    return dict(zip(frame["column_name"], frame["data_type"]))


def _kind_of(dtype: str) -> str | None:
    d = dtype.upper()
    if any(k in d for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC")):
        return "numeric"
    if d in ("VARCHAR", "BOOLEAN") or d.startswith("VARCHAR"):
        return "categorical"
    return None


def monitored_columns(ws: Workspace, overrides: dict[str, str] | None = None, features: bool = True,
                      scores: bool = True) -> list[ColumnSpec]:
    """Columns a report monitors: canonical and extra transaction columns, model features, the score.

    `overrides` maps a column name to 'numeric', 'categorical', 'id' or 'skip' (a user's type correction).
    """
    overrides = overrides or {}
    specs: list[ColumnSpec] = []
    seen: set[str] = set()
    for name, dtype in _column_types(ws, "transactions").items():
        if name in SKIP_COLUMNS:
            continue
        kind = "id" if name in ID_COLUMNS else _kind_of(dtype)
        kind = overrides.get(name, kind)
        if kind and kind != "skip":
            specs.append(ColumnSpec(name, "transactions", kind))
            seen.add(name)
    if features and ws.has_table("features"):
        try:
            from fraudlab.features import feature_info
            info = feature_info(ws)
        except Exception:  # features module absent or meta missing: monitor the raw columns only
            info = {}
        present = set(ws.columns("features"))
        for name in info.get("numeric", []):
            if name in present and name not in seen:
                kind = overrides.get(name, "numeric")
                if kind != "skip":
                    specs.append(ColumnSpec(name, "features", kind))
                    seen.add(name)
    if scores and ws.has_table("scores") and ws.scalar("SELECT count(*) FROM scores") and "score" not in seen:
        if overrides.get("score") != "skip":
            specs.append(ColumnSpec("score", "scores", "numeric"))
    return specs


def from_sql(sources: set[str]) -> str:
    sql = "transactions t"
    if "features" in sources:
        sql += " JOIN features f USING (transaction_id)"
    if "scores" in sources:
        sql += " JOIN scores s USING (transaction_id)"
    return sql
