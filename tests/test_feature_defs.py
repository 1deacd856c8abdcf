"""Feature lab: each aggregate equals a slow reference, no leakage, bad text refused, backfill equals rebuild, CLI, page."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from people import scientist
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudlab.cli import build_parser, main
from fraudlab.errors import FeatureDefError
from fraudlab.featurelab import (
    FeatureDef,
    add_definition,
    compile_sql,
    drop_definition,
    feature_set_version,
    list_definitions,
    parse_window,
)
from fraudlab.featurelab.evaluate import (
    _values,
    evaluate_feature,
    future_shuffle_check,
    preview_feature,
    try_in_challenger,
)
from fraudlab.features import build_features, feature_columns, feature_info, load_frame
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.pipeline import retrain
from fraudlab.workspace import Workspace, copy_workspace

DAY = 86_400
DEFS = [
    FeatureDef("u_cnt_1h", "customer_id", "count", window="1h"),
    FeatureDef("u_sum_online_7d", "customer_id", "sum", "amount", "7d", where="channel = 'online'"),
    FeatureDef("u_card_mean_24h", "card_id", "mean", "amount", "24h"),
    FeatureDef("u_std_all", "customer_id", "std", "amount", "all"),
    FeatureDef("u_merchant_min_7d", "merchant_id", "min", "amount", "7d"),
    FeatureDef("u_device_max_7d", "device_id", "max", "amount", "7d"),
    FeatureDef("u_distinct_merchants_7d", "customer_id", "distinct", "merchant_id", "7d"),
    FeatureDef("u_since_last", "customer_id", "since_last", window="all"),
    FeatureDef("u_ip_since_last_big_1d", "ip", "since_last", window="1d", where="amount > 100"),
    FeatureDef("u_ratio_30d", "customer_id", "ratio", "amount", "30d"),
    FeatureDef("u_zscore_30d", "customer_id", "zscore", "amount", "30d"),
    FeatureDef("u_merchant_frauds_7d_late", "merchant_id", "sum", "is_fraud", "7d", delay="7d"),
    FeatureDef("u_abs_mean_7d", "customer_id", "mean", window="7d", expression="abs(amount - 50)"),
    FeatureDef("u_log_amount_x2", None, "value", expression="ln(amount + 1) * 2"),
]


def _simulated(seed: int = 5) -> pd.DataFrame:
    return simulate(rows=3_000, seed=seed, days=20).transactions


@pytest.fixture(scope="module")
def base_file(tmp_path_factory):
    """A workspace with 3,000 simulated rows and built-in features (copied per test)."""
    path = tmp_path_factory.mktemp("lab") / "base.duckdb"
    ws = Workspace(path)
    ingest_table(ws, _simulated(), source="simulation seed 5")
    build_features(ws)
    ws.close()
    return path


@pytest.fixture()
def lab(tmp_path, base_file):
    ws = Workspace(copy_workspace(base_file, tmp_path / "lab.duckdb"))
    yield ws
    ws.close()


def _aggregate(agg: str, own: float, v: np.ndarray, labels: pd.Series, gap: float) -> float:
    """One aggregate of the earlier values `v` (labels: the `of` values, for distinct; gap: seconds since last)."""
    if agg in ("count", "sum"):
        return float(len(v)) if agg == "count" else float(v.sum())
    if agg == "distinct":
        return float(labels.nunique())
    if agg == "since_last":
        return gap
    n = len(v)
    mean, std = (v.mean() if n else np.nan), (v.std(ddof=1) if n > 1 else np.nan)
    if agg == "ratio":
        return own / mean if n and mean != 0 else np.nan
    if agg == "zscore":
        return (own - mean) / std if n > 1 and std > 0 else np.nan
    return {"mean": mean, "std": std, "min": v.min() if n else np.nan, "max": v.max() if n else np.nan}[agg]


def _reference(tx: pd.DataFrame, d: FeatureDef) -> pd.Series:
    """Slow, obvious per-row value of a definition from the same key's strictly earlier rows."""
    tx = tx.sort_values(["ts", "transaction_id"]).reset_index(drop=True)
    if d.aggregate == "value":
        return pd.Series((np.log(tx["amount"] + 1) * 2).to_numpy(), index=tx["transaction_id"])
    if d.expression == "abs(amount - 50)":
        value = np.abs(tx["amount"] - 50).to_numpy(float)
    elif d.of and d.aggregate != "distinct":
        value = tx[d.of].astype(float).to_numpy()
    else:
        value = np.ones(len(tx))
    keep = ((tx["channel"] == "online") if d.where == "channel = 'online'" else
            (tx["amount"] > 100) if d.where == "amount > 100" else pd.Series(True, index=tx.index)).to_numpy()
    window, delay = parse_window(d.window), (7 * DAY if d.delay else 0)
    secs = (tx["ts"] - tx["ts"].min()).dt.total_seconds().to_numpy()
    out = np.full(len(tx), np.nan)
    for _, group in tx[tx[d.key].notna()].groupby(d.key):
        idx = group.index.to_numpy()
        for i in idx:
            t = secs[i]
            m = (secs[idx] < t) if not delay else (secs[idx] <= t - delay)
            if window is not None:
                m &= secs[idx] >= t - window - delay
            rows = idx[m & keep[idx]]
            gap = t - secs[rows].max() if len(rows) else np.nan
            out[i] = _aggregate(d.aggregate, value[i], value[rows], tx.loc[rows, d.of] if d.of else None, gap)
    return pd.Series(out, index=tx["transaction_id"])


