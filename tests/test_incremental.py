"""The incremental pipeline: loads in batches (in and out of order) give exactly the features of one full build."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from people import admin, analyst, scientist

from fraudlab import cases
from fraudlab.featurelab import FeatureDef, add_definition
from fraudlab.features import build_features
from fraudlab.generate import simulate
from fraudlab.incremental import can_update, late_share_by_day, update_features
from fraudlab.ingest import ingest_table
from fraudlab.pipeline import after_load
from fraudlab.workspace import Workspace

DEFS = [FeatureDef("u_cnt_1h", "customer_id", "count", window="1h"),
        FeatureDef("u_card_mean_24h", "card_id", "mean", "amount", "24h"),
        FeatureDef("u_dev_std_all", "device_id", "std", "amount", "all"),
        FeatureDef("u_merchant_delayed", "merchant_id", "count", window="3d", delay="2d"),
        FeatureDef("u_log_amount", None, "value", expression="ln(amount + 1)")]


def random_batches(tx: pd.DataFrame, rng: np.random.Generator) -> list[pd.DataFrame]:
    """A random split into 2-4 batches: a first batch of at least 70 % of the time range, then later slices of
    time, each also carrying a few scattered older rows (late events, some far beyond 24 h)."""
    tx = tx.sort_values("ts", kind="stable").reset_index(drop=True)
    n, parts = len(tx), int(rng.integers(2, 5))
    cuts = np.sort(rng.uniform(0.7, 1.0, parts - 1)) * n
    batch = np.searchsorted(cuts, np.arange(n), side="right")
    late = rng.choice(int(cuts[0]), size=int(0.02 * n), replace=False)
    batch[late] = rng.integers(1, parts, size=len(late))
    return [tx[batch == b] for b in range(parts)]


def features_of(ws: Workspace) -> pd.DataFrame:
    return ws.df("SELECT * FROM features ORDER BY transaction_id").reset_index(drop=True)


def load_in_batches(ws: Workspace, batches: list[pd.DataFrame], defs: list[FeatureDef] = ()) -> list[str]:
    """Load each batch; features by the incremental path when it applies, else a full build. Returns the paths."""
    for defn in defs:
        add_definition(ws, defn, scientist())
    paths = []
    for i, frame in enumerate(batches):
        ingest_table(ws, frame, source=f"batch {i}")
        if can_update(ws):
            update_features(ws)
            paths.append("incremental")
        else:
            build_features(ws)
            paths.append("full")
    return paths


def full_build(tmp_path, tx: pd.DataFrame, defs: list[FeatureDef] = ()) -> pd.DataFrame:
    ws = Workspace(tmp_path / "full.duckdb")
    for defn in defs:
        add_definition(ws, defn, scientist())
    ingest_table(ws, tx, source="all at once")
    build_features(ws)
    frame = features_of(ws)
    ws.close()
    return frame


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffled", [False, True])
def test_batches_in_and_out_of_order_equal_one_full_build(tmp_path, seed, shuffled):
    tx = simulate(rows=8_000, seed=seed, days=45).transactions
    rng = np.random.default_rng(seed)
    batches = random_batches(tx, rng)
    if shuffled:  # the first batch stays first (there must be history), the rest arrive in any order
        rest = batches[1:]
        batches = batches[:1] + [rest[i] for i in rng.permutation(len(rest))]
    defs = DEFS if seed % 2 else []
    expected = full_build(tmp_path, tx, defs)
    ws = Workspace(tmp_path / "inc.duckdb")
    paths = load_in_batches(ws, batches, defs)
    assert paths[0] == "full" and set(paths[1:]) == {"incremental"}
    pd.testing.assert_frame_equal(features_of(ws), expected, check_exact=False, rtol=1e-9, atol=1e-9)
    ws.close()


def history_then_append(tmp_path, rows: int, seed: int, days: int, split: int) -> tuple[pd.DataFrame, Workspace]:
    """A workspace with features built on the first `split` rows (in time order), the rest loaded after them."""
    tx = simulate(rows=rows, seed=seed, days=days).transactions.sort_values("ts").reset_index(drop=True)
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, tx.iloc[:split], source="history")
    build_features(ws)
    ingest_table(ws, tx.iloc[split:], source="append")
    return tx, ws


def test_only_affected_rows_are_recomputed_and_history_is_sliced(tmp_path):
    tx, ws = history_then_append(tmp_path, 8_000, 5, 45, 7_000)
    report = update_features(ws)
    # an append after all history changes no older row's windows: just the new rows (ties at the boundary aside)
    assert report.new_rows == 1_000 and report.affected_rows <= 1_010
    assert report.first_ts == tx["ts"].iloc[7_000]
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, tx), check_exact=False, rtol=1e-9, atol=1e-9)
    ws.close()


def test_late_rows_without_an_ip_reach_only_the_rows_sharing_a_value_with_them(tmp_path):
    tx = simulate(rows=8_000, seed=6, days=45).transactions.sort_values("ts").reset_index(drop=True)
    late = tx.iloc[6_000:7_000:50]  # 20 rows arriving after the rest
    keys = ["customer_id", "merchant_id", "device_id", "ip", "card_id"]
    assert late["ip"].isna().sum() >= 5 and tx["ip"].isna().mean() > 0.5  # the shape the simulator makes
    ip_mean = FeatureDef("u_ip_mean_24h", "ip", "mean", "amount", "24h")  # NULL where the IP is missing
    ws = Workspace(tmp_path / "ws.duckdb")
    add_definition(ws, ip_mean, scientist())
    ingest_table(ws, tx.drop(late.index), source="history")
    build_features(ws)
    ingest_table(ws, late, source="late")
    report = update_features(ws)
    older = tx.drop(late.index)
    reached = set()
    for key in keys:  # a later row of one of the late rows' values (a missing value is nobody's value here)
        first = late.dropna(subset=[key]).groupby(key)["ts"].min()
        near = older[older[key].isin(first.index)]
        reached |= set(near.loc[near["ts"] >= near[key].map(first), "transaction_id"])
    recomputed = set(report.rows.column("transaction_id").to_pylist()) - set(late["transaction_id"])
    assert recomputed and recomputed <= reached
    assert report.affected_rows == len(recomputed) + 20
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, tx, [ip_mean]), check_exact=False,
                                  rtol=1e-9, atol=1e-9)
    ws.close()


def load_out_of_order(tmp_path, seed: int) -> tuple[pd.DataFrame, Workspace]:
    """6,000 simulated rows loaded in random batches, the first one first and the rest out of order (each one after
    the first through the incremental pipeline); returns the rows and the workspace."""
    tx = simulate(rows=6_000, seed=seed, days=40).transactions
    rng = np.random.default_rng(seed)
    batches = random_batches(tx, rng)
    batches = batches[:1] + [batches[i] for i in rng.permutation(np.arange(1, len(batches)))]
    ws = Workspace(tmp_path / "inc.duckdb")
    assert set(load_in_batches(ws, batches, [])[1:]) == {"incremental"}
    return tx, ws


def test_customer_windows_rank_times_when_the_packing_would_overflow(tmp_path, monkeypatch):
    from fraudlab.incremental import customer

    monkeypatch.setattr(customer, "PACK_LIMIT", 0)  # as with millions of customers over years of microseconds
    tx, ws = load_out_of_order(tmp_path, 9)
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, tx), check_exact=False, rtol=1e-9, atol=1e-9)
    ws.close()


def test_new_rows_are_found_by_load_id_and_by_a_join_when_the_counts_disagree(tmp_path):
    from fraudlab.incremental.features import NEW_ROWS_SQL, PAST_COVER_SQL, new_rows_sql

    tx, ws = history_then_append(tmp_path, 6_000, 7, 40, 5_000)
    cur = ws.cursor()
    assert new_rows_sql(cur)[0] == PAST_COVER_SQL  # the build's mark: the append's load id is past it
    assert ws.scalar("SELECT count(*) FROM transactions WHERE ingest_id > $covered", new_rows_sql(cur)[1]) == 1_000
    # a row added outside a load after the mark (no load id): the counts no longer add up, the join finds it
    cur.execute("UPDATE transactions SET ingest_id = NULL WHERE transaction_id = ?", [tx["transaction_id"].iloc[-1]])
    assert new_rows_sql(cur) == (NEW_ROWS_SQL, {})
    cur.close()
    report = update_features(ws)
    assert report.new_rows == 1_000
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, tx), check_exact=False, rtol=1e-9, atol=1e-9)
    more = simulate(rows=200, seed=8, days=2).transactions
    more = more.assign(transaction_id="next-" + more["transaction_id"].astype(str),
                       ts=more["ts"] - more["ts"].min() + tx["ts"].max() + pd.Timedelta("1h"))
    ingest_table(ws, more, source="next")
    cur = ws.cursor()
    assert new_rows_sql(cur)[0] == PAST_COVER_SQL  # the update moved the mark past every load
    cur.close()
    assert update_features(ws).new_rows == 200
    ws.close()


def test_a_large_increment_falls_back_to_the_full_rebuild(tmp_path):
    tx, ws = history_then_append(tmp_path, 4_000, 6, 30, 2_000)
    assert not can_update(ws)  # 50 % new rows: rebuild whole
    assert can_update(ws, max_share=0.6)
    update_features(ws)  # both paths agree
    pd.testing.assert_frame_equal(features_of(ws), full_build(tmp_path, tx), check_exact=False, rtol=1e-9, atol=1e-9)
    ws.close()


def test_late_rows_are_marked_and_beyond_the_horizon_reported(tmp_path):
    tx = simulate(rows=6_000, seed=8, days=30).transactions.sort_values("ts").reset_index(drop=True)
    base = tx.iloc[:5_000]
    newest = base.groupby("customer_id")["ts"].max()
    customer = newest.index[0]
    t0 = newest.iloc[0]
    late = tx.iloc[5_000:5_002].copy()
    late["transaction_id"] = ["LATE-2H", "LATE-3D"]
    late["customer_id"] = customer
    late["ts"] = [t0 - pd.Timedelta(hours=2), t0 - pd.Timedelta(days=3)]
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, base, source="history")
    build_features(ws)
    report = ingest_table(ws, late, source="late")
    report, steps = after_load(ws, report, late_horizon_hours=24)
    marks = ws.df("SELECT transaction_id, status, late_by_seconds FROM arrivals ORDER BY 1")
    assert marks["transaction_id"].tolist() == ["LATE-2H", "LATE-3D"]
    assert marks["status"].tolist() == ["late", "beyond_horizon"]
    assert marks["late_by_seconds"].tolist() == [2 * 3600.0, 3 * 86400.0]
    assert any("BEYOND the 24 h" in note for note in report.notes)
    assert any("incrementally" in s for s in steps)
    assert ws.scalar("SELECT count(*) FROM audit WHERE action = 'late_rows'") == 1
    daily = late_share_by_day(ws)
    assert daily["late"].sum() == 1 and daily["beyond_horizon"].sum() == 1
    # the repaired features equal a full build of the same rows
    full = full_build(tmp_path, pd.concat([base, late]))
    pd.testing.assert_frame_equal(features_of(ws), full, check_exact=False, rtol=1e-9, atol=1e-9)
    ws.close()


def test_a_loaded_row_older_than_a_live_row_of_its_customer_is_late(tmp_path):
    from fraudlab.incremental import record_arrivals

    tx = simulate(rows=3_000, seed=8, days=20).transactions.sort_values("ts").reset_index(drop=True)
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, tx.iloc[:2_000], source="history")
    live = tx.iloc[2_000]  # stored by the live API: no load id
    ingest_table(ws, tx.iloc[[2_000]], source="live stand-in")
    with ws.write(bump=False) as cur:
        cur.execute("UPDATE transactions SET ingest_id = NULL WHERE transaction_id = ?", [live["transaction_id"]])
    older = tx.iloc[[2_001]].assign(transaction_id="OLDER", customer_id=live["customer_id"],
                                    ts=live["ts"] - pd.Timedelta(hours=1))
    report = record_arrivals(ws, ingest_table(ws, older, source="late").ingest_id, 24.0)
    assert report.late == 1 and report.max_late_seconds == 3600.0
    ws.close()


def test_watch_once_loads_each_file_once_through_the_incremental_pipeline(tmp_path, capsys):
    from fraudlab.cli import main

    # under 1,000 rows, so the first refresh skips the (slow) first drift report
    tx = simulate(rows=900, seed=9, days=20).transactions.sort_values("ts").reset_index(drop=True)
    folder = tmp_path / "inbox"
    folder.mkdir()
    tx.iloc[:800].to_parquet(folder / "day1.parquet", index=False)
    tx.iloc[800:].to_csv(folder / "day2.csv", index=False)
    (folder / "day3.csv.part").write_text("still being written")
    (folder / ".hidden.csv").write_text("not data")
    ws_path = tmp_path / "ws.duckdb"
    args = ["watch", str(folder), "--once", "--settle", "0", "--workspace", str(ws_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "day1.parquet: loaded" in out and "day2.csv: loaded" in out and "2 file(s) loaded" in out
    assert "features updated incrementally: 100 new rows" in out
    assert main(args) == 0  # a second run finds both files already loaded
    out = capsys.readouterr().out
    assert "0 file(s) loaded" in out and out.count(": skipped:") == 2
    ws = Workspace(ws_path)
    assert ws.count("transactions") == 900 == ws.count("features")
    assert ws.scalar("SELECT count(*) FROM ingests WHERE status = 'ok'") == 2
    ws.close()


def test_watch_leaves_a_file_that_is_still_changing(tmp_path, empty_ws):
    from fraudlab.incremental.watch import FolderWatch

    folder = tmp_path / "inbox"
    folder.mkdir()
    tx = simulate(rows=500, seed=10, days=5).transactions
    path = folder / "landing.csv"
    tx.iloc[:200].to_csv(path, index=False)
    watcher = FolderWatch(empty_ws, folder, settle_seconds=0, who=admin())
    assert watcher.poll() == []  # first sight: size not yet seen twice
    tx.to_csv(path, index=False)  # the writer was not done
    assert watcher.poll() == []  # size changed since the last poll
    results = watcher.poll()
    assert [r.status for r in results] == ["loaded"] and empty_ws.count("transactions") == 500
    assert watcher.poll() == []


def test_incremental_scores_equal_a_full_rebuild_and_rescore(tmp_path):
    from fraudlab.model import train_model
    from fraudlab.pipeline import incremental_refresh
    from fraudlab.registry import register
    from fraudlab.scoring import score_window

    tx = simulate(rows=10_000, seed=11, days=60, fraud_rate=0.03).transactions
    first, *rest = random_batches(tx, np.random.default_rng(11))
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, first, source="history")
    build_features(ws)
    register(ws, train_model(ws, rounds=30, refit=False))
    score_window(ws, explain_top=0)
    cases.refresh_cases(ws)
    for i, frame in enumerate(rest):
        ingest_table(ws, frame, source=f"batch {i}")
        steps = incremental_refresh(ws)
        assert "incrementally" in steps[0] and "scored" in steps[1] and "lookups updated" in steps[2]
    assert not cases.cases_stale(ws)
    # the recomputed rows handed to the scorer in memory: the new alerts carry exact SHAP reasons
    explained = ws.df("SELECT reasons FROM scores WHERE reasons IS NOT NULL")["reasons"]
    assert len(explained) > 0 and all('"contribution"' in r for r in explained)
    # the case queue and its lookups, updated from the earliest changed row on, equal a whole rebuild
    lookups = {"case_history": "SELECT * FROM case_history ORDER BY transaction_id",
               "case_entities": "SELECT * FROM case_entities ORDER BY kind, value",
               "cases": "SELECT case_id, alerts, score, amount FROM cases ORDER BY case_id"}
    partial = {name: ws.df(sql) for name, sql in lookups.items()}
    cases.refresh_cases(ws, force=True)
    for name, sql in lookups.items():
        pd.testing.assert_frame_equal(partial[name], ws.df(sql), check_exact=False, rtol=1e-9, atol=1e-9)
    scores = "SELECT transaction_id, score, scorer, model_id FROM scores ORDER BY transaction_id"
    incremental = ws.df(scores)
    assert len(incremental) == len(tx)
    build_features(ws)
    score_window(ws, explain_top=0)
    pd.testing.assert_frame_equal(incremental, ws.df(scores), check_exact=False, rtol=1e-9, atol=1e-9)
    before = ws.scalar("SELECT count(*) FROM audit WHERE action = 'scored'")
    report = score_window(ws, rows=ws.arrow("SELECT *, now() AS ts FROM features LIMIT 0"))  # an empty hand-over
    assert report.rows == 0 and ws.scalar("SELECT count(*) FROM audit WHERE action = 'scored'") == before
    ws.close()


def test_entity_counts_recount_only_new_rows_values_and_everything_when_totals_disagree(tmp_path):
    from fraudlab.model import train_model
    from fraudlab.pipeline import incremental_refresh
    from fraudlab.registry import register
    from fraudlab.scoring import score_window

    tx = simulate(rows=10_000, seed=11, days=60, fraud_rate=0.03).transactions.sort_values("ts")
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, tx.iloc[:9_000], source="history")
    build_features(ws)
    register(ws, train_model(ws, rounds=20, refit=False))
    score_window(ws, explain_top=0)
    cases.refresh_cases(ws)
    entities = "SELECT * FROM case_entities ORDER BY kind, value"
    for part, sneak in ((tx.iloc[9_000:9_500], False), (tx.iloc[9_500:], True)):
        loaded = ingest_table(ws, part, source="next")
        if sneak:  # rows carrying an older load id than the counts' mark: only the totals check can notice
            with ws.write(bump=False) as cur:
                cur.execute("UPDATE transactions SET ingest_id = 0 WHERE ingest_id = ?", [loaded.ingest_id])
        incremental_refresh(ws)
        partial = ws.df(entities)
        cases.refresh_cases(ws, force=True)
        pd.testing.assert_frame_equal(partial, ws.df(entities))
    ws.close()


def test_an_analyst_label_between_loads_repairs_the_merchant_fraud_counts(tmp_path):
    from fraudlab.labels import record_analyst_labels

    tx = simulate(rows=6_000, seed=12, days=40).transactions.sort_values("ts").reset_index(drop=True)
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, tx.iloc[:5_000], source="history")
    build_features(ws)
    older = tx.iloc[3_000:4_800]
    frauds = older[older["is_fraud"] & older["merchant_id"].notna()]["transaction_id"].tolist()
    assert frauds
    with ws.write("decision", analyst()) as cur:  # analysts overturn older frauds: they were legitimate
        record_analyst_labels(cur, frauds, False)
    ingest_table(ws, tx.iloc[5_000:], source="append")
    update_features(ws)
    incremental = features_of(ws)
    build_features(ws)
    pd.testing.assert_frame_equal(incremental, features_of(ws), check_exact=False, rtol=1e-9, atol=1e-9)
    ws.close()


def test_cli_ingest_with_refresh_updates_features_like_watch(tmp_path, capsys):
    from fraudlab.cli import main

    tx = simulate(rows=900, seed=9, days=20).transactions.sort_values("ts").reset_index(drop=True)
    tx.iloc[:800].to_csv(tmp_path / "day1.csv", index=False)
    tx.iloc[800:].to_csv(tmp_path / "day2.csv", index=False)
    ws_path = str(tmp_path / "ws.duckdb")
    assert main(["ingest", str(tmp_path / "day1.csv"), "--refresh", "--workspace", ws_path]) == 0
    assert main(["ingest", str(tmp_path / "day2.csv"), "--workspace", ws_path]) == 0  # plain load: no refresh
    ws = Workspace(ws_path)
    assert (ws.count("transactions"), ws.count("features")) == (900, 800)
    ws.close()
    capsys.readouterr()
    assert main(["ingest", str(tmp_path / "day2.csv"), "--refresh", "--workspace", ws_path]) == 0
    assert "already loaded as ingest 2" in capsys.readouterr().out
    ws = Workspace(ws_path)
    assert ws.count("features") == 800  # a file loaded before is skipped, and so is its refresh
    ws.close()


def window_edges(tx: pd.DataFrame, rng: np.random.Generator, delay_days: float) -> list[pd.DataFrame]:
    """Copies of rows of the same merchant exactly on the merchant windows' edges: a window's length (plus the label
    delay) after a row, and at a fraud's label time."""
    copies = []
    day = 86_400
    for i, secs in enumerate((300, 3_600, day, 7 * day, 30 * day, (1 + delay_days) * day, (7 + delay_days) * day,
                              (30 + delay_days) * day, (37 + delay_days) * day)):
        rows = tx.iloc[rng.choice(len(tx), 150, replace=False)].copy()
        rows["ts"] += pd.Timedelta(seconds=secs)
        rows["transaction_id"] = [f"edge{i}_{k}" for k in range(len(rows))]
        rows["is_fraud"], rows["label_ts"] = False, pd.NaT
        copies.append(rows)
    frauds = tx[tx["is_fraud"] & tx["label_ts"].notna()].copy()
    frauds["ts"], frauds["is_fraud"], frauds["label_ts"] = frauds["label_ts"], False, pd.NaT
    frauds["transaction_id"] = [f"known_{k}" for k in range(len(frauds))]
    return copies + [frauds]


