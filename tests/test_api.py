"""The HTTP API: live scoring through Starlette's TestClient on real workspaces, and once through the real server."""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from people import admin
from starlette.applications import Starlette
from starlette.testclient import TestClient

from fraudlab.api import build_routes, create_key, revoke_key, stop_live
from fraudlab.api.writer import flush_all
from fraudlab.cases import refresh_cases
from fraudlab.featurelab import FeatureDef, add_definition
from fraudlab.features import build_features
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.model import train_model
from fraudlab.pipeline import is_stale
from fraudlab.registry import champion, previous_champion, register
from fraudlab.scoring import score_window
from fraudlab.workspace import Workspace, copy_workspace

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = 40  # the newest simulated transactions, sent one by one through the API


def event(row: pd.Series) -> dict:
    """A simulated transaction as a client would post it (JSON types, time as ISO text)."""
    out = {}
    for name, value in row.items():
        if isinstance(value, pd.Timestamp):
            out[name] = value.isoformat()
        elif isinstance(value, (float, np.floating)) and math.isnan(value):
            out[name] = None
        else:
            out[name] = value.item() if hasattr(value, "item") else value
    return out


@pytest.fixture(scope="module", params=["numpy", "sql"])
def api_base(request, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A generated workspace (features, champion, scores, queue) without its newest transactions, and those
    transactions (oldest first) to send live. "numpy": built-in features only (the NumPy path, background writes);
    "sql": with one user-defined feature (the SQL path, written before the answer)."""
    sim = simulate(rows=20_000, seed=7, days=60, fraud_rate=0.03)  # enough labelled fraud to train a first model
    tx = sim.transactions.sort_values(["ts", "transaction_id"], kind="stable").reset_index(drop=True)
    history, live = tx.iloc[:-HELD_OUT], tx.iloc[-HELD_OUT:]
    path = tmp_path_factory.mktemp("api") / "base.duckdb"
    ws = Workspace(path)
    ingest_table(ws, history, source="simulation seed 7 (history)")
    build_features(ws)  # the pipeline's steps without segments and drift (not needed here, half the time)
    register(ws, train_model(ws))
    score_window(ws, explain_top=500)
    refresh_cases(ws)
    if request.param == "sql":
        add_definition(ws, FeatureDef("card_spend_7d", key="card_id", aggregate="sum", of="amount", window="7d"),
                       admin())
    ws.close()
    return path, live.drop(columns=["label_ts"])


@pytest.fixture()
def api_ws(tmp_path, api_base):
    """A private copy of the base workspace, open."""
    path = copy_workspace(api_base[0], tmp_path / "ws.duckdb")
    ws = Workspace(path)
    yield ws
    flush_all()
    stop_live(ws)
    ws.close()


def client_for(ws: Workspace, budget_ms: float = 10_000.0) -> TestClient:
    """A client of the API's routes over `ws` (a generous budget: a loaded test machine must not change who answers,
    except where a test sets the budget)."""
    return TestClient(Starlette(routes=build_routes(lambda: ws, budget_ms=budget_ms, recheck_s=0.0)))


def numpy_path(ws: Workspace) -> bool:
    """Whether live events of `ws` take the NumPy path (built-in features only: in-memory history, live log)."""
    from fraudlab.api.live import live_plan
    from fraudlab.api.online import supported

    plan = live_plan(ws)
    return not plan.definitions and supported(plan.plan)


@pytest.fixture()
def keyed(api_ws):
    """(client, headers with a valid key, workspace)."""
    key = create_key(api_ws, "tests", admin())
    return client_for(api_ws), {"Authorization": f"Bearer {key}"}, api_ws


def test_score_answers_and_stores_the_transaction(keyed, api_base):
    client, headers, ws = keyed
    body = event(api_base[1].iloc[0]) | {"device_fingerprint": "abc", "note": {"any": "thing"}}
    answer = client.post("/api/v1/score", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["scorer"] == "model" and got["model_id"] == champion(ws).model_id, got["passed_over"]
    assert 0.0 <= got["score"] <= 1.0 and isinstance(got["alert"], bool) and got["latency_ms"] > 0
    assert got["alert"] == (got["score"] >= got["threshold"]) and got["passed_over"] == []
    assert got["reasons"] and all(r["contribution"] > 0 and r["text"] for r in got["reasons"])
    assert got["ignored_fields"] == ["device_fingerprint", "note"]
    assert flush_all()
    tid = body["transaction_id"]
    assert ws.scalar("SELECT count(*) FROM transactions WHERE transaction_id = ?", [tid]) == 1
    assert ws.scalar("SELECT count(*) FROM features WHERE transaction_id = ?", [tid]) == 1
    stored = ws.df("SELECT * FROM scores WHERE transaction_id = ?", [tid]).iloc[0]
    assert stored["scorer"] == "model" and stored["score"] == pytest.approx(got["score"], abs=1e-6)
    assert json.loads(ws.scalar("SELECT extra FROM api_events WHERE transaction_id = ?", [tid])) == \
        {"device_fingerprint": "abc", "note": {"any": "thing"}}
    assert ws.scalar("SELECT card_id FROM transactions WHERE transaction_id = ?", [tid]).startswith("•••• ")
    assert ws.scalar("SELECT who FROM audit WHERE action = 'api_score' ORDER BY audit_id DESC LIMIT 1") == "api:tests"
    assert not is_stale(ws)  # counts still match: nothing to rebuild for a page


def test_an_alert_joins_the_queue_without_a_rebuild(keyed, api_base):
    client, headers, ws = keyed
    body = event(api_base[1].iloc[1]) | {"transaction_id": "live-alert", "amount": 4999.0}
    record = champion(ws)
    with ws.write() as cur:  # an alert threshold every score passes, so this event alerts
        cur.execute("UPDATE models SET metrics = ? WHERE model_id = ?",
                    [json.dumps(record.metrics | {"alert_threshold": 0.0}), record.model_id])
    refresh_cases(ws, force=True)
    cases_before = ws.count("cases")
    got = client.post("/api/v1/score", json=body, headers=headers).json()
    assert flush_all()
    if got["case_id"] is None:  # written after the answer: the stored answer (what a retry gets) names the case
        got = client.post("/api/v1/score", json=body, headers=headers).json()
    assert got["alert"] and got["case_id"]
    assert ws.scalar("SELECT count(*) FROM alerts WHERE alert_id = 'live-alert'") == 1
    case = ws.df("SELECT * FROM cases WHERE case_id = ?", [got["case_id"]]).iloc[0]
    # the answer rounds the score to 6 decimals; the queue holds it whole
    assert case["customer_id"] == body["customer_id"] and case["score"] >= got["score"] - 1e-6
    assert ws.count("cases") in (cases_before, cases_before + 1)
    assert not is_stale(ws), "the queue's fingerprint moved on: no page rebuilds the queue for one event"


def test_a_retry_gets_the_stored_answer_and_adds_nothing(keyed, api_base):
    client, headers, ws = keyed
    body = event(api_base[1].iloc[2])
    first = client.post("/api/v1/score", json=body, headers=headers).json()
    again = client.post("/api/v1/score", json=body | {"amount": 1.0}, headers=headers).json()
    assert again.pop("replayed") is True and again == first
    assert flush_all()
    again = client.post("/api/v1/score", json=body | {"amount": 2.0}, headers=headers).json()
    assert again.pop("replayed") is True and again == first, "the same answer once committed"
    for table in ("transactions", "features", "scores", "api_events"):
        assert ws.scalar(f"SELECT count(*) FROM {table} WHERE transaction_id = ?", [body["transaction_id"]]) == 1


def test_bad_input_gets_clear_4xx_answers(keyed, api_base):
    client, headers, ws = keyed
    good = event(api_base[1].iloc[3])
    rows = ws.count("transactions")

    def post(**kwargs):
        return client.post("/api/v1/score", headers=headers, **kwargs)

    missing = post(json={k: v for k, v in good.items() if k != "amount"})
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "amount"
    bad_time = post(json=good | {"ts": "the day after tomorrow"})
    assert bad_time.status_code == 400 and bad_time.json()["error"]["field"] == "ts"
    assert "not a time" in bad_time.json()["error"]["message"]
    assert post(json=good | {"amount": "twelve"}).json()["error"]["field"] == "amount"
    assert post(json=good | {"amount": -3}).json()["error"]["field"] == "amount"
    assert post(json=good | {"lat": "north"}).json()["error"]["field"] == "lat"
    assert post(json=[good]).status_code == 400
    assert post(content=b"{not json").json()["error"]["code"] == "bad_json"
    big = post(content=json.dumps(good | {"pad": "x" * 70_000}).encode())
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
    streamed = post(content=iter([b'{"pad": "' + b"x" * 40_000, b"x" * 40_000 + b'"}']))  # no Content-Length
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "too_large"
    assert client.get("/api/v1/score", headers=headers).status_code == 405
    batch_id = ws.scalar("SELECT transaction_id FROM transactions LIMIT 1")
    assert post(json=good | {"transaction_id": batch_id}).status_code == 409
    assert ws.count("transactions") == rows, "nothing refused was stored"


def test_keys_are_required_outside_the_demo(keyed, api_base):
    client, headers, ws = keyed
    body = event(api_base[1].iloc[4])
    assert client.post("/api/v1/score", json=body).status_code == 401
    assert client.post("/api/v1/score", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/api/v1/score", json=body, headers=headers).status_code == 200
    revoke_key(ws, "tests", admin())
    body2 = event(api_base[1].iloc[5])
    assert client.post("/api/v1/score", json=body2, headers=headers).status_code == 401
    assert ws.scalar("SELECT count(*) FROM api_keys WHERE key_sha256 LIKE '%' || ? || '%'",
                     [headers["Authorization"].split()[1]]) == 0, "only the hash is stored"


def test_the_demo_sample_needs_no_key_until_one_is_created(ws):
    client = client_for(ws)
    last = ws.df("SELECT * FROM transactions ORDER BY ts DESC LIMIT 1").iloc[0]
    body = event(last.drop(labels=["ingest_id"])) | {"transaction_id": "demo-1", "is_fraud": None}
    answer = client.post("/api/v1/score", json=body)
    assert answer.status_code == 200, answer.text
    assert client.get("/api/v1/health").json()["status"] == "ok"
    create_key(ws, "first-integration", admin())
    assert client.post("/api/v1/score", json=body | {"transaction_id": "demo-2"}).status_code == 401
    assert flush_all()


def test_live_features_equal_a_full_batch_rebuild(keyed, api_base):
    """Every held-out transaction sent in time order: the features the API computed and stored are the ones a
    full rebuild computes for those rows (built-in and user-defined)."""
    client, headers, ws = keyed
    live = api_base[1]
    for _i, row in live.iterrows():
        answer = client.post("/api/v1/score", json=event(row), headers=headers)
        assert answer.status_code == 200, answer.text
    assert flush_all()
    ids = live["transaction_id"].tolist()
    query = "SELECT * FROM features WHERE transaction_id IN (SELECT unnest($ids)) ORDER BY transaction_id"
    served = ws.df(query, {"ids": ids})
    nans = ws.scalar("SELECT count(*) FROM features WHERE transaction_id IN (SELECT unnest($ids)) AND "
                     "(isnan(c_amt_std) OR isnan(c_secs_since_prev) OR isnan(c_amt_mean))", {"ids": ids})
    assert nans == 0, "a missing value is stored as NULL (as the batch build stores it), not as NaN"
    build_features(ws)
    rebuilt = ws.df(query, {"ids": ids})
    assert len(served) == len(rebuilt) == HELD_OUT
    assert ("card_spend_7d" in served) == ("card_spend_7d" in rebuilt)  # the "sql" base has it
    assert served["c_hist_cnt"].gt(0).any() and served["m_cnt_30d"].gt(0).all()
    pd.testing.assert_frame_equal(served[rebuilt.columns], rebuilt, check_dtype=False, check_categorical=False,
                                  rtol=1e-9, atol=1e-9)


def test_a_removed_model_file_falls_back_then_to_rules(keyed, api_base):
    from fraudlab.promotion import make_champion

    client, headers, ws = keyed
    first = champion(ws)
    second = register(ws, train_model(ws))
    make_champion(ws, second, admin(), {}, "test: a second champion")
    assert previous_champion(ws).model_id == first.model_id
    rows = api_base[1]

    def scorer(i: int) -> dict:
        answer = client.post("/api/v1/score", json=event(rows.iloc[i]), headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert scorer(10)["model_id"] == second
    champion(ws).path.unlink()
    got = scorer(11)
    assert got["scorer"] == "fallback" and got["model_id"] == first.model_id and "missing" in got["passed_over"][0]
    first.path.unlink()
    got = scorer(12)
    assert got["scorer"] == "rules" and got["model_id"] is None and len(got["passed_over"]) == 2
    health = client.get("/api/v1/health").json()
    assert health["scorer"] == "rules" and len(health["model_problems"]) == 2


def test_a_model_over_its_budget_passes_the_event_on(api_ws, api_base):
    create_key(api_ws, "tight", admin())
    key = create_key(api_ws, "budget", admin())
    got = client_for(api_ws, budget_ms=1e-6).post("/api/v1/score", json=event(api_base[1].iloc[6]),
                                                  headers={"Authorization": f"Bearer {key}"}).json()
    assert got["scorer"] == "rules" and "over budget" in got["passed_over"][0]
    assert flush_all()
    assert api_ws.scalar("SELECT scorer FROM scores WHERE transaction_id = ?", [got["transaction_id"]]) == "rules"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_real_server_serves_the_ui_and_the_api_in_one_process(app_workspace):
    """`streamlit run app.py` (the README's command) answers the UI's health check and the API over loopback."""
    port = _free_port()
    env = {**os.environ, "FRAUDLAB_WORKSPACE": str(app_workspace), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.address", "127.0.0.1", "--server.headless", "true",
                               "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:  # refused, or a first answer slower than 2 s while the server starts
                time.sleep(0.5)
        health = json.load(urllib.request.urlopen(f"{base}/api/v1/health", timeout=60))
        assert health["status"] == "ok" and health["transactions"] > 0
        body = json.dumps({"transaction_id": "wire-1", "ts": "2030-01-01T10:00:00Z", "amount": 42.0,
                           "customer_id": "C-wire", "merchant_id": "M-wire", "channel": "online"}).encode()
        request = urllib.request.Request(f"{base}/api/v1/score", data=body,
                                         headers={"Content-Type": "application/json"})
        answer = json.load(urllib.request.urlopen(request, timeout=60))
        assert answer["transaction_id"] == "wire-1" and answer["scorer"] in ("model", "fallback", "rules")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/v1/score", data=b'{"ts": "2030-01-01"}',
                                                          headers={"Content-Type": "application/json"}), timeout=60)
        assert refused.value.code == 400
        assert urllib.request.urlopen(f"{base}/", timeout=10).status == 200  # the UI's page is still served
    finally:
        server.terminate()
        server.wait(timeout=30)
    ws = Workspace(app_workspace)  # the server's writes landed in the one workspace file
    try:
        assert ws.scalar("SELECT count(*) FROM transactions WHERE transaction_id = 'wire-1'") == 1
    finally:
        ws.close()


def test_concurrent_events_are_decided_together_and_stored_once(keyed, api_base):
    """Requests arriving while others are decided wait and are decided as one batch; a repeated id in flight gets
    the first copy's answer; every event is stored exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    client, headers, ws = keyed
    bodies = [event(row) for _i, row in api_base[1].iloc[:24].iterrows()]
    bodies += bodies[:4]  # retries sent while the originals may still be in flight
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda b: client.post("/api/v1/score", json=b, headers=headers), bodies))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200][:2]
    got = [a.json() for a in answers]
    assert flush_all()
    assert max(g.get("batch", 1) for g in got) > 1, "some events were decided together"
    for first, retry in zip(got[:4], got[24:]):
        assert retry.get("replayed") or first.get("replayed")
        assert {k: v for k, v in retry.items() if k != "replayed"} == {k: v for k, v in first.items()
                                                                        if k != "replayed"}
    counts = ws.df("SELECT transaction_id, count(*) AS n FROM scores WHERE transaction_id IN (SELECT unnest($i)) "
                   "GROUP BY 1", {"i": [b["transaction_id"] for b in bodies]})
    assert len(counts) == 24 and counts["n"].eq(1).all()
    assert ws.count("transactions") == ws.count("features") == ws.count("scores")