def test_every_aggregate_matches_a_slow_reference_after_backfill(lab):
    tx = _simulated()
    for d in DEFS:
        add_definition(lab, d, scientist("test"))
    ours = load_frame(lab).set_index("transaction_id")
    assert [d.name for d in DEFS] == [n for n in feature_columns(lab) if n.startswith("u_")]
    for d in DEFS:
        ref = _reference(tx, d)
        np.testing.assert_allclose(ours.loc[ref.index, d.name].astype(float), ref.astype(float), rtol=1e-9, atol=1e-6,
                                   err_msg=d.name)
        assert ours[d.name].notna().any(), d.name


def test_user_features_of_the_past_do_not_change_when_the_future_is_shuffled(tmp_path):
    tx = _simulated()
    cut = tx["ts"].quantile(0.6)
    future = tx[tx["ts"] >= cut].copy()
    rng = np.random.default_rng(0)
    for col in ("amount", "customer_id", "card_id", "device_id", "merchant_id", "ip", "channel", "is_fraud"):
        future[col] = rng.permutation(future[col].to_numpy())
    frames = []
    for name, frame in (("a", tx), ("b", pd.concat([tx[tx["ts"] < cut], future], ignore_index=True))):
        ws = Workspace(tmp_path / f"{name}.duckdb")
        ingest_table(ws, frame, source=name)
        build_features(ws)
        for d in DEFS:
            add_definition(ws, d, scientist("test"))
        frames.append(load_frame(ws, where="t.ts < $cut", params={"cut": cut},
                                 columns=[d.name for d in DEFS]).set_index("transaction_id").sort_index())
        assert all(future_shuffle_check(ws, d, sample=1_500).passed for d in DEFS)
        ws.close()
    assert len(frames[0]) > 1000
    pd.testing.assert_frame_equal(frames[0], frames[1])


