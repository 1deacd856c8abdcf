"""The tabled TreeSHAP gives XGBoost's own exact contributions: numeric and category splits, missing values, unseen
categories, features repeated down a path (the workspace champion's live matrix: tests/test_api.py); deep
models fall back to XGBoost."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from fraudlab import treeshap
from fraudlab.generate import simulate


def _xgboost(booster: xgb.Booster, X: np.ndarray) -> np.ndarray:
    matrix = xgb.DMatrix(X, feature_names=booster.feature_names, feature_types=booster.feature_types,
                         enable_categorical=True)
    return booster.predict(matrix, pred_contribs=True)[:, :-1]


def _assert_same(booster: xgb.Booster, X: np.ndarray) -> None:
    expected, got = _xgboost(booster, X), treeshap.contributions(booster, X)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-5 * max(1.0, np.abs(expected).max()))


@pytest.fixture(scope="module")
def deep_model() -> tuple[xgb.Booster, np.ndarray]:
    """A depth-7 model with partition splits over two categoricals and numbers with missing values, trained on
    simulated transactions; and its matrix with unseen and missing categories."""
    tx = simulate(4000, seed=5).transactions
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"amount": tx["amount"], "lat": tx["lat"], "hour": tx["ts"].dt.hour.astype(float),
                          "category": tx["category"].astype("category"), "country": tx["country"].astype("category")})
    frame.loc[rng.random(len(frame)) < 0.15, "amount"] = np.nan
    frame.loc[rng.random(len(frame)) < 0.1, "lat"] = np.nan
    y = (tx["is_fraud"] | (frame["amount"].fillna(0) > 400)).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 7, "eta": 0.3, "max_cat_to_onehot": 1,
                         "tree_method": "hist"},
                        xgb.DMatrix(frame, y, enable_categorical=True), num_boost_round=40)
    X = np.column_stack([frame[c].cat.codes.replace(-1, np.nan).to_numpy(np.float64) if c in ("category", "country")
                         else frame[c].to_numpy(np.float64) for c in frame.columns]).astype(np.float32)[:400]
    X[:20, 3] = 999  # a category code the model never saw
    X[20:40, 4] = np.nan
    X[40:50, :] = np.nan
    return booster, X


def test_deep_trees_with_category_sets_and_missing_values_match_xgboost(deep_model):
    booster, X = deep_model
    tables = treeshap.build_tables(booster)
    assert tables is not None and (tables.cat_start >= 0).any(), "the model has partition splits, tabled"
    assert (tables.slot_start[1:] - tables.slot_start[:-1]).max() < 7, "some path repeats a feature"
    _assert_same(booster, X)


def test_two_threads_each_taking_half_the_trees_give_the_same_values(deep_model):
    booster, X = deep_model
    tables = treeshap.build_tables(booster)
    node, leaf = tables.halves
    assert 0 < node < len(tables.feature) and 0 < leaf < len(tables.leaf_node), "the trees split into two halves"
    halves = [treeshap._run(tables, X, np.zeros((len(X), tables.features)), half) for half in (0, 1)]
    assert np.abs(halves[0]).sum() > 0 and np.abs(halves[1]).sum() > 0, "each half adds its own trees"
    one, two = treeshap.contributions(booster, X), treeshap.contributions(booster, X, threads=2)
    np.testing.assert_allclose(two, one, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(halves[0] + halves[1], one, rtol=1e-12, atol=1e-12)
    _assert_same(booster, X[:1])  # one row: a block of one


def test_contributions_add_up_to_the_margin(deep_model):
    booster, X = deep_model
    matrix = xgb.DMatrix(X, feature_names=booster.feature_names, feature_types=booster.feature_types,
                         enable_categorical=True)
    bias = booster.predict(matrix, pred_contribs=True)[:, -1]
    margin = booster.predict(matrix, output_margin=True)
    np.testing.assert_allclose(treeshap.contributions(booster, X).sum(axis=1) + bias, margin, atol=1e-4)


def test_models_past_the_table_limit_ask_xgboost(deep_model, monkeypatch):
    booster, X = deep_model
    monkeypatch.setattr(treeshap, "MAX_TABLE_VALUES", 1000)
    copy = booster.copy()
    assert treeshap.build_tables(copy) is None
    assert np.array_equal(treeshap.contributions(copy, X[:30]), _xgboost(copy, X[:30]))