@pytest.mark.parametrize("delay_days", [0.0, 7.0])
def test_windows_by_binary_search_keep_ties_nulls_edges_and_label_times(tmp_path, delay_days):
    """Same-instant rows, rows without a merchant or customer, rows exactly on window edges, frauds with and without a
    label time: an append's features equal the full build's (customer and merchant groups are computed by binary
    search over sorted history, not window sorts)."""
    tx = simulate(rows=6_000, seed=9, days=40).transactions.sort_values("ts").reset_index(drop=True)
    rng = np.random.default_rng(9)
    tx.loc[rng.choice(len(tx), 300, replace=False), "merchant_id"] = None
    tx.loc[rng.choice(len(tx), 100, replace=False), "customer_id"] = None
    for shared_key in ("device_id", "ip", "card_id"):
        tx.loc[rng.choice(len(tx), 200, replace=False), shared_key] = None
    ties = rng.choice(len(tx) - 1, 600, replace=False)
    tx.loc[ties + 1, "ts"] = tx.loc[ties, "ts"].to_numpy()  # same instant as the row before
    tx.loc[tx.index[::3], "label_ts"] = pd.NaT
    tx = pd.concat([tx, *window_edges(tx.iloc[:5_000], rng, delay_days)])
    tx = tx.sort_values("ts", kind="stable").reset_index(drop=True)
    split = int(tx["ts"].searchsorted(tx["ts"].iloc[0] + pd.Timedelta(days=36)))
    full = Workspace(tmp_path / "full.duckdb")
    ingest_table(full, tx, source="all")
    build_features(full, label_delay_days=delay_days)
    ws = Workspace(tmp_path / "inc.duckdb")
    ingest_table(ws, tx.iloc[:split], source="history")
    build_features(ws, label_delay_days=delay_days)
    ingest_table(ws, tx.iloc[split:], source="append")
    update_features(ws)
    got, want = (w.df("SELECT * FROM features ORDER BY transaction_id") for w in (ws, full))
    assert got["m_fraud_30d"].sum() > 0 and got["m_cnt_1d"].sum() > 0 and got["c_cnt_5m"].sum() > 0
    assert got["dev_customers_24h"].sum() > 0 and got["card_customers_7d"].isna().sum() > 0
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, atol=1e-12)
    ws.close()
    full.close()


@pytest.mark.parametrize("dtype", ["int", "float"])
def test_sorted_history_counts_equal_brute_force(dtype):
    from fraudlab.incremental.ranges import History

    rng = np.random.default_rng(4)
    key, value = rng.integers(0, 7, 400), rng.integers(-50, 50, 400)
    qkey, qvalue = rng.integers(0, 8, 300), rng.integers(-70, 70, 300)
    if dtype == "float":
        value, qvalue = value / 4.0, qvalue / 4.0
    history = History(key, value)
    for inclusive in (False, True):
        want = [int(((key == k) & ((value <= v) if inclusive else (value < v))).sum()) for k, v in zip(qkey, qvalue)]
        assert history.before(qkey, qvalue, inclusive).tolist() == want
