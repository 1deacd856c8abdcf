"""Kept totals of the customers' older rows: equal to a fresh aggregate, and the features to a full build."""
from __future__ import annotations

import numpy as np
import pandas as pd
from test_incremental import features_of, full_build, load_in_batches, random_batches
from test_incremental_firsts import spoil_then_load_the_rest

from fraudlab.generate import simulate
from fraudlab.incremental import update_features
from fraudlab.incremental.totals import MARK, TABLE, settled_at
from fraudlab.ingest import ingest_table
from fraudlab.workspace import Workspace

COLUMNS = ["customer_id", "n", "s", "m", "q", "first_ts", "last_ts"]


def kept(ws: Workspace) -> pd.DataFrame:
    return ws.df(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY customer_id").reset_index(drop=True)


def fresh(ws: Workspace) -> pd.DataFrame:
    """The same aggregate made directly from every transaction before the kept table's settled time."""
    with ws.write(bump=False) as cur:
        settled = settled_at(cur)[1]
    return ws.df("""SELECT customer_id, count(*) AS n, sum(amount) AS s, avg(amount) AS m,
                           var_pop(amount) * count(*) AS q, min(ts) AS first_ts, max(ts) AS last_ts
                    FROM transactions WHERE ts < ? GROUP BY 1 ORDER BY customer_id""", [settled]
                 ).reset_index(drop=True)


def test_kept_totals_equal_a_fresh_aggregate_after_batches_in_and_out_of_order(tmp_path):
    tx = simulate(rows=8_000, seed=21, days=90).transactions
    batches = random_batches(tx, np.random.default_rng(21))
    batches = batches[:1] + batches[1:][::-1]
    ws = Workspace(tmp_path / "inc.duckdb")
    paths = load_in_batches(ws, batches)
    assert "incremental" in paths
    assert len(kept(ws)) > 100
    pd.testing.assert_frame_equal(kept(ws), fresh(ws), check_exact=False, rtol=1e-9, check_dtype=False)
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, tx), check_exact=False, rtol=1e-9)
    ws.close()


def test_daily_appends_move_the_settled_time_and_fold_in_what_it_passes(tmp_path):
    tx = simulate(rows=9_000, seed=22, days=90).transactions.sort_values("ts").reset_index(drop=True)
    days = tx.ts.dt.floor("D")
    ws = Workspace(tmp_path / "inc.duckdb")
    load_in_batches(ws, [tx[days < days.min() + pd.Timedelta(days=60)]])
    with ws.write(bump=False) as cur:
        start = settled_at(cur)[1]
    for day in sorted(days[days >= days.min() + pd.Timedelta(days=60)].unique())[:5]:
        ingest_table(ws, tx[days == day], source=str(day))
        update_features(ws)
    with ws.write(bump=False) as cur:
        assert settled_at(cur)[1] > start
    pd.testing.assert_frame_equal(kept(ws), fresh(ws), check_exact=False, rtol=1e-9, check_dtype=False)
    loaded = tx[days < days.min() + pd.Timedelta(days=65)]
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, loaded), check_exact=False, rtol=1e-9)
    ws.close()


def test_a_row_later_than_the_margin_reaches_back_past_the_settled_time_and_stays_exact(tmp_path):
    tx = simulate(rows=8_000, seed=23, days=80).transactions.sort_values("ts").reset_index(drop=True)
    history = tx.iloc[:7_600]
    customer = history.customer_id.value_counts().index[0]  # a customer with rows on both sides of the settled time
    late = history[history.customer_id == customer].iloc[[0]].assign(
        transaction_id="LATE-40D", ts=history.ts.max() - pd.Timedelta(days=40))
    ws = Workspace(tmp_path / "inc.duckdb")
    load_in_batches(ws, [history])
    with ws.write(bump=False) as cur:
        assert settled_at(cur)[1] > late.ts.iloc[0] - pd.Timedelta(days=30)  # its window start is before S
    ingest_table(ws, pd.concat([late, tx.iloc[7_600:]]), source="late")
    update_features(ws)
    pd.testing.assert_frame_equal(kept(ws), fresh(ws), check_exact=False, rtol=1e-9, check_dtype=False)
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, pd.concat([tx, late])), check_exact=False,
                                  rtol=1e-9)
    ws.close()


def test_the_kept_totals_are_made_again_when_their_mark_does_not_add_up(tmp_path):
    tx = simulate(rows=4_000, seed=24, days=60).transactions.sort_values("ts").reset_index(drop=True)
    ws = spoil_then_load_the_rest(tmp_path, tx, MARK, f"DELETE FROM {TABLE} WHERE n > 2")
    pd.testing.assert_frame_equal(kept(ws), fresh(ws), check_exact=False, rtol=1e-9, check_dtype=False)
    ws.close()
