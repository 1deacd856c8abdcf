"""Which source columns may become features: columns that only count time, or give the label away, are kept out.

Both checks run on samples, so they cost the same at 10M rows as at 100k; `fraudlab.features.plan_features` calls
them on every candidate column and records each exclusion with its reason.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from fraudlab.labels import resolved_sql
from fraudlab.schema import LABEL_DERIVED
from fraudlab.workspace import Workspace, quote_ident

LEAKAGE_AUC = 0.99
TIME_INDEX_CORRELATION = 0.99
LEAKAGE_SAMPLE = 200_000


def time_index_columns(ws: Workspace, candidates: list[str], sample: int = LEAKAGE_SAMPLE) -> dict[str, str]:
    """Numeric columns that only count time (seconds / days / steps since a start), with the reason for each.

    Such a column rises with `ts` (rank correlation above TIME_INDEX_CORRELATION on a sample): as a feature it
    tells the model the date, so it can never generalise to new data, and its drift is guaranteed.
    """
    if not candidates:
        return {}
    cols = ", ".join(f"{quote_ident(c)}::DOUBLE AS {quote_ident(c)}" for c in candidates)
    frame = ws.df(f"SELECT epoch(ts) AS __t, {cols} FROM transactions "
                  f"USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE (11)")
    ranks = frame.rank()
    found = {}
    for col in candidates:
        both = ranks[["__t", col]].dropna()
        if len(both) < 10 or both[col].nunique() < 2:
            continue
        rho = float(np.corrcoef(both["__t"], both[col])[0, 1])
        if rho > TIME_INDEX_CORRELATION:
            found[col] = f"a time index (rank correlation with the transaction time {rho:.3f}): never a feature"
    return found


def leakage_check(ws: Workspace, candidates: list[str]) -> dict[str, str]:
    """Columns that give the label away (by name, or single-column AUC above 0.99), with the reason for each."""
    excluded = {c: "its name marks it as derived from the label" for c in candidates if LABEL_DERIVED.search(c)}
    rest = [c for c in candidates if c not in excluded]
    if not rest or not ws.has_table("labels") or ws.count("labels") == 0:
        return excluded
    cols = ", ".join(f"t.{quote_ident(c)}" for c in rest)
    sample = ws.df(f"""SELECT {cols}, l.is_fraud AS __y FROM transactions t
                       JOIN (SELECT transaction_id, label AS is_fraud FROM ({resolved_sql(None)})) l
                       USING (transaction_id) USING SAMPLE reservoir({LEAKAGE_SAMPLE} ROWS) REPEATABLE (7)""")
    y = sample.pop("__y").astype(bool).to_numpy()
    if y.all() or not y.any():
        return excluded
    for col in rest:
        x = pd.to_numeric(sample[col], errors="coerce").to_numpy(dtype=float)
        x = np.where(np.isfinite(x), x, np.nanmin(x) - 1 if np.isfinite(x).any() else 0.0)
        auc = roc_auc_score(y, x)
        if max(auc, 1 - auc) > LEAKAGE_AUC:
            excluded[col] = f"alone it predicts the label almost perfectly (AUC {max(auc, 1 - auc):.3f})"
    return excluded
