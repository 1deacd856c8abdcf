"""Exact TreeSHAP: XGBoost's contributions equal shap.TreeExplainer and add up to the margin; readable reasons."""
from __future__ import annotations

import numpy as np
import pandas as pd
import shap
import xgboost as xgb

from fraudlab.explain import (
    contributions,
    flagged_because,
    global_importance,
    reason_frame,
    reason_text,
    speaks_against,
)
from fraudlab.features import load_frame
from fraudlab.registry import champion, load_booster, prepare
from fraudlab.workspace import Workspace


def _sample(path, n=300):
    ws = Workspace(path)
    record = champion(ws)
    frame = load_frame(ws).tail(n)
    X = prepare(frame, record)
    return ws, record, load_booster(record), X, frame


def test_contributions_equal_shap_tree_explainer_and_add_up_to_margin(app_workspace):
    ws, record, booster, X, _ = _sample(app_workspace)
    ours, bias = contributions(booster, X)
    theirs = shap.TreeExplainer(booster).shap_values(xgb.DMatrix(X, enable_categorical=True))
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    margin = booster.predict(xgb.DMatrix(X, enable_categorical=True), output_margin=True)
    np.testing.assert_allclose(ours.sum(axis=1) + bias, margin, atol=1e-4)
    ws.close()


def test_reasons_are_sentences_with_the_customers_baseline(app_workspace):
    ws, record, booster, X, frame = _sample(app_workspace, 50)
    contribs, _ = contributions(booster, X)
    table = reason_frame(list(record.features), frame.iloc[0], contribs[0])
    assert list(table.columns) == ["feature", "name", "value", "contribution", "direction", "text"]
    assert table["contribution"].is_monotonic_decreasing  # most risk-raising first
    missing = table[table["value"].isna()]
    assert (missing["direction"] == "missing").all()
    assert set(flagged_because(table)) <= set(table.loc[table["direction"] == "raises", "text"])
    assert set(speaks_against(table)) <= set(table.loc[table["direction"] == "lowers", "text"])
    row = pd.Series({"c_hist_cnt": 30, "c_tenure_s": 30 * 86_400.0})
    assert reason_text("c_cnt_5m", 7, row) == "7 payments in the last 5 minutes before this one; usually 0.0"
    assert "usually 1.0" in reason_text("c_cnt_24h", 4, row)
    assert reason_text("c_new_device", 1, row) == "first time this customer uses this device"
    assert "3 customers (this one included) used this device" in reason_text("dev_customers_24h", 3, row)
    assert reason_text("ip_customers_24h", 0, row) == "this IP address was not used in the previous 24 hours"
    importance = global_importance(list(record.features), contribs)
    assert importance["mean_abs_shap"].is_monotonic_decreasing
    ws.close()
