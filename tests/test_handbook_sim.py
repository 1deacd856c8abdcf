"""Fast checks of the handbook-shaped simulator (fraudlab.handbook_sim)."""
from __future__ import annotations

import doctest
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fraudlab import handbook_sim  # noqa: E402
from fraudlab.handbook_sim import COLUMNS, simulate_handbook, write_handbook  # noqa: E402

SMALL = dict(n_customers=300, n_terminals=600, nb_days=60)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    """300 customers, 600 terminals, 60 days (seed 3); read-only."""
    return simulate_handbook(seed=3, **SMALL)


def test_columns_and_dtypes(small):
    assert list(small.columns) == COLUMNS
    for col in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID", "TX_TIME_SECONDS", "TX_TIME_DAYS",
                "TX_FRAUD", "TX_FRAUD_SCENARIO"):
        assert pd.api.types.is_integer_dtype(small[col]), col
    assert pd.api.types.is_float_dtype(small["TX_AMOUNT"])
    assert pd.api.types.is_datetime64_any_dtype(small["TX_DATETIME"])
    assert len(small) > 10_000
    assert (small["TRANSACTION_ID"].to_numpy() == np.arange(len(small))).all()
    assert small["TX_DATETIME"].is_monotonic_increasing
    assert set(small["TX_FRAUD"].unique()) <= {0, 1}
    assert set(small["TX_FRAUD_SCENARIO"].unique()) <= {0, 1, 2, 3}
    assert (small["TX_AMOUNT"] >= 0).all()
    assert small["CUSTOMER_ID"].between(0, SMALL["n_customers"] - 1).all()
    assert small["TERMINAL_ID"].between(0, SMALL["n_terminals"] - 1).all()


def test_deterministic_by_seed(small):
    again = simulate_handbook(seed=3, **SMALL)
    pd.testing.assert_frame_equal(small, again)
    other = simulate_handbook(seed=4, **SMALL)
    assert not small["TX_AMOUNT"].equals(other["TX_AMOUNT"])


def test_time_columns_consistent(small):
    start = pd.Timestamp("2018-04-01")
    secs = (small["TX_DATETIME"] - start).dt.total_seconds().astype("int64")
    assert (secs == small["TX_TIME_SECONDS"]).all()
    assert (small["TX_TIME_SECONDS"] // 86400 == small["TX_TIME_DAYS"]).all()
    assert small["TX_TIME_DAYS"].between(0, SMALL["nb_days"] - 1).all()
    # Time of day ~ Normal(43200, 20000): centred on noon.
    tod = small["TX_TIME_SECONDS"] % 86400
    assert 40000 < tod.mean() < 46000


def test_label_derived_from_scenario(small):
    assert ((small["TX_FRAUD_SCENARIO"] > 0).astype(int) == small["TX_FRAUD"]).all()


def test_scenario1_rule(small):
    big = small["TX_AMOUNT"] > 220
    assert big.any()
    assert (small.loc[big, "TX_FRAUD"] == 1).all()
    assert (small.loc[small["TX_FRAUD_SCENARIO"] == 1, "TX_AMOUNT"] > 220).all()


def test_scenarios_2_and_3_present(small):
    counts = small["TX_FRAUD_SCENARIO"].value_counts()
    assert counts.get(2, 0) > 0 and counts.get(3, 0) > 0
    # Scenario 2: every transaction on a compromised terminal during its window is fraud,
    # so compromised terminals show runs of consecutive fraudulent transactions.
    s2_terms = small.loc[small["TX_FRAUD_SCENARIO"] == 2, "TERMINAL_ID"].unique()
    assert len(s2_terms) >= 10
    # Scenario 3: only a subset of a compromised customer's transactions is fraud,
    # and those amounts were multiplied by 5 (well above the customer's usual spend).
    s3 = small[small["TX_FRAUD_SCENARIO"] == 3]
    usual = small[small["TX_FRAUD"] == 0].groupby("CUSTOMER_ID")["TX_AMOUNT"].median()
    ratio = s3["TX_AMOUNT"].to_numpy() / usual.reindex(s3["CUSTOMER_ID"]).to_numpy()
    assert np.nanmedian(ratio) > 3


def test_fraud_rate_plausible_at_handbook_scale():
    # The fraud rate depends on size (2 terminals/day over 28 days, 3 customers/day over 14 days),
    # so check it at the handbook's customer/terminal counts, on a shorter period.
    df = simulate_handbook(n_customers=5000, n_terminals=10000, nb_days=60, seed=0)
    rate = df["TX_FRAUD"].mean()
    assert 0.003 <= rate <= 0.02, rate
    # About 2 transactions per customer and day.
    assert 1.6 < len(df) / (5000 * 60) < 2.2


def test_write_roundtrip(tmp_path, small):
    part = small.head(500)
    back = pd.read_csv(write_handbook(part, tmp_path / "h.csv"), parse_dates=["TX_DATETIME"])
    assert list(back.columns) == COLUMNS and len(back) == 500
    assert (back["TX_FRAUD"].to_numpy() == part["TX_FRAUD"].to_numpy()).all()
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pytest.skip("pyarrow not installed")
    back = pd.read_parquet(write_handbook(part, tmp_path / "h.parquet"))
    assert list(back.columns) == COLUMNS and len(back) == 500
    with pytest.raises(ValueError):
        write_handbook(part, tmp_path / "h.txt")


def test_module_doctest():
    result = doctest.testmod(handbook_sim)
    assert result.attempted > 0 and result.failed == 0
