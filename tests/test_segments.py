"""Segments: features match a pandas reference, deterministic K-Means, sensible k, unique names, stored results."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from people import analyst
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler

from fraudlab import segments
from fraudlab.errors import FraudlabError
from fraudlab.ingest import ingest_table


def test_customer_features_match_a_pandas_reference(loaded_ws, small_sim):
    ours = segments.customer_features(loaded_ws).set_index("customer_id")
    tx = small_sim.transactions.dropna(subset=["customer_id"])
    end = tx["ts"].max() + pd.Timedelta(seconds=1)
    home = tx.groupby("customer_id")["country"].agg(lambda s: s.value_counts().index[0])
    tx = tx.assign(online=tx["channel"].eq("online").astype(float), night=(tx["ts"].dt.hour < 6).astype(float),
                   foreign=tx["country"].ne(tx["customer_id"].map(home)).astype(float))
    g = tx.groupby("customer_id")
    ref = pd.DataFrame({"frequency": g.size(), "monetary": g["amount"].sum(), "avg_ticket": g["amount"].mean(),
                        "ticket_spread": g["amount"].std().fillna(0), "night_share": g["night"].mean(),
                        "online_share": g["online"].mean(), "distinct_merchants": g["merchant_id"].nunique(),
                        "distinct_devices": g["device_id"].nunique(),
                        "recency_days": (end - g["ts"].max()).dt.total_seconds() / 86400,
                        "tenure_days": (end - g["ts"].min()).dt.total_seconds() / 86400})
    assert len(ours) == len(ref)
    ours_aligned = ours.loc[ref.index]
    for col in ref.columns:
        np.testing.assert_allclose(ours_aligned[col].astype(float), ref[col].astype(float), rtol=1e-6, atol=1e-9,
                                   err_msg=col)
    # foreign share: the home country is the customer's most frequent one (ties may break either way)
    unique_mode = tx.groupby("customer_id")["country"].agg(lambda s: (s.value_counts() == s.value_counts().max()).sum())
    single = unique_mode[unique_mode == 1].index
    np.testing.assert_allclose(ours.loc[single, "foreign_share"], g["foreign"].mean().loc[single], atol=1e-9)


def test_hand_computed_features_on_three_transactions(empty_ws):
    frame = pd.DataFrame({"transaction_id": ["a", "b", "c"], "customer_id": ["c1", "c1", "c1"],
                          "ts": pd.to_datetime(["2026-01-01 02:00", "2026-01-03 12:00", "2026-01-05 12:00"]),
                          "amount": [10.0, 20.0, 60.0], "channel": ["Online", "pos", "pos"],
                          "country": ["US", "US", "FR"], "merchant_id": ["m1", "m2", "m1"],
                          "device_id": ["d1", "d1", "d1"]})
    ingest_table(empty_ws, frame, source="hand")
    row = segments.customer_features(empty_ws, as_of=pd.Timestamp("2026-01-06 12:00")).iloc[0]
    assert row["frequency"] == 3 and row["monetary"] == 90 and row["avg_ticket"] == 30
    assert row["ticket_spread"] == pytest.approx(np.std([10, 20, 60], ddof=1))
    assert row["recency_days"] == pytest.approx(1.0) and row["tenure_days"] == pytest.approx(5 + 10 / 24)
    assert row["online_share"] == pytest.approx(1 / 3) and row["night_share"] == pytest.approx(1 / 3)
    assert row["foreign_share"] == pytest.approx(1 / 3)
    assert row["distinct_merchants"] == 2 and row["distinct_devices"] == 1


def test_absent_columns_are_skipped_and_segmenting_still_works(empty_ws):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"customer_id": [f"c{i % 60}" for i in range(1200)],
                          "ts": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 90 * 86400, 1200), "s"),
                          "amount": rng.lognormal(3, 1, 1200)})
    ingest_table(empty_ws, frame, source="thin")
    features = segments.customer_features(empty_ws)
    assert not {"online_share", "foreign_share", "distinct_merchants", "distinct_devices"} & set(features.columns)
    report = segments.segment_customers(empty_ws, seed=0)
    assert report.customers == 60 and len(report.skipped) == 4
    assert len(segments.missing_features(empty_ws)) == 4


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
    assert list(first.profiles["segment_name"]) == list(second.profiles["segment_name"])  # names are stable
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
    # an analyst's decision overrides the source label in the managers' numbers
    from fraudlab import cases

    tid = loaded_ws.scalar("""SELECT t.transaction_id FROM transactions t JOIN customer_segments cs USING (customer_id)
                              WHERE NOT t.is_fraud AND cs.segment_id = 0 LIMIT 1""")
    cases.decide(loaded_ws, tid, "fraud", analyst("tester"))
    after = segments.segment_summary(loaded_ws)
    assert after["fraud"].iloc[0] == summary["fraud"].iloc[0] + 1
    assert after["decided"].sum() == summary["decided"].sum() + 1
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
