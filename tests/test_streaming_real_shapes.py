"""Streaming data shaped like public fraud datasets (not our simulator) through the incremental pipeline and the live
API: daily batches in order and shuffled (late rows inside and beyond the horizon), events posted one by one, analysts
deciding cases between loads. Every feature and every score must equal a full rebuild of the same rows."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from people import admin, analyst
from starlette.applications import Starlette
from starlette.testclient import TestClient

from fraudlab import cases, pipeline
from fraudlab.api import build_routes, create_key
from fraudlab.api.writer import flush_all
from fraudlab.charts.drift import late_share_figure
from fraudlab.drift import late_share_by_day
from fraudlab.features import build_features
from fraudlab.handbook_sim import simulate_handbook
from fraudlab.ingest import ingest_path
from fraudlab.model import train_model
from fraudlab.registry import register
from fraudlab.schema import ColumnMapping, apply_preset
from fraudlab.scoring import score_window
from fraudlab.workspace import Workspace

PAYSIM = "mobile money (step, nameOrig, isFraud)"
PCA = "anonymised PCA (Time, V1..V28, Amount, Class)"
HORIZON_HOURS = 24
SCORES = "SELECT transaction_id, score, scorer, model_id FROM scores ORDER BY transaction_id"
FEATURES = "SELECT * FROM features ORDER BY transaction_id"


# ---------------------------------------------------------------------------------------------- the shapes

def handbook_frame() -> pd.DataFrame:
    """The handbook's card layout: TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD, time indexes."""
    return simulate_handbook(n_customers=100, n_terminals=200, nb_days=14, seed=5)


def paysim_frame(seed: int = 3, days: int = 12) -> pd.DataFrame:
    """A PaySim-like mobile-money log: hourly `step`, `type`, `nameOrig` / `nameDest`, balances, `isFraud`, and the
    `isFlaggedFraud` column derived from the label; no id, device, IP or card column; many rows share a step."""
    rng = np.random.default_rng(seed)
    n = 220 * days
    step = np.sort(rng.integers(1, 24 * days + 1, n))
    kind = rng.choice(["PAYMENT", "TRANSFER", "CASH_OUT", "CASH_IN", "DEBIT"], n, p=[0.35, 0.1, 0.3, 0.2, 0.05])
    amount = np.round(rng.lognormal(5, 1.2, n), 2)
    fraud = (np.isin(kind, ["TRANSFER", "CASH_OUT"]) & (rng.random(n) < 0.04)) | (amount > 4_000)
    old = np.round(rng.lognormal(6, 1.5, n), 2)
    dest = np.where(kind == "PAYMENT", np.char.add("M", rng.integers(1, 150, n).astype(str)),
                    np.char.add("C9", rng.integers(1, 400, n).astype(str)))
    return pd.DataFrame({"step": step, "type": kind, "amount": amount,
                         "nameOrig": np.char.add("C1", rng.integers(1, 900, n).astype(str)),
                         "oldbalanceOrg": old, "newbalanceOrig": np.maximum(old - amount, 0).round(2),
                         "nameDest": dest, "oldbalanceDest": np.round(rng.lognormal(6, 1.5, n), 2),
                         "newbalanceDest": np.round(rng.lognormal(6, 1.5, n), 2), "isFraud": fraud.astype(int),
                         "isFlaggedFraud": (fraud & (amount > 3_000)).astype(int)})


def pca_frame(seed: int = 4, days: int = 8) -> pd.DataFrame:
    """The anonymised card layout: `Time` in seconds from the first row, V1..V5, `Amount`, `Class`; no entity at all."""
    rng = np.random.default_rng(seed)
    n = 300 * days
    y = rng.random(n) < 0.03
    return pd.DataFrame({"Time": np.sort(rng.integers(0, days * 86_400, n)),
                         **{f"V{i}": np.round(rng.normal(0, 1, n) + (1.2 * y if i < 3 else 0), 6) for i in range(1, 6)},
                         "Amount": rng.gamma(2, 40, n).round(2), "Class": y.astype(int)})


