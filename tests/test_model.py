"""Training: time-ordered split, labels known by the cut-off, metrics, cost threshold, every pattern caught."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudlab.config import SAMPLE_PATH
from fraudlab.model import best_threshold, budget_threshold, cost_at, metrics_by_group, time_split, training_frame
from fraudlab.registry import champion
from fraudlab.workspace import Workspace


def test_training_window_ends_where_labels_have_matured(app_workspace):
    ws = Workspace(app_workspace)
    frame, lo, hi, as_of = training_frame(ws)
    assert hi < as_of - pd.Timedelta(days=20)  # the sample's legitimate labels take 30 days to mature
    assert frame["ts"].max() <= hi and frame["label"].notna().all()
    early = as_of - pd.Timedelta(days=60)
    frame, *_ = training_frame(ws, train_to=as_of, as_of=early)
    unknown = frame.loc[frame["ts"] > early, "label"]
    assert unknown.isna().all()  # nothing after the cut-off was known then
    ws.close()


def test_time_split_keeps_time_order():
    frame = pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=100, freq="h"), "label": [False] * 100})
    train, valid, test = time_split(frame)
    assert train["ts"].max() < valid["ts"].min() and valid["ts"].max() < test["ts"].min()
    assert (len(train), len(valid), len(test)) == (60, 20, 20)


def test_best_threshold_minimises_cost_like_brute_force():
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.1
    score = np.clip(np.where(y, 0.6, 0.3) + rng.normal(0, 0.2, 400), 0, 1)
    amount = rng.gamma(2, 50, 400)
    best = best_threshold(y, score, amount, cost_review=5.0)
    brute = min(np.r_[score, 1.01], key=lambda t: cost_at(y, score, amount, t, 5.0)["cost"])
    assert cost_at(y, score, amount, best)["cost"] == pytest.approx(cost_at(y, score, amount, brute)["cost"])
    ts = pd.Series(pd.date_range("2026-01-01", periods=400, freq="h"))
    threshold = budget_threshold(score, ts, alert_budget_per_day=10)
    assert (score >= threshold).sum() == pytest.approx(10 * 399 / 24, abs=2)


def test_champion_metrics_and_every_pattern_caught_better_than_chance(app_workspace):
    ws = Workspace(app_workspace)
    record = champion(ws)
    m = record.metrics
    for key in ("roc_auc", "pr_auc", "recall_at_90_precision", "precision_at_budget", "recall_at_budget", "cost",
                "threshold", "alert_threshold"):
        assert key in m
    assert m["roc_auc"] > 0.9 and m["pr_auc"] > 0.5
    test = pd.read_parquet(record.holdout_path)
    truth = pd.read_parquet(Path(SAMPLE_PATH).with_name("sample_transactions_truth.parquet"))
    test = test.merge(truth[["transaction_id", "pattern"]], on="transaction_id", how="left")
    per = metrics_by_group(test["label"].to_numpy(), test["score"].to_numpy(), test["pattern"].fillna("").to_numpy())
    assert len(per) >= 4
    assert (per["pr_auc"] > 5 * per["chance_pr_auc"]).all(), per
    ws.close()
