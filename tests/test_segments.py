"""Segments: features match a pandas reference, deterministic K-Means, sensible k, unique names, stored results."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler

from fraudlab import segments
from fraudlab.errors import FraudlabError
from fraudlab.ingest import ingest_table


def test_customer_features_match_a_pandas_reference(loaded_ws, small_sim):
    ours = segments.customer_features(loaded_ws).set_index("customer_id")
    tx = small_sim.transactions
    g = tx.groupby("customer_id")
    end = tx["ts"].max() + pd.Timedelta(seconds=1)
    ref = pd.DataFrame({"frequency": g.size(), "monetary": g["amount"].sum(),
                        "online_share": g["channel"].apply(lambda s: (s == "online").mean()),
                        "distinct_devices": g["device_id"].nunique(),
                        "recency_days": (end - g["ts"].max()).dt.total_seconds() / 86400})
    ours = ours.loc[ref.index]
    for col in ref.columns:
        np.testing.assert_allclose(ours[col].astype(float), ref[col].astype(float), rtol=1e-6, err_msg=col)


def test_k_by_silhouette_finds_well_separated_blobs():
    X, _ = make_blobs(n_samples=3000, centers=4, cluster_std=0.5, random_state=1)
    k, scores = segments.choose_k(StandardScaler().fit_transform(X), seed=0)
    assert k == 4 and scores[4] == max(scores.values())


def test_segmenting_is_deterministic_and_stored_with_unique_names(loaded_ws):
    first = segments.segment_customers(loaded_ws, seed=3)
    assigned = loaded_ws.df("SELECT customer_id, segment_id FROM customer_segments ORDER BY customer_id")
    second = segments.segment_customers(loaded_ws, seed=3)
    again = loaded_ws.df("SELECT customer_id, segment_id FROM customer_segments ORDER BY customer_id")
    pd.testing.assert_frame_equal(assigned, again)
    assert first.k == second.k and 3 <= first.k <= 8
    names = segments.segment_names(loaded_ws)["segment_name"]
    assert names.is_unique and names.str.endswith("customers").all()
    assert len(assigned) == loaded_ws.scalar("SELECT count(DISTINCT customer_id) FROM transactions")
    assert "segmented" in loaded_ws.audit_log()["action"].tolist()
    fixed = segments.segment_customers(loaded_ws, k=5)
    assert fixed.k == 5 and len(segments.segment_names(loaded_ws)) == 5


def test_summary_trend_and_members(loaded_ws):
    segments.segment_customers(loaded_ws, seed=0)
    summary = segments.segment_summary(loaded_ws)
    assert summary["transactions"].sum() == loaded_ws.count("transactions")
    assert summary["fraud"].sum() == loaded_ws.scalar("SELECT count(*) FROM transactions WHERE is_fraud")
    trend = segments.risk_trend(segments.weekly_trend(loaded_ws))
    assert set(trend["segment_name"]) == set(summary["segment_name"])
    assert trend["fraud_rate_slope_per_week"].is_monotonic_decreasing
    members = segments.segment_members(loaded_ws, 0)
    assert len(members) > 0 and members["transactions"].gt(0).all()


def test_propensity_is_time_honest_and_explained(loaded_ws):
    result = segments.propensity(loaded_ws)
    assert result.customers > 100
    assert result.auc is None or 0 <= result.auc <= 1
    if result.auc is not None:
        assert list(result.drivers.columns) == ["feature", "mean_abs_shap"]


def test_no_customer_column_gives_a_clear_message(empty_ws):
    frame = pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=50, freq="h"), "amount": np.arange(50.0) + 1})
    ingest_table(empty_ws, frame, source="no customers")
    with pytest.raises(FraudlabError, match="customer_id"):
        segments.customer_features(empty_ws)


def test_queue_can_filter_by_segment(app_workspace):
    from fraudlab import cases
    from fraudlab.workspace import Workspace

    ws = Workspace(app_workspace)
    segments.segment_customers(ws, seed=0)
    name = cases.queue_options(ws)["segments"][0]
    rows, n = cases.queue(ws, cases.QueueFilter(segments=(name,)), limit=1000)
    assert n > 0 and (rows["segment"] == name).all()
    ws.close()