def test_online_history_reaches_the_rows_the_query_path_reads(api_ws, api_base, monkeypatch):
    """The in-memory history hands the feature SQL the very rows `_history_sql` selects, before and after live rows
    were appended (and after the live tail was merged into the warmed table)."""
    from fraudlab.api import history
    from fraudlab.api.events import parse_event
    from fraudlab.api.live import _history_sql, live_plan, typed_rows

    monkeypatch.setattr(history, "TAIL_ROWS", 3)
    plan = live_plan(api_ws)
    cur = api_ws.cursor()
    types = dict(api_ws.df("SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_name = 'transactions' ORDER BY ordinal_position").itertuples(index=False))
    cache = history.HistoryCache(tuple(plan.spans))
    cache.warm(cur)
    warmed = cache.table.num_rows
    rows = [parse_event(event(r), types)[0] for _i, r in api_base[1].iterrows()]
    for i in range(0, 12, 2):
        batch = rows[i:i + 2]
        sql, params = _history_sql(plan, batch)
        cur.register("_live_in", typed_rows(cur, batch, types))
        wanted = set(cur.sql(sql.rsplit(" UNION ALL BY NAME", 1)[0], params=params).df()["transaction_id"])
        cur.unregister("_live_in")
        got = cache.reach(batch, plan.spans)
        assert set(got["transaction_id"].to_pylist()) == wanted and got.num_rows == len(wanted) > 0
        new = typed_rows(cur, batch, types)
        cur.register("_new", new)
        cur.execute("INSERT INTO transactions BY NAME SELECT * FROM _new")
        cur.unregister("_new")
        cache.append(new)
        assert cache.fresh(cur)
    assert cache.table.num_rows > warmed, "the live tail was merged into the warmed table"
    assert cache.rows == api_ws.count("transactions")
    cur.close()