@pytest.mark.parametrize("defn, message", [
    (FeatureDef("x1", "customer_id", "mean", "no_such_column", "7d"), "unknown column 'no_such_column'"),
    (FeatureDef("x2", "customer_id", "mean", window="7d", expression="amount; DROP TABLE transactions"), "';'"),
    (FeatureDef("x3", "customer_id", "sum", window="7d", expression="(SELECT 1)"), "SELECT is not allowed"),
    (FeatureDef("x4", "customer_id", "count", window="-1d"), "must be positive"),
    (FeatureDef("x5", "customer_id", "count", window="7 days"), "not a duration"),
    (FeatureDef("x6", "customer_id", "avg", "amount", "7d"), "unknown aggregate 'avg'; use one of count"),
    (FeatureDef("x7", "customer_id", "mean", window="7d", expression="read_csv('x')"), "function 'read_csv'"),
    (FeatureDef("x8", "customer_id", "count", window="7d", where="amount > 1 -- c"), "comments"),
    (FeatureDef("x9", "merchant_id", "sum", "is_fraud", "7d"), "is the label"),
    (FeatureDef("c_cnt_1h", "customer_id", "count", window="1h"), "already exists"),
    (FeatureDef("Bad Name", "customer_id", "count", window="1h"), "feature name"),
])
def test_bad_definitions_are_refused_with_a_clear_error_and_change_nothing(lab, defn, message):
    before = (feature_set_version(lab), lab.columns("features"), len(lab.audit_log()), lab.version)
    with pytest.raises(FeatureDefError, match=message.replace("(", r"\(").replace(";", ";")):
        add_definition(lab, defn, scientist("test"))
    assert (feature_set_version(lab), lab.columns("features"), len(lab.audit_log()), lab.version) == before


def test_a_second_definition_with_the_same_name_is_refused(lab):
    add_definition(lab, DEFS[0], scientist("test"))
    with pytest.raises(FeatureDefError, match="already exists"):
        add_definition(lab, FeatureDef("u_cnt_1h", "card_id", "count", window="7d"), scientist("test"))


def test_backfill_of_one_definition_equals_a_full_rebuild_and_drop_removes_it(lab):
    add_definition(lab, DEFS[1], scientist("ana"))
    add_definition(lab, DEFS[10], scientist("ana"))
    backfilled = load_frame(lab).set_index("transaction_id").sort_index()
    build_features(lab)
    rebuilt = load_frame(lab).set_index("transaction_id").sort_index()
    pd.testing.assert_frame_equal(backfilled, rebuilt)
    assert feature_set_version(lab) == 2
    assert drop_definition(lab, DEFS[1].name, scientist("ana")) == 3
    assert DEFS[1].name not in lab.columns("features") and DEFS[1].name not in feature_columns(lab)
    assert list(list_definitions(lab)["name"]) == [DEFS[10].name]
    actions = lab.audit_log()["action"].tolist()
    assert actions[:1] == ["drop_feature"] and actions.count("add_feature") == 2
    build_features(lab)  # a dropped definition stays dropped through a rebuild
    assert DEFS[1].name not in lab.columns("features") and DEFS[10].name in lab.columns("features")


@pytest.mark.parametrize("indexed", [True, False])
def test_dropping_a_feature_keeps_an_older_tables_id_index_and_adds_none(lab, indexed):
    if indexed:  # features built before they were stored in time order carry this index until their next full build
        with lab.write(bump=False) as cur:
            cur.execute("CREATE INDEX features_transaction_id ON features (transaction_id)")
    add_definition(lab, DEFS[1], scientist("ana"))
    drop_definition(lab, DEFS[1].name, scientist("ana"))
    assert DEFS[1].name not in lab.columns("features")
    names = [r[0] for r in lab.cursor().execute("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'features'"
                                                 ).fetchall()]
    assert names == (["features_transaction_id"] if indexed else [])


def test_compiled_sql_reads_only_strictly_earlier_rows():
    sql = compile_sql(FeatureDef("x", "customer_id", "mean", "amount", "7d", delay="1d"))
    assert "EXCLUDE GROUP" in sql and "691200 SECONDS PRECEDING AND INTERVAL 86400 SECONDS PRECEDING" in sql


