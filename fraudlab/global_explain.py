"""How a model uses its features across many rows: a shap.Explanation of its test period and interactions.

The values are the exact TreeSHAP contributions ``fraudlab.explain.contributions`` already computes (XGBoost's
``pred_contribs``), on the same test-period rows as the importance bars; nothing is computed a second time.
Feature names are the plain names people read; a categorical feature's data are its category codes (missing: NaN)
and its display data the category itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraudlab.explain import contributions
from fraudlab.names import plain_name
from fraudlab.registry import holdout_sample, load_booster
from fraudlab.workspace import Workspace

if TYPE_CHECKING:
    import shap

BIN_ROWS = 50  # rows per bin of the interaction search (as in shap.utils.approximate_interactions)


def plain_names(features: list[str]) -> list[str]:
    """Plain names of features, the raw name added where two plain names would be the same."""
    names = [plain_name(f) for f in features]
    return [f"{n} ({f})" if names.count(n) > 1 else n for n, f in zip(names, features)]


def feature_data(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Numeric data (category codes for categoricals, NaN where missing) and the values to show, per column."""
    data = np.empty(frame.shape, dtype=float)
    shown = np.empty(frame.shape, dtype=object)
    for j, col in enumerate(frame.columns):
        series = frame[col]
        if isinstance(series.dtype, pd.CategoricalDtype):
            codes = series.cat.codes.to_numpy()
            data[:, j] = np.where(codes < 0, np.nan, codes)
            shown[:, j] = series.astype(object).where(series.notna(), None).to_numpy()
        else:
            data[:, j] = pd.to_numeric(series, errors="coerce").astype(float).to_numpy()
            shown[:, j] = data[:, j]
    return data, shown


def shap_sample(ws: Workspace, model_id: str, rows: int = 2_000) -> shap.Explanation:
    """Exact SHAP values of (up to) `rows` of the model's test period as a shap.Explanation (log-odds)."""
    import shap

    record, frame = holdout_sample(ws, model_id, rows)
    values, bias = contributions(load_booster(record), frame)
    data, shown = feature_data(frame)
    return shap.Explanation(values=values, base_values=bias, data=data, display_data=shown,
                            feature_names=plain_names(list(record.features)))


def feature_index(explanation: shap.Explanation, feature: str | int) -> int:
    """Column of a feature given by plain name or position."""
    if isinstance(feature, (int, np.integer)):
        return int(feature)
    return list(explanation.feature_names).index(feature)


def by_importance(explanation: shap.Explanation) -> list[str]:
    """Feature names, largest mean |SHAP| first."""
    order = np.argsort(-np.abs(np.asarray(explanation.values)).mean(axis=0), kind="stable")
    return [explanation.feature_names[i] for i in order]


def _binned_correlation(ref: np.ndarray, other: np.ndarray, size: int) -> float:
    """Sum over consecutive bins of |correlation| between `ref` and `other` (pairs with a missing value skipped)."""
    total = 0.0
    for start in range(0, len(ref), size):
        a, b = ref[start:start + size], other[start:start + size]
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
        if len(a) > 1 and a.std() > 0 and b.std() > 0:
            total += abs(float(np.corrcoef(a, b)[0, 1]))
    return total


def interaction_strengths(explanation: shap.Explanation, feature: str | int) -> pd.Series:
    """How strongly each other feature's value (or its being missing) moves `feature`'s SHAP values, by plain name.

    The rows are sorted by the feature's value and cut in bins of about 50; within a bin the feature's own value
    hardly changes, so what still correlates with its SHAP values there is another feature interacting with it.
    """
    index = feature_index(explanation, feature)
    data = np.asarray(explanation.data, dtype=float)
    values = np.asarray(explanation.values, dtype=float)
    order = np.argsort(data[:, index], kind="stable")
    ref, data = values[order, index], data[order]
    size = max(min(len(ref) // 10, BIN_ROWS), 1)
    scores = {}
    for j, name in enumerate(explanation.feature_names):
        if j == index:
            continue
        column = data[:, j]
        scores[name] = max(_binned_correlation(ref, column, size),
                           _binned_correlation(ref, np.isnan(column).astype(float), size))
    return pd.Series(scores, dtype=float).sort_values(ascending=False, kind="stable")


def strongest_interaction(explanation: shap.Explanation, feature: str | int) -> str:
    """The other feature whose values correlate most with `feature`'s SHAP values (shap's approximate_interactions)."""
    strengths = interaction_strengths(explanation, feature)
    if strengths.empty:
        raise ValueError("a model with one feature has no interaction")
    return str(strengths.index[0])
