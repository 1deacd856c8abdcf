"""Drift reports on simulated data with known answers: each injected drift found and classified, a no-drift control
at 2M rows where nothing fires, the binned statistics against scipy's exact ones, frozen profiles, saved runs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from people import scientist
from scipy import stats

from fraudlab import drift
from fraudlab.charts.drift import report_html
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.workspace import Workspace

ROWS = 200_000


def _workspace(tmp_path_factory, name: str, rows: int, drifts: tuple[str, ...], seed: int = 3) -> Workspace:
    path = tmp_path_factory.mktemp(name) / "ws.duckdb"
    ws = Workspace(path)
    sim = simulate(rows, seed=seed, days=60, drift=drifts, drift_start=0.5)
    ingest_table(ws, sim.transactions, source=f"simulation {name}")
    return ws


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """One report per injected drift: reference = first half, current = second half."""
    out = {}
    for kind in ("gradual", "sudden", "pipeline_break", "new_pattern"):
        ws = _workspace(tmp_path_factory, kind, ROWS, (kind,))
        ref, cur = drift.split_windows(ws)
        out[kind] = (ws, drift.run_report(ws, ref, cur))
    yield out
    for ws, _ in out.values():
        ws.close()


def _finding(rep: drift.DriftReport, column: str) -> dict:
    rows = rep.findings[rep.findings["column"] == column]
    assert len(rows) == 1, f"no finding for {column}: {rep.findings[['column', 'kind']].to_dict('records')}"
    return rows.iloc[0].to_dict()


DRIFT_DAY = pd.Timestamp("2026-01-31")


def test_gradual_inflation_is_found_on_amount_and_called_gradual(reports):
    _, rep = reports["gradual"]
    assert rep.drifted() == ["amount"]
    f = _finding(rep, "amount")
    assert f["kind"] == "gradual"
    assert abs((pd.Timestamp(f["since"]) - DRIFT_DAY).days) <= 5
    assert f["recommendation"] == drift.RECOMMEND["retrain"]
    assert rep.verdict["status"] == "drift in some columns"


def test_sudden_new_source_is_a_step_in_country_currency_and_amount(reports):
    _, rep = reports["sudden"]
    for column in ("country", "currency", "amount"):
        f = _finding(rep, column)
        assert f["kind"] == "sudden", (column, f)
        assert abs((pd.Timestamp(f["since"]) - DRIFT_DAY).days) <= 1
    currency = rep.columns.set_index("column").loc["currency"]
    assert currency["unseen_status"] == "drift" and currency["unseen_rate"] > 0.05  # BRL never seen before
    assert rep.multivariate["domain_auc"] > drift.DOMAIN_AUC
    assert "currency" in [s["feature"] for s in rep.multivariate["separating"][:2]]


def test_pipeline_break_is_a_unit_change_and_a_null_jump_not_real_world_drift(reports):
    _, rep = reports["pipeline_break"]
    amount, device = _finding(rep, "amount"), _finding(rep, "device_id")
    assert amount["kind"] == device["kind"] == "pipeline break"
    assert "×100" in amount["what"]
    assert "missing rate" in device["what"]
    assert amount["recommendation"] == drift.RECOMMEND["pipeline"]
    assert rep.verdict["status"] == "pipeline break"
    assert rep.verdict["action"] == drift.RECOMMEND["pipeline"]
    assert set(rep.drifted()) == {"amount", "device_id"}


def test_new_fraud_pattern_shows_in_matured_labels_not_in_the_inputs(reports):
    _, rep = reports["new_pattern"]
    assert rep.drifted() == []  # the inputs barely move: 0.2% of rows
    f = _finding(rep, "(labels)")
    assert f["kind"] == "new fraud pattern"
    assert "gift_cards" in f["what"]
    assert rep.labels["fraud_rate_drift"]
    assert rep.verdict["status"] == "concept drift"
    assert rep.verdict["action"] == drift.RECOMMEND["retrain"]


@pytest.mark.large
def test_no_drift_control_at_two_million_rows_flags_nothing(tmp_path_factory):
    ws = _workspace(tmp_path_factory, "control", 2_000_000, (), seed=11)
    ref, cur = drift.split_windows(ws)
    for mode in ("default", "reference_chunks"):
        rep = drift.run_report(ws, ref, cur, threshold_mode=mode, multivariate_checks=(mode == "default"))
        assert rep.drifted() == [], rep.columns[["column", "statistic", "p_adj", "status"]]
        assert rep.findings.empty, rep.findings
        assert rep.verdict["status"] == "no drift"
        assert not rep.labels["drift"]
    assert rep.columns["status"].isin(["ok", "warning"]).all()
    # huge samples: p-values are tiny for some columns, yet the effect size keeps them quiet
    assert rep.timings["current_scan"] < 20
    ws.close()


def test_binned_ks_and_wasserstein_match_scipy_exact_values():
    rng = np.random.default_rng(0)
    a = rng.lognormal(3, 0.8, 200_000)
    b = rng.lognormal(3.1, 0.85, 150_000)
    q = np.quantile(a, [0.005, 0.5, 0.995])
    grid = drift.grid_from_quantiles(q[0], q[1], q[2], a.min(), a.max())

    def binned(x):
        t = np.arcsinh(x) if grid.transform == "asinh" else x
        idx = np.clip(np.floor((t - grid.lo) / grid.width).astype(int), -1, grid.bins) + 1
        return {"hist": np.bincount(idx, minlength=grid.bins + 2).astype(float), "n": len(x), "sum": x.sum(),
                "under_sum": x[idx == 0].sum(), "over_sum": x[idx == grid.bins + 1].sum()}
    s = drift.numeric_stats(grid, binned(a), binned(b), a.std())
    assert s["ks"] == pytest.approx(stats.ks_2samp(a, b).statistic, abs=0.01)
    exact_w = stats.wasserstein_distance(a, b) / a.std()
    assert s["wasserstein_norm"] == pytest.approx(exact_w, rel=0.05)


def test_benjamini_hochberg_matches_scipy():
    p = np.array([0.001, 0.04, 0.03, 0.2, np.nan, 0.5, 0.0001])
    ours = drift.benjamini_hochberg(p)
    ok = ~np.isnan(p)
    assert np.allclose(ours[ok], stats.false_discovery_control(p[ok]))
    assert np.isnan(ours[4])


def test_constant_all_null_and_high_cardinality_columns_are_reported_never_nan(tmp_path, small_sim):
    frame = small_sim.transactions.copy()
    frame["const_score"] = 1.0
    frame["empty_metric"] = np.nan
    frame["terminal"] = "T" + (np.arange(len(frame)) % 1_000).astype(str)  # 1,000 distinct values
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, frame, source="extras", keep_columns="all")
    ref, cur = drift.split_windows(ws)
    rep = drift.run_report(ws, ref, cur, multivariate_checks=False)
    table = rep.columns.set_index("column")
    assert table.loc["const_score", "status"] == "constant"
    assert table.loc["empty_metric", "status"] == "all null"
    assert "top" in table.loc["terminal", "detail"]
    assert table.loc["terminal", "status"] in ("ok", "warning")
    assert not table["status"].isna().any()
    assert "NaN" not in rep.to_json()
    ws.close()


def test_small_windows_use_ks_and_chi2_and_type_overrides_apply(loaded_ws):
    lo = loaded_ws.scalar("SELECT min(ts) FROM transactions")
    ref = drift.Window.dates(lo, lo + pd.Timedelta(hours=36))
    cur = drift.Window.dates(lo + pd.Timedelta(days=20), lo + pd.Timedelta(days=21, hours=12))
    rep = drift.run_report(loaded_ws, ref, cur, overrides={"channel": "skip", "lat": "categorical"},
                           multivariate_checks=False, performance_checks=False)
    table = rep.columns.set_index("column")
    assert int(table.loc["amount", "cur_rows"]) <= drift.SMALL_SAMPLE
    assert table.loc["amount", "test"] == "ks"
    assert table.loc["category", "test"] == "chi2"
    assert "channel" not in table.index
    assert table.loc["lat", "kind"] == "categorical"


def test_reference_profile_is_frozen_and_reused_without_rescanning(loaded_ws, monkeypatch):
    ref, cur = drift.split_windows(loaded_ws)
    first = drift.run_report(loaded_ws, ref, cur, multivariate_checks=False)
    assert loaded_ws.scalar(f"SELECT count(*) FROM {drift.PROFILE_TABLE}") == 1

    def no_rescan(*args, **kwargs):
        raise AssertionError("the reference was rescanned")
    monkeypatch.setattr(drift, "fit_reference", no_rescan)
    second = drift.run_report(loaded_ws, ref, cur, multivariate_checks=False)
    pd.testing.assert_frame_equal(first.columns, second.columns)


def test_runs_are_saved_listed_reloaded_compared_and_exported(loaded_ws):
    ref, cur = drift.split_windows(loaded_ws)
    rep = drift.run_report(loaded_ws, ref, cur, multivariate_checks=False)
    a = drift.save_run(loaded_ws, rep, scientist("ana"))
    b = drift.save_run(loaded_ws, drift.run_report(loaded_ws, ref, cur, columns=["amount", "country"],
                                                    multivariate_checks=False))
    runs = drift.list_runs(loaded_ws)
    assert runs["run_id"].tolist() == [b, a]
    again = drift.load_run(loaded_ws, a)
    assert again.verdict == rep.verdict
    assert again.columns["column"].tolist() == rep.columns["column"].tolist()
    both = drift.compare_runs(loaded_ws, [a, b])
    assert set(both.columns) == {"column", f"run {a}", f"run {b}"}
    page = report_html(again)
    assert page.startswith("<!DOCTYPE html>") and "Drift report" in page
    assert 'src="https://cdn' not in page and "plotly" in page.lower()  # plotly.js inlined: works offline
    assert "drift run" in loaded_ws.audit_log()["action"].tolist()


def test_html_report_escapes_data_derived_text(tmp_path, small_sim):
    frame = small_sim.transactions.copy()
    hostile = "<script>alert(1)</script>"
    frame["note"] = np.where(np.arange(len(frame)) < len(frame) // 2, "a", hostile)
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, frame, source=hostile, keep_columns=["note"])
    ref, cur = drift.split_windows(ws)
    rep = drift.run_report(ws, ref, cur, multivariate_checks=False, performance_checks=False)
    assert "note" in rep.drifted()
    page = report_html(rep)
    assert hostile not in page
    ws.close()


def test_ready_workspace_monitors_features_and_scores_with_champion_weights(app_workspace):
    ws = Workspace(app_workspace)
    ref, cur = drift.split_windows(ws)
    rep = drift.run_report(ws, ref, cur, multivariate_checks=False)
    sources = set(rep.columns["source"])
    assert {"transactions", "features", "scores"} <= sources
    assert rep.verdict["weights"].startswith("champion")
    assert "amount" in rep.drifted()  # the bundled sample has gradual inflation in its second half
    assert _finding(rep, "amount")["kind"] == "gradual"
    assert "pr_auc" in rep.performance and "weeks" in rep.performance
    assert rep.prediction["reference_alert_rate"] is not None
    ws.close()


def test_performance_drift_weekly_pr_auc_matches_sklearn_and_flags_a_model_gone_blind(loaded_ws):
    """Scores written straight into a private workspace (test only): perfect in the reference, random after."""
    from sklearn.metrics import average_precision_score

    ref, cur = drift.split_windows(loaded_ws)
    with loaded_ws.write() as c:
        c.execute("""INSERT INTO scores SELECT transaction_id, 'test', CASE WHEN ts < $mid
                         THEN (CASE WHEN is_fraud THEN 0.6 ELSE 0.0 END) + 0.4 * random()
                         ELSE random() END, 'model', 0.0, ts, NULL FROM transactions""", {"mid": cur.start})
    rep = drift.run_report(loaded_ws, ref, cur, multivariate_checks=False)
    perf = rep.performance
    assert perf["drift"] and perf["pr_auc"]["reference"] > 0.95 and perf["pr_auc"]["current"] < 0.3
    assert "performance drop" in set(rep.findings["kind"])
    assert rep.verdict["action"] == drift.RECOMMEND["retrain"]
    week = perf["weeks"].query("window == 'reference' and frauds >= 5").iloc[1]
    frame = loaded_ws.df("""SELECT s.score, t.is_fraud FROM transactions t JOIN scores s USING (transaction_id)
                            WHERE date_trunc('week', t.ts) = $w AND t.ts < $mid""", {"w": week["week"], "mid": cur.start})
    assert week["pr_auc"] == pytest.approx(average_precision_score(frame["is_fraud"], frame["score"]), abs=1e-9)
    score = rep.columns.set_index("column").loc["score"]
    assert score["source"] == "scores" and score["status"] == "drift"  # prediction drift on the score itself


def test_a_category_vanishing_mid_window_is_a_pipeline_break(tmp_path, small_sim):
    frame = small_sim.transactions.copy()
    span = frame["ts"].max() - frame["ts"].min()
    broken = frame["ts"].min() + span * 0.75  # three quarters in: halfway through the current window
    gone = (frame["ts"] >= broken) & (frame["category"] == "grocery")
    frame.loc[gone, "category"] = "home"  # a mapping change upstream folds one category into another
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, frame, source="vanishing")
    ref, cur = drift.split_windows(ws)
    rep = drift.run_report(ws, ref, cur, multivariate_checks=False, performance_checks=False)
    f = _finding(rep, "category")
    assert f["kind"] == "pipeline break" and "grocery" in f["what"]
    assert f["recommendation"] == drift.RECOMMEND["pipeline"]
    assert abs((pd.Timestamp(f["since"]) - broken).days) <= 1
    ws.close()


@pytest.mark.parametrize("kind", ["sudden", "gradual"])
def test_statistics_and_decisions_agree_with_the_common_open_source_defaults(reports, kind):
    """Exact scipy values on the in-memory windows, with the usual large-sample rule (statistic >= 0.1 = drift)."""
    from scipy.spatial.distance import jensenshannon

    ws, rep = reports[kind]
    frames = []
    for w in (rep.reference, rep.current):
        where, params = w.where("t")
        frames.append(ws.df(f"SELECT * FROM transactions t WHERE {where}", params))
    ref, cur = frames
    table = rep.columns.set_index("column")
    for column in ("amount", "lat", "lon", "merchant_lat", "merchant_lon"):
        exact = stats.wasserstein_distance(ref[column], cur[column]) / ref[column].std(ddof=0)
        assert table.loc[column, "statistic"] == pytest.approx(exact, rel=0.1, abs=0.01), column
        assert (table.loc[column, "status"] == "drift") == (exact >= 0.1), column
    for column in ("category", "channel", "country", "currency"):
        counts = pd.concat([ref[column].value_counts(), cur[column].value_counts()], axis=1).fillna(0).to_numpy()
        exact = jensenshannon(counts[:, 0] / counts[:, 0].sum(), counts[:, 1] / counts[:, 1].sum())
        assert table.loc[column, "statistic"] == pytest.approx(exact, abs=0.01), column
        assert (table.loc[column, "status"] == "drift") == (exact >= 0.1), column
