"""Simulator: patterns present, fraud rate, determinism, drift options, files written."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudlab.errors import FraudlabError
from fraudlab.generate import NEW_PATTERN, PATTERNS, simulate, write_simulation


def test_every_pattern_is_injected_and_recorded_in_truth(small_sim):
    tx, truth = small_sim.transactions, small_sim.truth
    assert set(truth["pattern"]) == set(PATTERNS)
    fraud_ids = set(tx.loc[tx["is_fraud"], "transaction_id"])
    assert fraud_ids == set(truth["transaction_id"])


def test_fraud_rate_follows_the_parameter():
    for rate in (0.005, 0.02):
        tx = simulate(rows=10_000, seed=1, days=30, fraud_rate=rate).transactions
        assert tx["is_fraud"].mean() == pytest.approx(rate, abs=0.001)


def test_same_seed_same_data_and_other_seed_other_data():
    a = simulate(rows=3_000, seed=5, days=20).transactions
    b = simulate(rows=3_000, seed=5, days=20).transactions
    c = simulate(rows=3_000, seed=6, days=20).transactions
    pd.testing.assert_frame_equal(a, b)
    assert not a["amount"].equals(c["amount"])


def test_rows_are_time_ordered_with_unique_ids_and_valid_values(small_sim):
    tx = small_sim.transactions
    assert len(tx) == 20_000 and tx["transaction_id"].is_unique
    assert tx["ts"].is_monotonic_increasing
    assert (tx["amount"] > 0).all()
    assert (tx["label_ts"] > tx["ts"]).all()
    assert tx["card_id"].str.fullmatch(r"\d{16}").all()


def test_ring_members_share_devices_and_ips(small_sim):
    tx, rings = small_sim.transactions, small_sim.rings
    assert rings["ring_id"].nunique() >= 1
    members = tx.merge(rings, on="customer_id")
    per_ring = members.groupby("ring_id").agg(customers=("customer_id", "nunique"), devices=("device_id", "nunique"))
    assert (per_ring["customers"] > per_ring["devices"]).all()


def test_card_testing_is_bursts_of_tiny_online_amounts(small_sim):
    tx = small_sim.transactions.merge(small_sim.truth, on="transaction_id")
    ct = tx[tx["pattern"] == "card_testing"]
    assert (ct["amount"] < 5).all() and (ct["channel"] == "online").all()
    legit = small_sim.transactions[~small_sim.transactions["is_fraud"]]
    assert legit["amount"].median() > 10 * ct["amount"].median()


def test_account_takeover_uses_new_device_and_foreign_country(small_sim):
    tx = small_sim.transactions
    ato = tx.merge(small_sim.truth, on="transaction_id").query("pattern == 'account_takeover'")
    legit = tx[~tx["is_fraud"]]
    known = set(zip(legit["customer_id"], legit["device_id"]))
    assert not any((c, d) in known for c, d in zip(ato["customer_id"], ato["device_id"]))
    home = legit.groupby("customer_id")["currency"].first()
    assert (ato["country"].isin(["BR", "NG", "RO", "VN", "ID"])).all()
    assert len(home) > 0


def _halves(tx: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    mid = tx["ts"].min() + (tx["ts"].max() - tx["ts"].min()) / 2
    return tx[tx["ts"] < mid], tx[tx["ts"] >= mid]


def test_pipeline_break_changes_amount_unit_and_nulls_device():
    before, after = _halves(simulate(rows=10_000, seed=2, days=30, drift=("pipeline_break",)).transactions)
    assert before["device_id"].notna().all() and after["device_id"].isna().all()
    assert after["amount"].median() > 50 * before["amount"].median()


def test_sudden_drift_mixes_in_a_new_source_and_gradual_inflates_amounts():
    before, after = _halves(simulate(rows=10_000, seed=2, days=30, drift=("sudden",)).transactions)
    assert (before["country"] == "BR").mean() < 0.01 < 0.1 < (after["country"] == "BR").mean()
    before, after = _halves(simulate(rows=10_000, seed=2, days=30, drift=("gradual",)).transactions)
    assert after["amount"].median() > 1.2 * before["amount"].median()


def test_new_pattern_appears_only_after_the_drift_start():
    sim = simulate(rows=20_000, seed=2, days=40, drift=("new_pattern",), drift_start=0.5)
    new = sim.transactions.merge(sim.truth, on="transaction_id").query("pattern == @new_pattern", local_dict={"new_pattern": NEW_PATTERN})
    assert len(new) > 0
    assert new["ts"].min() >= sim.transactions["ts"].min() + pd.Timedelta(days=19)


def test_unknown_drift_is_refused():
    with pytest.raises(FraudlabError, match="unknown drift"):
        simulate(rows=1_000, drift=("weather",))


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_write_simulation_round_trips(tmp_path, suffix):
    sim = simulate(rows=1_000, seed=3, days=10)
    paths = write_simulation(sim, tmp_path / f"sim{suffix}")
    assert all(p.exists() for p in paths)
    back = pd.read_parquet(paths[0]) if suffix == ".parquet" else pd.read_csv(paths[0])
    assert len(back) == 1_000
    assert np.isclose(back["amount"].sum(), sim.transactions["amount"].sum())
