"""Shared-key features (distinct customers per device, IP or card) of the incremental pipeline: exact, either way."""
from __future__ import annotations

import numpy as np
import pandas as pd
from test_incremental import features_of, full_build, load_out_of_order

from fraudlab.features import SHARED_WINDOWS
from fraudlab.incremental import shared


def test_distinct_customers_in_windows_equal_brute_force():
    rng = np.random.default_rng(5)
    hour, n = 3_600_000_000, 500
    hist = {"code": rng.integers(0, 6, n), "us": rng.integers(0, 400, n) * hour // 2,
            "customer": rng.integers(-1, 8, n)}  # customers numbered as the SQL does; -1 none
    code, us = rng.integers(0, 7, 300), rng.integers(0, 420, 300) * hour // 2  # on edges, ties, an unseen key
    got = shared._distinct_customers(hist, code, us)
    for w, secs in SHARED_WINDOWS.items():
        want = [len({c for k, t, c in zip(hist["code"], hist["us"], hist["customer"])
                     if k == qk and qt - secs * 1_000_000 <= t < qt and c >= 0}) for qk, qt in zip(code, us)]
        assert got[w].tolist() == want and max(want) > 1


def test_keys_whose_windows_hold_too_many_rows_go_through_the_window_sql_and_stay_exact(tmp_path, monkeypatch):
    counted = []
    real = shared._distinct_customers
    monkeypatch.setattr(shared, "_distinct_customers", lambda *a: counted.append(real(*a)) or counted[-1])
    monkeypatch.setattr(shared, "MAX_PAIRS", 0)  # as with a carrier's NAT address shared by thousands of rows
    tx, ws = load_out_of_order(tmp_path, 12)
    assert counted and all(c is None for c in counted)  # every key declined by NumPy, done by the SQL windows
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, tx), check_exact=False, rtol=1e-9, atol=1e-9)
    ws.close()