def test_evaluate_reports_months_leakage_checks_and_correlations(lab):
    add_definition(lab, DEFS[1], scientist("test"))
    ev = evaluate_feature(lab, DEFS[1].name)
    assert ev.rows == 3_000 and 0 < ev.coverage <= 1 and len(ev.per_month) >= 1
    assert {c.name for c in ev.leakage} == {"name", "single-column AUC", "future shuffle"} and not ev.leaks
    assert len(ev.correlations) == 5 and ev.correlations["correlation"].abs().is_monotonic_decreasing
    assert 0 < ev.correlation_rows <= ev.rows and f"sample of {ev.correlation_rows:,} rows" in ev.sampling_note
    frame = _values(lab, DEFS[1], True)  # slow reference: scikit-learn on each month's labelled rows
    for m, part in frame[frame["label"].notna()].groupby(frame["ts"].dt.strftime("%Y-%m")):
        y, x = part["label"].astype(bool).to_numpy(), part["value"].to_numpy(float)
        x = np.where(np.isfinite(x), x, np.nanmin(x) - 1)
        row = ev.per_month.set_index("month").loc[m]
        if y.any() and not y.all():
            roc = roc_auc_score(y, x)
            assert row["roc_auc"] == pytest.approx(max(roc, 1 - roc), abs=1e-9)
            assert row["pr_auc"] == pytest.approx(average_precision_score(y, x if roc >= 0.5 else -x), abs=1e-9)
    constant = evaluate_feature(lab, FeatureDef("constant", None, "value", expression="amount * 0 + 1"))
    assert constant.information_value < 1e-9
    assert not next(c for c in evaluate_feature(lab, FeatureDef("fraud_hint", None, "value", expression="amount"))
                    .leakage if c.name == "name").passed
    preview = preview_feature(lab, DEFS[2], rows=500)
    assert len(preview.values) >= 500 and preview.seconds < 30


