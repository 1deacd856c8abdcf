"""The live scorer's NumPy features (fraudlab.api.online) against the batch build, on random events with same-instant
ties, NULL keys, late events, delayed labels and labels sent with live events; and the background writer's log."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudlab.api.events import parse_event
from fraudlab.api.live import live_plan, typed_rows
from fraudlab.api.online import CODED, OnlineHistory, features, supported
from fraudlab.features import build_features
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.privacy import mask_card
from fraudlab.workspace import Workspace


def _messy(seed: int) -> pd.DataFrame:
    """Simulated transactions with NULL keys, same-instant ties (same customer, device, merchant) and frauds."""
    rng = np.random.default_rng(seed)
    tx = simulate(rows=4_000, seed=seed, days=40, fraud_rate=0.05).transactions
    tx = tx.sort_values(["ts", "transaction_id"], kind="stable").reset_index(drop=True)
    for col, share in (("customer_id", 0.03), ("merchant_id", 0.03), ("device_id", 0.05), ("card_id", 0.03),
                       ("country", 0.02)):
        tx.loc[rng.random(len(tx)) < share, col] = None
    tx.loc[rng.random(len(tx)) < 0.02, "device_id"] = "D-shared"  # one device many customers use
    ties = np.flatnonzero(rng.random(len(tx) - 1) < 0.08) + 1  # the previous row's instant, often its keys too
    tx.loc[ties, "ts"] = tx["ts"].to_numpy()[ties - 1]
    same = ties[rng.random(len(ties)) < 0.5]
    for col in ("customer_id", "device_id", "merchant_id"):
        tx.loc[same, col] = tx[col].to_numpy()[same - 1]
    return tx.sort_values(["ts", "transaction_id"], kind="stable").reset_index(drop=True)


def _post(row: pd.Series) -> dict:
    out = {k: (None if (not isinstance(v, str) and pd.isna(v)) else v) for k, v in row.items()}
    out["ts"] = row["ts"].isoformat()
    return out


@pytest.mark.parametrize("seed", [5, 23])
def test_numpy_features_equal_the_batch_build_on_random_events(tmp_path, seed):
    """History loaded with its (delayed) labels; live events sent in random batches (late ones first, older than
    stored rows; some carrying a fraud label): every live event's features equal a full rebuild's."""
    rng = np.random.default_rng(seed)
    tx = _messy(seed)
    cut = int(len(tx) * 0.7)
    history, live = tx.iloc[:cut], tx.iloc[cut:].copy()
    late = history.sample(12, random_state=seed).index  # older than stored rows: they arrive first
    live = pd.concat([tx.loc[sorted(late)], live])  # (late among themselves would need the repair: not here)
    history = history.drop(index=late)
    live["is_fraud"] = np.where(rng.random(len(live)) < 0.1, True, None)  # labels sent with the event (no time)
    live["label_ts"] = pd.NaT
    live["card_id"] = live["card_id"].map(mask_card)  # as the API stores it (this loaded history keeps the numbers)

    full = Workspace(tmp_path / "full.duckdb")
    ingest_table(full, pd.concat([history, live.astype({"is_fraud": object})]), source="all")
    build_features(full)
    expected = full.df("SELECT * FROM features WHERE transaction_id IN (SELECT unnest($i)) ORDER BY transaction_id",
                       {"i": live["transaction_id"].tolist()})
    full.close()

    ws = Workspace(tmp_path / "live.duckdb")
    ingest_table(ws, history, source="history")
    build_features(ws)
    plan = live_plan(ws)
    assert supported(plan.plan) and not plan.definitions
    types = dict(ws.df("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_name = 'transactions'").itertuples(index=False))
    cur = ws.cursor()
    online = OnlineHistory(tuple(c for c in CODED if c in plan.source_columns))
    online.warm(cur)
    online.set_frauds(cur, plan.label_delay_days)
    got, i = [], 0
    events = [parse_event(_post(r.drop(labels=["label_ts"])), types)[0] for _j, r in live.iterrows()]
    while i < len(events):
        size = int(rng.integers(1, 12))
        batch = sorted(events[i:i + size], key=lambda r: r["ts"])  # as the service orders a batch
        i += size
        new = typed_rows(cur, batch, types)
        before = online.rows
        online.append(new)
        values = features(online, plan.plan, new, np.arange(before, online.rows))
        got.append(pd.DataFrame({"transaction_id": [r["transaction_id"] for r in batch], **values}))
        for row in batch:
            if row.get("is_fraud"):
                online.add_live_fraud(row["transaction_id"], row.get("merchant_id"),
                                      int(np.datetime64(row["ts"], "us").astype(np.int64)), plan.plan.label_delay_s)
    cur.close()
    ws.close()
    served = pd.concat(got).sort_values("transaction_id").reset_index(drop=True)
    assert len(served) == len(expected) == len(live)
    assert served["c_hist_cnt"].gt(0).any() and served["m_fraud_30d"].gt(0).any() and served["dev_customers_7d"].gt(1).any()
    for col in expected.columns:
        left = served[col]
        right = expected[col]
        if col in plan.plan.categorical or col == "transaction_id":
            assert left.astype(object).where(left.notna(), None).tolist() == \
                right.astype(object).where(right.notna(), None).tolist(), col
        else:
            np.testing.assert_allclose(pd.to_numeric(left, errors="coerce").astype(float),
                                       pd.to_numeric(right, errors="coerce").astype(float),
                                       rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=col)


def _warmed(tmp_path):
    """A workspace of messy history (its last 5 rows held out), a cursor and the online history warmed from it."""
    tx = _messy(3)
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, tx.iloc[:-5], source="history")
    build_features(ws)
    plan = live_plan(ws)
    types = dict(ws.df("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_name = 'transactions'").itertuples(index=False))
    cur = ws.cursor()
    online = OnlineHistory(tuple(c for c in CODED if c in plan.source_columns))
    online.warm(cur)
    return tx, ws, cur, online, types


def test_undo_takes_a_batch_back(tmp_path):
    """A batch that could not be answered leaves the history as it was."""
    tx, ws, cur, online, types = _warmed(tmp_path)
    groups = {k: dict(v) for k, v in online.groups.items()}
    rows = online.rows
    batch = [parse_event(_post(r.drop(labels=["label_ts", "is_fraud"])), types)[0] for _i, r in tx.iloc[-5:].iterrows()]
    online.undo(online.append(typed_rows(cur, batch, types)))
    assert online.rows == rows and online.ts.n == rows
    for key, found in online.groups.items():
        assert found.keys() == groups[key].keys()
        assert all(np.array_equal(found[c], groups[key][c]) for c in found)
    cur.close()
    ws.close()


def test_shared_identifiers_null_rows_have_no_group_but_customers_null_rows_do(tmp_path):
    """A NULL device / IP / card has no value (its features are NULL), so its rows get no group: appending to one
    (75% of the 10M bench's IPs are NULL) copied millions of positions per batch. A NULL customer is a partition of
    its own, as in SQL, so it keeps one."""
    from fraudlab.features import SHARED_KEYS

    tx, ws, cur, online, types = _warmed(tmp_path)
    batch = [parse_event(_post(r.drop(labels=["label_ts", "is_fraud"])), types)[0] for _i, r in tx.iloc[-5:].iterrows()]
    batch[0]["device_id"] = None
    online.append(typed_rows(cur, batch, types))
    shared = [k for k in SHARED_KEYS if k in online.groups]
    assert shared and all(-1 not in online.groups[k] for k in shared)
    assert -1 in online.groups["customer_id"]
    for key in shared:  # every non-NULL row is in its value's group, in time order
        held = sum(len(g) for g in online.groups[key].values())
        assert held == int((online.codes[key].view() >= 0).sum())
    cur.close()
    ws.close()
