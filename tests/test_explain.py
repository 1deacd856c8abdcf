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
from fraudlab.global_explain import (
    by_importance,
    interaction_strengths,
    plain_names,
    shap_sample,
    strongest_interaction,
)
from fraudlab.registry import champion, holdout_sample, load_booster, prepare
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


def test_shap_sample_is_the_models_exact_contributions_on_its_test_period(app_workspace):
    ws = Workspace(app_workspace)
    record = champion(ws)
    explanation = shap_sample(ws, record.model_id, rows=500)
    _, X = holdout_sample(ws, record.model_id, rows=500)
    booster = load_booster(record)
    matrix = xgb.DMatrix(X, enable_categorical=True)
    contribs = booster.predict(matrix, pred_contribs=True)
    assert isinstance(explanation, shap.Explanation) and explanation.values.shape == (len(X), len(record.features))
    np.testing.assert_array_equal(explanation.values, contribs[:, :-1])
    np.testing.assert_array_equal(explanation.base_values, contribs[:, -1])
    margin = booster.predict(matrix, output_margin=True)
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base_values, margin, atol=1e-4)
    assert explanation.feature_names == plain_names(list(record.features))
    assert len(set(explanation.feature_names)) == len(record.features)
    for col in record.categories:  # categoricals: their codes as data, the category itself to show
        j = list(record.features).index(col)
        codes = X[col].cat.codes.to_numpy()
        np.testing.assert_array_equal(explanation.data[:, j], np.where(codes < 0, np.nan, codes))
        shown = [v for v in explanation.display_data[:, j] if v is not None]
        assert shown and all(v in record.categories[col] for v in shown)
    ws.close()


def _interacting(n: int = 3_000, seed: int = 1) -> tuple[shap.Explanation, pd.DataFrame]:
    """A model of fraud odds 2·a·b + 0.5·c (d is noise): a's effect depends on b and on nothing else."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    X.loc[rng.random(n) < 0.05, "d"] = np.nan
    y = rng.random(n) < 1 / (1 + np.exp(-(2 * X["a"] * X["b"] + 0.5 * X["c"])))
    booster = xgb.train({"max_depth": 3, "eta": 0.2, "objective": "binary:logistic", "nthread": 2},
                        xgb.DMatrix(X, y), 150)
    values, bias = contributions(booster, X)
    return shap.Explanation(values=values, base_values=bias, data=X.to_numpy(), feature_names=list(X.columns)), X


def test_strongest_interaction_finds_the_known_partner_as_shap_does():
    explanation, X = _interacting()
    assert strongest_interaction(explanation, "a") == "b"
    assert strongest_interaction(explanation, "b") == "a"
    strengths = interaction_strengths(explanation, "a")
    assert strengths["b"] > 3 * max(strengths["c"], strengths["d"])
    theirs = shap.utils.approximate_interactions(0, explanation.values, X.fillna(0).to_numpy())
    assert X.columns[theirs[0]] == "b"
    assert by_importance(explanation)[:2] in (["a", "b"], ["b", "a"])