def test_events_move_the_pages_cache_key_for_alerts_and_at_most_every_few_seconds_otherwise(keyed, api_base,
                                                                                            monkeypatch):
    from fraudlab.api import service

    assert service.PAGES_BEHIND_S <= 10
    monkeypatch.setattr(service, "PAGES_BEHIND_S", 3600.0)  # a slow machine must not reach the interval
    client, headers, ws = keyed
    answers, versions = [], [ws.version]
    for _, row in api_base[1].iloc[:12].iterrows():
        answers.append(client.post("/api/v1/score", json=event(row), headers=headers).json())
        assert flush_all()
        versions.append(ws.version)
    moved = [b > a for a, b in zip(versions, versions[1:])]
    assert moved[0]  # the first write of a service moves it: the pages' counts catch up at once
    quiet = [m for m, got in list(zip(moved, answers))[1:] if not got["alert"]]
    assert quiet and not any(quiet), "events that do not alert within PAGES_BEHIND_S leave the cache key alone"
    assert all(m for m, got in zip(moved, answers) if got["alert"])


def test_the_live_model_matrix_gives_what_prepare_gives(api_ws):
    """The live path's float matrix (categorical codes of the trained categories) scores and explains exactly as
    the pandas frame `prepare` builds, unknown categories and missing values included; its tabled TreeSHAP too."""
    import xgboost as xgb

    from fraudlab import treeshap
    from fraudlab.api.predict import model_array, model_matrix
    from fraudlab.features import load_frame
    from fraudlab.registry import load_booster, prepare

    record = champion(api_ws)
    frame = load_frame(api_ws).tail(500).reset_index(drop=True)
    cat = next(iter(record.categories))
    frame[cat] = frame[cat].astype(object)
    frame.loc[:5, cat] = "never-seen"
    frame.loc[6:9, cat] = None
    frame.loc[10:15, "amount"] = np.nan
    booster = load_booster(record)
    old = xgb.DMatrix(prepare(frame, record), enable_categorical=True)
    new = model_matrix(frame, len(frame), record, 1)
    assert np.array_equal(booster.predict(old), booster.predict(new))
    assert np.array_equal(booster.predict(old, pred_contribs=True), booster.predict(new, pred_contribs=True))
    expected = booster.predict(new, pred_contribs=True)[:, :-1]  # the tabled TreeSHAP the live path uses: the same
    assert treeshap.tables_of(booster) is not None
    tabled = treeshap.contributions(booster, model_array(frame, len(frame), record))
    np.testing.assert_allclose(tabled, expected, rtol=1e-4, atol=2e-5 * max(1.0, np.abs(expected).max()))


