"""Kept first times of (customer, value) pairs and the aggregates of customers' older rows: each equal to a full build."""
from __future__ import annotations

from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
from test_incremental import features_of, full_build, load_in_batches, random_batches

from fraudlab.generate import simulate
from fraudlab.incremental import update_features
from fraudlab.incremental.firsts import MARK, TABLE, pair_sql
from fraudlab.ingest import ingest_table
from fraudlab.workspace import Workspace

FRESH = " UNION ALL ".join(f"""SELECT '{col}' AS kind, {pair_sql(col, 'customer_id', col)} AS pair, min(ts) AS first_ts
                               FROM transactions WHERE {col} IS NOT NULL GROUP BY ALL"""
                           for col in ("merchant_id", "device_id", "country"))


def kept(ws: Workspace) -> pd.DataFrame:
    return ws.df(f"SELECT * FROM {TABLE} ORDER BY ALL").reset_index(drop=True)


def fresh(ws: Workspace) -> pd.DataFrame:
    return ws.df(f"SELECT * FROM ({FRESH}) ORDER BY ALL").reset_index(drop=True)


def test_kept_first_times_equal_a_fresh_count_after_batches_in_and_out_of_order(tmp_path):
    tx = simulate(rows=6_000, seed=7, days=40).transactions
    rng = np.random.default_rng(7)
    batches = random_batches(tx, rng)
    batches = batches[:1] + batches[1:][::-1]
    ws = Workspace(tmp_path / "inc.duckdb")
    paths = load_in_batches(ws, batches)
    assert "incremental" in paths
    assert len(kept(ws)) > 1_000
    pd.testing.assert_frame_equal(kept(ws), fresh(ws))
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, tx), check_exact=False, rtol=1e-9)
    ws.close()


def test_a_late_row_before_its_pairs_first_time_moves_it_back_and_clears_the_later_flag(tmp_path):
    tx = simulate(rows=3_000, seed=8, days=30).transactions.sort_values("ts").reset_index(drop=True)
    first = tx.iloc[len(tx) // 2]  # a pair whose first row is not the customer's first
    pair = tx[(tx.customer_id == first.customer_id) & (tx.merchant_id == first.merchant_id)]
    late = pair.iloc[[0]].assign(transaction_id="LATE-1", ts=pair.ts.min() - timedelta(hours=2))
    ws = Workspace(tmp_path / "inc.duckdb")
    load_in_batches(ws, [tx])
    assert ws.scalar("SELECT c_new_merchant FROM features WHERE transaction_id = ?", [pair.transaction_id.iloc[0]]) == 1
    ingest_table(ws, late, source="late")
    update_features(ws)
    assert ws.scalar("SELECT c_new_merchant FROM features WHERE transaction_id = ?", [pair.transaction_id.iloc[0]]) == 0
    assert ws.scalar("SELECT c_new_merchant FROM features WHERE transaction_id = 'LATE-1'") == 1
    pd.testing.assert_frame_equal(kept(ws), fresh(ws))
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, pd.concat([tx, late])), check_exact=False,
                                  rtol=1e-9)
    ws.close()


def spoil_then_load_the_rest(tmp_path, tx: pd.DataFrame, mark: str, spoil_sql: str) -> Workspace:
    """Load most of `tx`, make a kept table's mark claim more rows than are stored and spoil the table with
    `spoil_sql`, then load the rest: the features must still equal a full build."""
    ws = Workspace(tmp_path / "inc.duckdb")
    load_in_batches(ws, [tx.iloc[:-500]])
    with ws.write() as cur:
        cur.execute("UPDATE meta SET value = split_part(value, '|', 1) || '|999999|' || split_part(value, '|', 3) "
                    "WHERE key = ?", [mark])
        cur.execute(spoil_sql)
    load_in_batches(ws, [tx.iloc[-500:]])
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, tx), check_exact=False, rtol=1e-9)
    return ws


def test_the_kept_table_is_made_again_when_its_mark_does_not_add_up(tmp_path):
    tx = simulate(rows=3_000, seed=9, days=30).transactions.sort_values("ts").reset_index(drop=True)
    ws = spoil_then_load_the_rest(tmp_path, tx, MARK, f"DELETE FROM {TABLE} WHERE kind = 'merchant_id'")
    pd.testing.assert_frame_equal(kept(ws), fresh(ws))
    ws.close()


def test_customers_older_rows_are_summarised_and_combined_exactly(tmp_path):
    tx = simulate(rows=8_000, seed=11, days=80).transactions.sort_values("ts").reset_index(drop=True)
    new = tx.iloc[7_600:].copy()
    rng = np.random.default_rng(11)
    late = rng.choice(len(new), size=40, replace=False)  # moved back up to 20 h before the history's end
    new.iloc[late, new.columns.get_loc("ts")] = tx.ts.iloc[7_599] - pd.to_timedelta(rng.integers(60, 72_000, 40),
                                                                                      unit="s")
    ws = Workspace(tmp_path / "inc.duckdb")
    load_in_batches(ws, [tx.iloc[:7_600]])
    ingest_table(ws, new, source="append")
    report = update_features(ws)
    assert report.summarised_rows > 1_000  # older rows of the customers aggregated, not read row by row
    assert "summarised" in report.message
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, pd.concat([tx.iloc[:7_600], new])),
                                  check_exact=False, rtol=1e-9)
    ws.close()


def test_pair_keys_tell_apart_values_that_would_join_alike():
    con = duckdb.connect()
    pairs = [("a|b", "c"), ("a", "b|c"), (None, "x"), ("", "x"), ("-", "x"), ("1|x", "")]
    keys = [con.execute(f"SELECT {pair_sql('merchant_id', '$c', '$v')}", {"c": c, "v": v}).fetchall()[0][0]
            for c, v in pairs]
    other_kind = con.execute(f"SELECT {pair_sql('device_id', '$c', '$v')}", {"c": "a", "v": "b|c"}).fetchall()[0][0]
    assert len(set(keys + [other_kind])) == len(pairs) + 1
