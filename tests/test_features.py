"""Point-in-time features: no leakage, each window equals a slow reference, leakage guard, absent columns."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudlab.features import build_features, feature_columns, feature_info, has_features, load_frame
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.workspace import Workspace


@pytest.fixture(scope="module")
def tiny():
    """3,000 rows over 20 days, ingested and featurised once for the module."""
    sim = simulate(rows=3_000, seed=11, days=20, customers=120)
    return sim


def _workspace(tmp_path, frame: pd.DataFrame, name: str = "ws") -> Workspace:
    ws = Workspace(tmp_path / f"{name}.duckdb")
    ingest_table(ws, frame, source=name, keep_columns="all")  # extra columns as features, by choice
    build_features(ws)
    return ws


def test_features_of_the_past_do_not_change_when_the_future_is_shuffled(tmp_path, tiny):
    tx = tiny.transactions
    cut = tx["ts"].quantile(0.6)
    future = tx[tx["ts"] >= cut].copy()
    rng = np.random.default_rng(0)
    for col in ("amount", "customer_id", "device_id", "merchant_id", "ip", "is_fraud"):
        future[col] = rng.permutation(future[col].to_numpy())
    future["label_ts"] = future["ts"] + pd.Timedelta(hours=1)
    changed = pd.concat([tx[tx["ts"] < cut], future], ignore_index=True)
    a, b = _workspace(tmp_path, tx, "a"), _workspace(tmp_path, changed, "b")
    where = "t.ts < $cut"
    fa = load_frame(a, where=where, params={"cut": cut}).set_index("transaction_id").sort_index()
    fb = load_frame(b, where=where, params={"cut": cut}).set_index("transaction_id").sort_index()
    assert len(fa) == (tx["ts"] < cut).sum() > 1000
    pd.testing.assert_frame_equal(fa, fb)


def _reference(tx: pd.DataFrame, labels_known: pd.Series) -> pd.DataFrame:
    """Slow, obvious per-row computation of a few windows from strictly earlier rows."""
    rows = []
    for row in tx.itertuples():
        earlier = tx[(tx["ts"] < row.ts)]
        own = earlier[earlier["customer_id"] == row.customer_id]
        dev = earlier[(earlier["device_id"] == row.device_id) & (earlier["ts"] >= row.ts - pd.Timedelta(days=7))]
        merch = earlier[(earlier["merchant_id"] == row.merchant_id) & (earlier["ts"] >= row.ts - pd.Timedelta(days=30))]
        # label windows reach back the label delay (7 days) further, and count frauds known by then
        delayed = earlier[(earlier["merchant_id"] == row.merchant_id) & (earlier["ts"] >= row.ts - pd.Timedelta(days=37))]
        known = delayed["transaction_id"].map(labels_known).le(row.ts) & delayed["is_fraud"]
        shifted = delayed[delayed["ts"] <= row.ts - pd.Timedelta(days=7)]
        rows.append({
            "transaction_id": row.transaction_id,
            "c_cnt_1h": int((own["ts"] >= row.ts - pd.Timedelta(hours=1)).sum()),
            "c_sum_24h": float(own.loc[own["ts"] >= row.ts - pd.Timedelta(hours=24), "amount"].sum()),
            "c_cnt_7d": int((own["ts"] >= row.ts - pd.Timedelta(days=7)).sum()),
            "c_secs_since_prev": (row.ts - own["ts"].max()).total_seconds() if len(own) else np.nan,
            "c_new_device": int(not (own["device_id"] == row.device_id).any()),
            "dev_customers_7d": int(dev["customer_id"].nunique()),
            "m_cnt_30d": len(merch),
            "m_dcnt_30d": len(shifted),
            "m_fraud_30d": float(known.sum()),
            "c_amt_mean_30d": own.loc[own["ts"] >= row.ts - pd.Timedelta(days=30), "amount"].mean(),
        })
    return pd.DataFrame(rows).set_index("transaction_id")


def test_windows_match_a_slow_reference(tmp_path, tiny):
    tx = tiny.transactions.iloc[:1500].copy()
    ws = _workspace(tmp_path, tx)
    ours = load_frame(ws).set_index("transaction_id")
    known = tx.set_index("transaction_id")["label_ts"]
    ref = _reference(tx, known)
    for col in ref.columns:
        np.testing.assert_allclose(ours.loc[ref.index, col].astype(float), ref[col].astype(float), rtol=1e-9,
                                   atol=1e-6, err_msg=col)


def test_merchant_fraud_counts_only_labels_known_by_then(tmp_path):
    t0 = pd.Timestamp("2026-01-01")
    frame = pd.DataFrame({
        "transaction_id": ["a", "b", "c", "d", "e"],
        "ts": [t0, t0 + pd.Timedelta(days=1), t0 + pd.Timedelta(days=3), t0 + pd.Timedelta(days=40),
               t0 + pd.Timedelta(days=7.5)],
        "amount": [10.0, 20.0, 30.0, 40.0, 50.0], "customer_id": ["x", "y", "z", "w", "v"], "merchant_id": ["m"] * 5,
        "is_fraud": [True, False, False, False, False],
        "label_ts": [t0 + pd.Timedelta(days=2), t0 + pd.Timedelta(days=30), t0 + pd.Timedelta(days=33),
                     t0 + pd.Timedelta(days=70), t0 + pd.Timedelta(days=40)]})
    ws = _workspace(tmp_path, frame)
    got = load_frame(ws).set_index("transaction_id")
    assert got.loc["b", "m_fraud_7d"] == 0  # the fraud at 'a' is reported on day 2, after 'b'
    assert got.loc["c", "m_fraud_7d"] == 1  # known by day 3
    assert got.loc["d", "m_fraud_30d"] == 0  # 'a' is out of the (30 + 7)-day window by day 40
    # a 1-day window reaches back the 7-day label delay: on day 7.5 it holds the fraud of day 0, known since day 2
    assert got.loc["e", "m_fraud_1d"] == 1 and got.loc["e", "m_dcnt_1d"] == 1


def test_no_label_window_is_constant_under_a_week_of_label_delay(tmp_path):
    sim = simulate(rows=6_000, seed=3, days=40)
    ws = _workspace(tmp_path, sim.transactions)
    frame = load_frame(ws)
    for col in ("m_fraud_1d", "m_fraud_rate_1d", "m_fraud_7d", "m_fraud_rate_7d"):
        assert frame[col].nunique() > 1, col


def test_time_index_columns_are_never_features(tmp_path, tiny):
    tx = tiny.transactions.copy()
    start = tx["ts"].min()
    tx["TX_TIME_SECONDS"] = (tx["ts"] - start).dt.total_seconds().astype(int)
    tx["TX_TIME_DAYS"] = (tx["ts"] - start).dt.days
    tx["V1"] = np.random.default_rng(4).normal(0, 1, len(tx))
    ws = _workspace(tmp_path, tx)
    info = feature_info(ws)
    assert {"tx_time_seconds", "tx_time_days"} <= set(info["time_index"])
    assert "time index" in info["excluded"]["tx_time_days"]
    assert "v1" in feature_columns(ws) and "tx_time_seconds" not in feature_columns(ws)


def test_leakage_guard_drops_label_copies_and_label_named_columns(tmp_path, tiny):
    tx = tiny.transactions.copy()
    rng = np.random.default_rng(1)
    tx["risk_hint"] = tx["is_fraud"].astype(float) + rng.normal(0, 0.01, len(tx))
    tx["fraud_scenario_code"] = rng.integers(0, 3, len(tx))
    tx["V1"] = rng.normal(0, 1, len(tx))
    ws = _workspace(tmp_path, tx)
    info = feature_info(ws)
    assert "AUC" in info["excluded"]["risk_hint"]
    assert "derived from the label" in info["excluded"]["fraud_scenario_code"]
    cols = feature_columns(ws)
    assert "v1" in cols and "risk_hint" not in cols and "fraud_scenario_code" not in cols
    assert "is_fraud" not in cols


def test_absent_columns_are_skipped_and_numeric_extras_used(tmp_path):
    rng = np.random.default_rng(2)
    n = 500
    frame = pd.DataFrame({"ts": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 86400 * 5, n)), "s"),
                          "amount": rng.gamma(2, 20, n), "is_fraud": rng.random(n) < 0.05,
                          **{f"V{i}": rng.normal(0, 1, n) for i in range(1, 4)}})
    ws = _workspace(tmp_path, frame)
    cols = feature_columns(ws)
    assert {"v1", "v2", "v3", "amount", "hour"} <= set(cols)
    assert not any(c.startswith(("c_", "m_", "dev_")) for c in cols)
    assert "customer velocity and baselines" in feature_info(ws)["skipped"]
    assert has_features(ws)


def test_feature_rows_are_stored_in_time_order_whatever_order_they_were_loaded_in(tmp_path, tiny):
    shuffled = tiny.transactions.sample(frac=1.0, random_state=4).reset_index(drop=True)
    ws = _workspace(tmp_path, shuffled)
    stored = ws.df("SELECT t.ts, f.transaction_id FROM features f JOIN transactions t USING (transaction_id) "
                   "ORDER BY f.rowid")
    assert len(stored) == len(shuffled)
    assert stored["ts"].is_monotonic_increasing  # a load's recomputed rows (the latest) then share few row groups