def test_the_one_thread_copy_predicts_the_same_numbers_and_leaves_the_model_alone(api_ws):
    """The live path predicts on a one-thread copy of each model (no OpenMP team for a few rows): the same scores,
    exactly; the model keeps its threads for TreeSHAP, and the copy is made once."""
    import json

    from fraudlab.api.predict import model_matrix, one_thread
    from fraudlab.api.service import MODEL_THREADS
    from fraudlab.features import load_frame
    from fraudlab.registry import load_booster

    record = champion(api_ws)
    booster = load_booster(record)
    booster.set_param({"nthread": MODEL_THREADS})
    matrix = model_matrix(load_frame(api_ws).tail(64).reset_index(drop=True), 64, record, 1)
    twin = one_thread(booster)
    assert twin is one_thread(booster) and twin is not booster
    assert np.array_equal(twin.predict(matrix), booster.predict(matrix))
    threads = [json.loads(b.save_config())["learner"]["generic_param"]["nthread"] for b in (twin, booster)]
    assert threads == ["1", str(MODEL_THREADS)]


def test_answered_events_a_crash_kept_from_duckdb_are_replayed_from_the_live_log(keyed, api_base, monkeypatch):
    """Answers go out once the event is in the fsync'ed live log: events never committed (the process died) are
    stored by the next LiveScoring on the workspace, exactly once, with the answers a retry gets."""
    from fraudlab.api.service import LiveScoring
    from fraudlab.api.writer import WRITERS, LiveWriter, log_path, logged

    client, headers, ws = keyed
    monkeypatch.setattr(LiveWriter, "commit", lambda self: False)  # the writer never gets to DuckDB: a crash
    rows = ws.count("transactions")
    bodies = [event(row) for _i, row in api_base[1].iloc[20:23].iterrows()]
    answers = [client.post("/api/v1/score", json=b, headers=headers).json() for b in bodies]
    if not logged(log_path(ws.path)):  # the SQL path (a user-defined feature) stored them before answering
        assert ws.count("transactions") == rows + 3
        return
    assert ws.count("transactions") == rows and len(logged(log_path(ws.path))) == 3
    for writer in list(WRITERS):  # the crashed process's writer is gone with it
        if writer.path == log_path(ws.path):
            writer._pending.clear()
            writer.close()
    monkeypatch.undo()
    restarted = LiveScoring(ws)
    restarted.writer()
    assert ws.count("transactions") == ws.count("scores") == ws.count("features") == rows + 3
    assert not logged(log_path(ws.path))
    for body, answer in zip(bodies, answers):
        stored = json.loads(ws.scalar("SELECT answer FROM api_events WHERE transaction_id = ?",
                                      [body["transaction_id"]]))
        assert stored["score"] == answer["score"] and stored["scorer"] == answer["scorer"]
    restarted.close()