def day_of(shape: str, frame: pd.DataFrame) -> np.ndarray:
    """The day index of each row, read from the shape's own time column."""
    if shape == "handbook":
        return frame["TX_TIME_DAYS"].to_numpy()
    if shape == "paysim":
        return ((frame["step"].to_numpy() - 1) // 24).astype(int)
    return (frame["Time"].to_numpy() // 86_400).astype(int)


def mapping_for(shape: str, columns: list[str]) -> ColumnMapping | None:
    """The mapping an analyst would confirm: the preset for PaySim and PCA, auto-detection for the handbook."""
    return {"paysim": lambda: apply_preset(PAYSIM, columns), "pca": lambda: apply_preset(PCA, columns)}.get(
        shape, lambda: None)()


FRAMES = {"handbook": handbook_frame, "paysim": paysim_frame, "pca": pca_frame}


# ---------------------------------------------------------------------------------------------- streaming helpers

@pytest.fixture(autouse=True)
def no_first_drift_report(monkeypatch):
    """The first refresh after a load also saves a first drift report (seconds of work, not under test here)."""
    monkeypatch.setattr(pipeline, "MIN_DRIFT_ROWS", 10**9)


def daily_batches(shape: str, frame: pd.DataFrame, history_share: float = 0.7) -> list[pd.DataFrame]:
    """The first `history_share` of the days as one history batch, then one batch per later day."""
    day = day_of(shape, frame)
    cut = int(day.min() + history_share * (day.max() - day.min() + 1))
    return [frame[day < cut]] + [frame[day == d] for d in range(cut, int(day.max()) + 1) if (day == d).any()]


def shuffled_with_late(batches: list[pd.DataFrame], seed: int) -> list[pd.DataFrame]:
    """History first, then the daily batches in a random order; a few rows of each day also arrive a day or a week
    late, inside a later batch (late within and beyond the horizon)."""
    rng = np.random.default_rng(seed)
    history, days = batches[0], [b.copy() for b in batches[1:]]
    for i in range(len(days) - 1):
        held = days[i].sample(n=min(4, len(days[i]) - 1), random_state=seed + i)
        days[i] = days[i].drop(held.index)
        target = min(i + (1 if i % 2 else 6), len(days) - 1)
        days[target] = pd.concat([days[target], held])
    order = rng.permutation(len(days))
    return [history] + [days[i] for i in order]


def write_batches(folder: Path, batches: list[pd.DataFrame]) -> list[Path]:
    """Each batch as the CSV file a daily export would be."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, batch in enumerate(batches):
        path = folder / f"batch_{i:03d}.csv"
        batch.to_csv(path, index=False)
        paths.append(path)
    return paths


def first_model(ws: Workspace) -> None:
    """A small champion on the history, its scores and the case queue (the app's first start, quicker)."""
    register(ws, train_model(ws, rounds=30, refit=False), who=admin())
    score_window(ws, explain_top=0)
    cases.refresh_cases(ws)


def analysts_decide(ws: Workspace, n: int = 2) -> int:
    """Analysts close the top cases of the queue (labels recorded between loads); returns how many they decided."""
    if not ws.has_table("cases") or ws.count("cases") == 0:
        return 0
    top = ws.df("SELECT case_id FROM cases ORDER BY score DESC, case_id LIMIT $n", {"n": n})["case_id"].tolist()
    for i, case_id in enumerate(top):
        cases.decide(ws, case_id, "legitimate" if i % 2 else "fraud", analyst(), note="checked with the customer",
                     close_reason=None if i % 2 == 0 else "legitimate: customer confirmed")
    return len(top)


def stream(ws: Workspace, shape: str, paths: list[Path], mapping: ColumnMapping | None,
           analysts: bool = True) -> list[list[str]]:
    """Load the history (features and a small first model), then every later file through `pipeline.load` (late rows
    marked, features and scores updated incrementally, the queue's lookups updated)."""
    steps = []
    ingest_path(ws, paths[0], mapping, who=admin(), keep_columns="all")
    build_features(ws)
    first_model(ws)
    for i, path in enumerate(paths[1:]):
        report, done = pipeline.load(ws, path, mapping, who=admin(), keep_columns="all",
                                     late_horizon_hours=HORIZON_HOURS)
        assert report.status == "ok" and report.rows_loaded > 0, report.message
        steps.append(done)
        if analysts and i % 3 == 1 and i < len(paths) - 2:  # decisions reach the features with the next load
            analysts_decide(ws)
    return steps


def assert_equals_full_rebuild(ws: Workspace) -> None:
    """Every feature and every score of the streamed workspace equals a full rebuild and rescore of its rows."""
    features, scores = ws.df(FEATURES), ws.df(SCORES)
    assert len(features) == ws.count("transactions") == len(scores)
    build_features(ws, label_delay_days=pipeline.feature_label_delay(ws))
    score_window(ws, explain_top=0)
    rebuilt = ws.df(FEATURES)
    assert list(features.columns) == list(rebuilt.columns)
    for col in rebuilt.columns:  # column by column, so a failure names the feature
        pd.testing.assert_series_equal(features[col], rebuilt[col], check_exact=False, rtol=1e-9, atol=1e-9,
                                       obj=f"feature {col}")
    pd.testing.assert_frame_equal(scores, ws.df(SCORES), check_exact=False, rtol=1e-9, atol=1e-9)


def fresh_features(tmp_path: Path, shape: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Features of the same rows loaded at once into a new workspace (ids, plan and values must not depend on the
    order the files came in)."""
    path = tmp_path / f"{shape}_all.csv"
    frame.to_csv(path, index=False)
    ws = Workspace(tmp_path / f"{shape}_all.duckdb")
    try:
        ingest_path(ws, path, mapping_for(shape, list(frame.columns)), keep_columns="all")
        build_features(ws)
        return ws.df(FEATURES)
    finally:
        ws.close()


# ---------------------------------------------------------------------------------------------- 1. batches

@pytest.mark.parametrize("shape", ["handbook", "paysim", "pca"])
@pytest.mark.parametrize("shuffled", [False, True], ids=["in_order", "shuffled"])
def test_daily_batches_equal_a_full_rebuild(tmp_path, shape, shuffled):
    frame = FRAMES[shape]()
    batches = daily_batches(shape, frame)
    if shuffled:
        batches = shuffled_with_late(batches, seed=len(frame))
    paths = write_batches(tmp_path / "inbox", batches)
    mapping = mapping_for(shape, list(frame.columns))
    ws = Workspace(tmp_path / "ws.duckdb")
    steps = stream(ws, shape, paths, mapping, analysts=shuffled)  # analysts decide cases while the days arrive
    assert ws.count("transactions") == len(frame), "every row loaded once"
    assert all(any("incrementally" in s for s in done) for done in steps), steps
    statuses = set(ws.df("SELECT DISTINCT status FROM arrivals")["status"])
    if shuffled:  # every late row is counted on its event day, as the Drift page's chart shows it
        assert statuses <= {"late", "beyond_horizon"} and "beyond_horizon" in statuses
        assert shape == "pca" or "late" in statuses  # rows without a customer are late against the newest row
        daily = late_share_by_day(ws)
        marks = ws.df("SELECT status, count(*) AS n FROM arrivals GROUP BY 1").set_index("status")["n"]
        assert daily["late"].sum() == marks.get("late", 0) and daily["beyond_horizon"].sum() == marks["beyond_horizon"]
        assert daily["transactions"].sum() == len(frame) and daily["late_share"].between(0, 1).all()
        figure = late_share_figure(daily)
        assert [len(trace.x) for trace in figure.data] == [len(daily)] * 2
    if not shuffled:  # no analyst labels: a new workspace loading the same rows at once gives the same table
        pd.testing.assert_frame_equal(ws.df(FEATURES), fresh_features(tmp_path, shape, frame), check_exact=False,
                                      rtol=1e-9, atol=1e-9)
    assert_equals_full_rebuild(ws)
    ws.close()


# ---------------------------------------------------------------------------------------------- 2. live events

def as_event(row: pd.Series, mapping: ColumnMapping, frame_columns: list[str]) -> dict:
    """One source row as a client posts it: canonical names for mapped columns (time as ISO text), the workspace's
    extra-column names for the others."""
    from fraudlab.ingest.extras import extra_name

    body = {}
    for target, source in mapping.columns.items():
        value = row[source]
        if target == "ts":
            value = (pd.Timestamp(mapping.ts_origin) + pd.Timedelta(seconds=float(value) * mapping.ts_unit_seconds)
                     if mapping.ts_unit_seconds else pd.Timestamp(value)).isoformat()
        body[target] = value
    for col in frame_columns:
        if col not in mapping.columns.values():
            body[extra_name(col)] = row[col]
    return {k: (None if isinstance(v, float) and math.isnan(v) else v.item() if hasattr(v, "item") else v)
            for k, v in body.items()}


def live_setup(tmp_path: Path, shape: str, held_out: int) -> tuple[Workspace, TestClient, dict, pd.DataFrame,
                                                                    ColumnMapping]:
    """A workspace with the shape's history (all but the newest `held_out` rows), features and a champion; a client
    of the API over it with a key; the held-out rows, oldest first."""
    frame = FRAMES[shape]()
    history, live = frame.iloc[:-held_out], frame.iloc[-held_out:]
    path = tmp_path / f"{shape}_history.csv"
    history.to_csv(path, index=False)
    ws = Workspace(tmp_path / "live.duckdb")
    report = ingest_path(ws, path, mapping_for(shape, list(frame.columns)), keep_columns="all")
    build_features(ws)
    first_model(ws)
    key = create_key(ws, "checkout", admin())
    client = TestClient(Starlette(routes=build_routes(lambda: ws, budget_ms=10_000.0, recheck_s=0.0)))
    return ws, client, {"Authorization": f"Bearer {key}"}, live, ColumnMapping.from_dict(report.mapping)


@pytest.mark.parametrize("shape", ["handbook", "paysim"])
def test_events_posted_one_by_one_get_the_features_of_a_batch_rebuild(tmp_path, shape):
    ws, client, headers, live, mapping = live_setup(tmp_path, shape, held_out=12)
    ids = []
    for _i, row in live.iterrows():
        answer = client.post("/api/v1/score", json=as_event(row, mapping, list(live.columns)), headers=headers)
        assert answer.status_code == 200, answer.text
        got = answer.json()
        assert got["scorer"] == "model" and 0 <= got["score"] <= 1, got
        ids.append(got["transaction_id"])
    assert flush_all()  # the built-in features' path answers before its write commits
    assert ws.count("transactions") == ws.count("features") == ws.count("scores")
    query = "SELECT * FROM features WHERE transaction_id IN (SELECT unnest($ids)) ORDER BY transaction_id"
    served = ws.df(query, {"ids": ids})
    build_features(ws)
    rebuilt = ws.df(query, {"ids": ids})
    assert len(served) == len(rebuilt) == len(ids)
    pd.testing.assert_frame_equal(served[rebuilt.columns], rebuilt, check_dtype=False, check_categorical=False,
                                  rtol=1e-9, atol=1e-9)
    ws.close()


@pytest.mark.parametrize("shape", ["handbook", "paysim"])
def test_events_posted_out_of_order_leave_every_feature_as_a_rebuild(tmp_path, shape):
    ws, client, headers, live, mapping = live_setup(tmp_path, shape, held_out=12)
    order = np.random.default_rng(1).permutation(len(live))
    for i in order:  # newest and oldest mixed: some arrive after later events of the same customer or merchant
        answer = client.post("/api/v1/score", json=as_event(live.iloc[i], mapping, list(live.columns)),
                             headers=headers)
        assert answer.status_code == 200, answer.text
    assert flush_all()
    assert_equals_full_rebuild(ws)
    # an event stored after a later row of its customer is marked late in `arrivals`, as a load's late rows are
    posted = ws.df("SELECT transaction_id, customer_id, ts FROM transactions WHERE transaction_id IN "
                   "(SELECT transaction_id FROM api_events)").set_index("transaction_id")
    newest = ws.df("SELECT customer_id, max(ts) AS newest FROM transactions WHERE transaction_id NOT IN "
                   "(SELECT transaction_id FROM api_events) GROUP BY 1").set_index("customer_id")["newest"].to_dict()
    received = ws.df("SELECT transaction_id FROM api_events ORDER BY received_at, transaction_id")["transaction_id"]
    expected = set()
    for tid in received:  # in the order the events were stored
        customer, ts = posted.loc[tid, "customer_id"], posted.loc[tid, "ts"]
        if customer is not None and customer in newest and newest[customer] > ts:
            expected.add(tid)
        if customer is not None:
            newest[customer] = max(newest.get(customer, ts), ts)
    marked = ws.df("SELECT transaction_id, late_by_seconds, status FROM arrivals WHERE ingest_id IS NULL")
    assert set(marked["transaction_id"]) == expected
    assert expected or shape == "paysim"  # PaySim's customers hardly repeat: its late events are late by merchant
    assert (marked["late_by_seconds"] > 0).all() and set(marked["status"]) <= {"late", "beyond_horizon"}
    ws.close()


# ---------------------------------------------------------------------------------------------- 3. labels late, scores partial

def with_delayed_labels(frame: pd.DataFrame, delay_days: tuple[float, float] = (1, 4), seed: int = 6) -> pd.DataFrame:
    """The handbook rows with labels as a bank receives them: a fraud's chargeback date `delay_days` after the
    transaction, and no label yet (empty) for the last three days."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    fraud = out["TX_FRAUD"] == 1
    delay = pd.to_timedelta(rng.uniform(*delay_days, len(out)) * 86_400, unit="s")
    out["chargeback_date"] = (out["TX_DATETIME"] + delay).where(fraud)
    recent = out["TX_TIME_DAYS"] >= out["TX_TIME_DAYS"].max() - 2
    out["TX_FRAUD"] = out["TX_FRAUD"].astype("Int64").mask(recent)
    return out


def test_delayed_and_missing_labels_stream_like_a_full_rebuild(tmp_path):
    frame = with_delayed_labels(handbook_frame())
    batches = shuffled_with_late(daily_batches("handbook", frame), seed=9)
    paths = write_batches(tmp_path / "inbox", batches)
    ws = Workspace(tmp_path / "ws.duckdb")
    stream(ws, "handbook", paths, None)
    mapping = ws.df("SELECT mapping FROM ingests ORDER BY ingest_id LIMIT 1")["mapping"].iloc[0]
    assert '"label_ts": "chargeback_date"' in mapping and '"is_fraud": "TX_FRAUD"' in mapping
    labelled = ws.scalar("SELECT count(*) FROM labels WHERE source = 'data'")
    assert labelled == frame["TX_FRAUD"].notna().sum(), "rows without a label yet have none"
    assert ws.scalar("SELECT count(*) FROM labels WHERE label_ts IS NOT NULL AND source = 'data'") == \
        (frame["TX_FRAUD"] == 1).sum()
    assert ws.df("SELECT m_fraud_7d FROM features")["m_fraud_7d"].nunique() > 1
    assert_equals_full_rebuild(ws)
    ws.close()


@pytest.mark.parametrize("writer_interval_s", [None, 1.0])
def test_a_partly_scored_workspace_takes_batches_and_live_events(tmp_path, monkeypatch, writer_interval_s):
    from fraudlab.api.writer import LiveWriter
    from fraudlab.scoring import clear_scores

    if writer_interval_s:  # live events still uncommitted when the load starts: the load must flush them first
        monkeypatch.setattr(LiveWriter.__init__, "__defaults__", (writer_interval_s,))
    ws, client, headers, live, mapping = live_setup(tmp_path, "paysim", held_out=6)
    last_days = pd.Timestamp(ws.scalar("SELECT max(ts) FROM transactions")) - pd.Timedelta(days=2)
    clear_scores(ws, admin())
    score_window(ws, start=last_days, explain_top=0)  # only the newest days scored, as after a partial rescore
    assert 0 < ws.count("scores") < ws.count("transactions")
    for _i, row in live.iloc[::-1].iterrows():  # newest first: the older ones arrive late
        answer = client.post("/api/v1/score", json=as_event(row, mapping, list(live.columns)), headers=headers)
        assert answer.status_code == 200, answer.text
    extra = paysim_frame(seed=11, days=2)  # another day of the same layout through the load path
    extra["step"] += 24 * 11  # its first day overlaps the newest stored day (late rows), its second is new
    path = tmp_path / "next_day.csv"
    extra.iloc[:150].to_csv(path, index=False)
    report, steps = pipeline.load(ws, path, apply_preset(PAYSIM, list(extra.columns)), who=admin(),
                                  keep_columns="all")
    assert report.rows_loaded == 150 and any("incrementally" in s for s in steps), steps
    assert ws.count("scores") == ws.count("transactions"), "the refresh after the load scored every row"
    assert_equals_full_rebuild(ws)
    ws.close()


def test_live_scoring_before_features_or_models_answers_clearly(tmp_path):
    frame = pca_frame(days=3)
    path = tmp_path / "pca.csv"
    frame.to_csv(path, index=False)
    ws = Workspace(tmp_path / "pca.duckdb")
    mapping = apply_preset(PCA, list(frame.columns))
    ingest_path(ws, path, mapping, keep_columns="all")
    client = TestClient(Starlette(routes=build_routes(lambda: ws, recheck_s=0.0)))
    headers = {"Authorization": f"Bearer {create_key(ws, 'checkout', admin())}"}
    body = as_event(frame.iloc[-1], mapping, list(frame.columns)) | {"transaction_id": "live-1"}
    refused = client.post("/api/v1/score", json=body, headers=headers)
    assert refused.status_code == 503 and "features are not built yet" in refused.json()["error"]["message"]
    build_features(ws)  # features but no model yet (labels too few to train): the rules answer
    answer = client.post("/api/v1/score", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["scorer"] == "rules" and answer.json()["model_id"] is None
    assert ws.count("transactions") == ws.count("features")
    ws.close()


def test_labels_slower_than_the_history_name_the_window_not_every_feature(tmp_path):
    from fraudlab.errors import ModelError

    frame = with_delayed_labels(handbook_frame(), delay_days=(10, 40))  # chargebacks after weeks; 14 days of data
    path = tmp_path / "handbook.csv"
    frame.to_csv(path, index=False)
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_path(ws, path, keep_columns="all")
    build_features(ws)
    with pytest.raises(ModelError, match=r"no labelled transactions between .* \(labels take about 3[0-9]\.[0-9] days"):
        train_model(ws, rounds=5, refit=False)
    steps = pipeline.refresh(ws, load_sample=False)  # the app's refresh reports it once and goes on without a model
    assert any(s.startswith("no model yet: no labelled transactions") for s in steps), steps
    ws.close()