def test_evaluate_resolves_transactions_with_several_label_rows_like_the_resolver(lab):
    from fraudlab.labels import record_analyst_labels, resolved_sql

    add_definition(lab, DEFS[1], scientist("test"))
    flipped = lab.df("SELECT transaction_id FROM transactions ORDER BY ts LIMIT 40")["transaction_id"].tolist()
    frauds = lab.df("SELECT transaction_id FROM labels WHERE is_fraud LIMIT 10")["transaction_id"].tolist()
    with lab.write() as cur:  # an analyst calls 40 early ones fraud, then clears 10 known frauds (twice for 5)
        record_analyst_labels(cur, flipped, True)
        record_analyst_labels(cur, frauds, False)
        record_analyst_labels(cur, frauds[:5], False)
    assert lab.scalar("SELECT count(*) FROM (SELECT transaction_id FROM labels GROUP BY 1 HAVING count(*) > 1)") >= 45
    ev = evaluate_feature(lab, DEFS[1].name)
    expected = lab.df(f"""SELECT strftime(t.ts, '%Y-%m') AS month, count(*) AS rows, count(*) FILTER (l.label) AS frauds
                          FROM transactions t LEFT JOIN ({resolved_sql(None)}) l USING (transaction_id)
                          GROUP BY 1 ORDER BY 1""")
    got = ev.per_month[["month", "rows", "frauds"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert ev.rows == lab.count("transactions")


@pytest.mark.slow  # trains models: runs with -m slow (CI runs it)
def test_try_in_challenger_trains_with_and_without_on_the_same_split(ws):
    trial = try_in_challenger(ws, FeatureDef("u_online_share_7d", "customer_id", "mean", window="7d",
                                             expression="CASE WHEN channel = 'online' THEN 1 ELSE 0 END"), draws=50)
    assert 0 <= trial.pr_auc_without <= 1 and 0 <= trial.pr_auc_with <= 1 and trial.test_rows > 0
    assert trial.low <= trial.high


def test_cli_adds_lists_evaluates_and_drops_a_feature(tmp_path, base_file, monkeypatch, capsys):
    path = copy_workspace(base_file, tmp_path / "cli.duckdb")
    monkeypatch.setenv("FRAUDLAB_WORKSPACE", str(path))
    assert main(["features", "add", "--name", "c_online_mean_30d", "--key", "customer_id", "--agg", "mean",
                 "--of", "amount", "--window", "30d", "--where", "channel = 'online'"]) == 0
    assert "feature-set version 1" in capsys.readouterr().out
    assert main(["features", "list"]) == 0
    assert "c_online_mean_30d" in capsys.readouterr().out
    assert main(["features", "evaluate", "c_online_mean_30d"]) == 0
    out = capsys.readouterr().out
    assert "2026-01" in out and "PR-AUC" in out and "leakage check future shuffle: passed" in out
    assert main(["features", "add", "--name", "bad", "--agg", "mean", "--expression", "amount; DROP TABLE x"]) == 2
    assert "not allowed" in capsys.readouterr().err
    assert main(["features", "drop", "c_online_mean_30d"]) == 0
    assert "feature-set version 2" in capsys.readouterr().out
    assert build_parser().parse_args(["features"]).func.__name__ == "_features"
    assert build_parser().parse_args(["features", "build", "--engine", "duckdb"]).func.__name__ == "_features"


def test_feature_lab_page_previews_evaluates_adds_and_drops(app_test):
    at = app_test("pages/feature_lab.py")
    assert not at.exception and at.title[0].value == "Feature lab"
    at.button(key="fl_preview").click().run()
    assert not at.exception and not at.error
    at.button(key="fl_evaluate").click().run()
    assert not at.exception and not at.error and "Leakage checks" in [m.label for m in at.metric]
    at.button(key="fl_add").click().run()
    assert not at.exception and "Added c_online_mean_30d" in at.success[0].value
    at.text_input(key="fl_where").input("amount; DROP TABLE transactions").run()
    at.button(key="fl_add").click().run()
    assert "not allowed" in at.error[0].value
    at.button(key="fl_drop").click().run()
    assert not at.exception and at.info and "No user-defined feature yet" in at.info[0].value
    # kept for the frame's next run (app.py shows it): a toast sent right before st.rerun() can be lost
    assert at.session_state["pending_toasts"] == ["Dropped c_online_mean_30d (feature-set version 2)."]


def test_feature_lab_page_tries_a_feature_in_a_challenger_and_shows_how_a_model_uses_it(app_test, app_workspace):
    at = app_test("pages/feature_lab.py")
    at.button(key="fl_try").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    metrics = {m.label: m.value for m in at.metric}
    assert 0 <= float(metrics["Test PR-AUC without"]) <= 1 and 0 <= float(metrics["Test PR-AUC with"]) <= 1
    low, high = (float(v) for v in metrics["Lift, 95% interval"].split(" to "))
    assert low <= high and "Verdict:" in at.caption[-1].value
    at.button(key="fl_add").click().run()
    assert not at.exception and "Added c_online_mean_30d" in at.success[0].value
    at.run()
    assert "No model uses it yet" in " ".join(c.value for c in at.caption)
    ws = Workspace(app_workspace)
    retrain(ws, who=scientist())  # a challenger trained on the feature set that now holds it
    ws.close()
    at.run()
    assert not at.exception, at.exception
    (chart,) = [c for c in at.get("plotly_chart") if c.proto.id.endswith("fl_dependence")]
    title = json.loads(chart.proto.spec)["layout"]["title"]["text"]
    assert title.startswith("How C online mean 30d moves the score, coloured by ")


def test_a_column_the_leakage_guard_left_out_is_refused_like_the_label(tmp_path):
    tx = _simulated(9)
    tx["risk_hint"] = tx["is_fraud"].astype(float) + np.random.default_rng(1).normal(0, 0.01, len(tx))
    ws = Workspace(tmp_path / "leaky.duckdb")
    ingest_table(ws, tx, source="with a label copy", keep_columns=["risk_hint"])
    build_features(ws)
    assert "AUC" in feature_info(ws)["excluded"]["risk_hint"]
    with pytest.raises(FeatureDefError, match="risk_hint is the label"):
        add_definition(ws, FeatureDef("u_hint_mean_7d", "customer_id", "mean", "risk_hint", "7d"), scientist("test"))
    delayed = add_definition(ws, FeatureDef("u_hint_mean_7d", "customer_id", "mean", "risk_hint", "7d", delay="7d"),
                             scientist("test"))
    assert delayed.delay == "7d"
    ws.close()