def test_live_models_predict_on_the_scoring_threads_only(api_ws):
    """The live chain's boosters run on MODEL_THREADS threads (a batch's exact TreeSHAP split by row), not on
    XGBoost's default of every core (an OpenMP team spinning on cores the server needs)."""
    from fraudlab.api import LiveScoring
    from fraudlab.api.service import MODEL_THREADS

    steps = LiveScoring(api_ws).models().scorer.steps
    assert MODEL_THREADS <= 2
    assert steps and all(json.loads(b.save_config())["learner"]["generic_param"]["nthread"] == str(MODEL_THREADS)
                         for _s, _r, b in steps if b is not None)


def test_changes_are_rechecked_by_the_refresher_thread_not_on_the_scoring_path(keyed, api_base, monkeypatch):
    """With a recheck interval, a removed model file is noticed within about that interval, and the registry and
    files are read by the refresher thread only once the first event was decided (no batch waits for them)."""
    import threading

    from fraudlab.api import service as service_module

    _client, headers, ws = keyed
    client = TestClient(Starlette(routes=build_routes(lambda: ws, budget_ms=10_000.0, recheck_s=0.2)))
    threads = []
    real = service_module.model_files
    monkeypatch.setattr(service_module, "model_files", lambda w: threads.append(threading.current_thread().name)
                        or real(w))
    rows = api_base[1]
    first = client.post("/api/v1/score", json=event(rows.iloc[20]), headers=headers).json()
    assert first["scorer"] == "model"
    champion(ws).path.unlink()
    deadline, got, i = time.monotonic() + 10, first, 21
    while got["scorer"] == "model" and time.monotonic() < deadline and i < len(rows):
        time.sleep(0.3)
        got = client.post("/api/v1/score", json=event(rows.iloc[i]), headers=headers).json()
        i += 1
    assert got["scorer"] in ("fallback", "rules"), got
    assert len(threads) >= 2 and set(threads[1:]) == {"fraudlab-live-refresher"}, threads


