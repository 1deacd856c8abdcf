"""Which columns are monitored and of what kind (numeric / categorical), from which table."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from fraudlab.drift.settings import ID_COLUMNS, SKIP_COLUMNS
from fraudlab.workspace import CANONICAL_COLUMNS, Workspace, quote_ident


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


# Features over a customer's whole history change with the age of the data by construction (history counts grow,
# first-time flags fall, lifetime statistics settle): compared raw between two windows, they always differ.
AGE_FEATURES = {"c_tenure_s": "grows with the customer's time on book", "c_hist_cnt": "grows with the customer's "
                "history", "c_amt_mean": "a lifetime mean, settles as history grows",
                "c_amt_std": "a lifetime spread, settles as history grows",
                "c_new_merchant": "first-time flags fall as history grows",
                "c_new_device": "first-time flags fall as history grows",
                "c_new_country": "first-time flags fall as history grows"}


WARM_UP_SHARE = 0.1  # a windowed feature still filling for more than this share of the reference is left out

# Calendar features: their mix depends on which weekdays and hours the two windows happen to hold.
CALENDAR_FEATURES = {"dow": "calendar feature: its mix follows the weekdays each window holds",
                     "hour": "calendar feature: its mix follows the hours each window holds"}


def _window_seconds(name: str, delay_s: float) -> float | None:
    """How far back a windowed feature looks (label windows also wait out the delay); None when not windowed."""
    from fraudlab.features import CUSTOMER_WINDOWS, MERCHANT_WINDOWS, SHARED_WINDOWS

    suffix = name.rsplit("_", 1)[-1]
    seconds = {**CUSTOMER_WINDOWS, **SHARED_WINDOWS, **MERCHANT_WINDOWS}.get(suffix)
    if seconds is None or "_" not in name:
        return None
    return seconds + (delay_s if name.startswith(("m_fraud", "m_dcnt")) else 0.0)


def left_out_columns(ws: Workspace, reference_start: datetime | None = None,
                     reference_end: datetime | None = None) -> dict[str, str]:
    """Columns a drift report never tests, with the reason shown on the Drift page: time indexes, lifetime
    features, windowed features not yet full when the reference window starts, and a partial score."""
    from fraudlab.features import feature_info

    info = feature_info(ws)
    out = {name: why.replace(": never a feature", ": drifts by construction") for name, why in
           (info.get("time_index") or {}).items()}
    if ws.has_table("features"):
        present = set(ws.columns("features"))
        out.update({name: f"{why}: drifts by construction (warm-up)" for name, why in AGE_FEATURES.items()
                    if name in present})
        out.update({name: why for name, why in CALENDAR_FEATURES.items() if name in present})
        first, last = ws.df("SELECT min(ts) AS lo, max(ts) AS hi FROM transactions").iloc[0]
        if reference_start is not None and first is not None:
            start = pd.Timestamp(reference_start)
            span = max((pd.Timestamp(reference_end or last) - start).total_seconds(), 1.0)
            delay_s = float(info.get("label_delay_days", 7.0)) * 86_400
            for name in present - set(out):
                seconds = _window_seconds(name, delay_s)
                if seconds is None:
                    continue
                unfilled = (pd.Timestamp(first) + pd.Timedelta(seconds=seconds) - start).total_seconds()
                if unfilled / span > WARM_UP_SHARE:
                    out[name] = (f"warming up: its window ({seconds / 86_400:g} days) is not yet full for "
                                 f"{unfilled / span:.0%} of the reference window")
    scored, rows = ws.count("scores"), ws.count("transactions")
    if 0 < scored < rows:
        out["score"] = f"only {scored:,} of {rows:,} transactions are scored: the score is compared once all are"
    return out


def monitored_columns(ws: Workspace, overrides: dict[str, str] | None = None, features: bool = True,
                      scores: bool = True, reference_start: datetime | None = None,
                      reference_end: datetime | None = None) -> list[ColumnSpec]:
    """Columns a report monitors: canonical and extra transaction columns, model features, the score.

    `overrides` maps a column name to 'numeric', 'categorical', 'id' or 'skip' (a user's type correction). Time
    indexes, warm-up features and a partial score are left out (see :func:`left_out_columns`).
    """
    from fraudlab.features import feature_info, has_features, source_columns

    overrides = overrides or {}
    skip = set(left_out_columns(ws, reference_start, reference_end))
    filled = set(source_columns(ws))  # canonical columns this data does not have are empty: nothing to test
    specs: list[ColumnSpec] = []
    seen: set[str] = set()
    for name, dtype in _column_types(ws, "transactions").items():
        if name in SKIP_COLUMNS or name in skip or (name in CANONICAL_COLUMNS and name not in filled):
            continue
        kind = "id" if name in ID_COLUMNS else _kind_of(dtype)
        kind = overrides.get(name, kind)
        if kind and kind != "skip":
            specs.append(ColumnSpec(name, "transactions", kind))
            seen.add(name)
    if features and has_features(ws):
        present = set(ws.columns("features"))
        for name in feature_info(ws).get("numeric", []):
            if name in present and name not in seen and name not in skip:
                kind = overrides.get(name, "numeric")
                if kind != "skip":
                    specs.append(ColumnSpec(name, "features", kind))
                    seen.add(name)
    if scores and ws.count("scores") and "score" not in seen and "score" not in skip:
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