def test_the_history_warms_in_the_background_and_events_posted_meanwhile_wait_for_it(keyed, api_base, tmp_path,
                                                                                      monkeypatch):
    """The scorer starts warming its history when it is made (a server's start): the status says "warming" meanwhile,
    an event posted then waits for the warm, and its answer is the one a scorer warmed before it gives."""
    import threading

    from fraudlab.api import LiveScoring
    from fraudlab.api.online import OnlineHistory

    client, headers, ws = keyed
    if not numpy_path(ws):
        pytest.skip("user-defined features: the SQL path keeps no in-memory history")
    reference_ws = Workspace(copy_workspace(api_base[0], tmp_path / "reference.duckdb"))
    gate, real_warm = threading.Event(), OnlineHistory.warm
    monkeypatch.setattr(OnlineHistory, "warm", lambda self, cur: gate.wait(60) and real_warm(self, cur))
    health = client.get("/api/v1/health").json()  # makes the scorer: its warm starts (held at the gate)
    assert health["status"] == "ok" and health["history"] == "warming" and health["warming_s"] >= 0
    bodies = [event(row) for _i, row in api_base[1].iloc[:3].iterrows()]
    stored, answers = ws.count("transactions"), []
    poster = threading.Thread(target=lambda: answers.extend(
        client.post("/api/v1/score", json=b, headers=headers).json() for b in bodies))
    poster.start()
    poster.join(1.0)
    assert poster.is_alive() and not answers, "an event posted during the warm waits for it"
    gate.set()
    poster.join(60)
    health = client.get("/api/v1/health").json()
    assert health["history"] == "ready" and health["history_rows"] == health["transactions"] == stored + 3
    reference = LiveScoring(reference_ws, budget_ms=10_000.0, recheck_s=0.0)  # warmed by its first event
    try:
        expected = [reference.score(b) for b in bodies]
    finally:
        reference.close()
        reference_ws.close()
    same = ("transaction_id", "score", "alert", "scorer", "model_id", "reasons", "threshold")
    assert [{k: a[k] for k in same} for a in answers] == [{k: e[k] for k in same} for e in expected]


def test_the_route_answers_only_once_the_syncer_fsynced_the_log_holding_the_event(keyed, api_base, monkeypatch):
    """No thread waits per request: the decider hands the decided event to the writer's syncer thread, which fsyncs
    the live log, and only then is the answer sent (a crash after it loses nothing)."""
    import threading

    from fraudlab.api import writer as writer_module

    client, headers, ws = keyed
    synced: list[str] = []
    real = writer_module.os.fsync
    monkeypatch.setattr(writer_module.os, "fsync",
                        lambda fd: synced.append(threading.current_thread().name) or real(fd))
    if not numpy_path(ws):
        pytest.skip("user-defined features: the SQL path stores the event before it answers (no live log)")
    answer = client.post("/api/v1/score", json=event(api_base[1].iloc[5]), headers=headers)
    assert answer.status_code == 200, answer.text
    assert synced and synced[0] == "fraudlab-live-syncer"  # before the answer (a commit's fsync comes later)
