"""The case queue after an append (cases.partial, cases.entities): alerts, cases, customer histories and entity counts
updated from the rows scored since the last build equal a whole rebuild, whatever the order and shape of the loads;
each part falls back to its whole rebuild when its marks or totals do not add up; analysts' work is kept."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from people import admin, analyst, manager
from starlette.applications import Starlette
from starlette.testclient import TestClient
from test_api import event
from test_incremental import random_batches

from fraudlab import cases
from fraudlab.api import build_routes, create_key
from fraudlab.api.writer import WRITERS, flush_all
from fraudlab.cases.build import last_build
from fraudlab.features import build_features
from fraudlab.generate import simulate
from fraudlab.incremental import update_features
from fraudlab.ingest import ingest_table
from fraudlab.model import train_model
from fraudlab.pipeline import incremental_refresh
from fraudlab.registry import register
from fraudlab.scoring import score_window
from fraudlab.workspace import Workspace

TABLES = {"alerts": "SELECT * FROM alerts ORDER BY alert_id",
          "cases": "SELECT * FROM cases ORDER BY case_id",
          "case_history": "SELECT * FROM case_history ORDER BY transaction_id",
          "case_entities": "SELECT * FROM case_entities ORDER BY kind, value",
          "case_entity_pairs": "SELECT * FROM case_entity_pairs ORDER BY kind, value, customer_id"}
PARTIAL = {"alerts": "partial", "history": "partial", "entities": "partial"}


def history_ws(tmp_path, tx: pd.DataFrame, threshold_share: float = 0.03) -> Workspace:
    """A workspace with `tx` loaded, features, a small champion, every row scored and the queue built whole."""
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, tx, source="history")
    build_features(ws)
    register(ws, train_model(ws, rounds=20, refit=False))
    score_window(ws, explain_top=0)
    cases.refresh_cases(ws)
    return ws


def snapshot(ws: Workspace) -> dict[str, pd.DataFrame]:
    return {name: ws.df(sql) for name, sql in TABLES.items() if ws.has_table(name)}


def assert_equals_whole_rebuild(ws: Workspace, threshold: float | None = None) -> None:
    """Every queue table as updated equals the whole rebuild of the same rows (which the call then leaves behind)."""
    partial = snapshot(ws)
    cases.refresh_cases(ws, threshold=threshold, force=True)
    assert last_build(ws)["alerts"] == "whole"
    whole = snapshot(ws)
    assert partial.keys() == whole.keys()
    for name, frame in whole.items():
        pd.testing.assert_frame_equal(partial[name], frame, check_exact=False, rtol=1e-9, atol=1e-9, obj=name)


def load(ws: Workspace, frame: pd.DataFrame, source: str) -> list[str]:
    ingest_table(ws, frame, source=source)
    return incremental_refresh(ws)


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("shuffled", [False, True])
def test_appends_in_and_out_of_order_leave_the_queue_of_a_whole_rebuild(tmp_path, seed, shuffled):
    tx = simulate(rows=10_000, seed=seed, days=60, fraud_rate=0.03).transactions
    rng = np.random.default_rng(seed)
    first, *rest = random_batches(tx, rng)  # later slices of time, each with scattered older rows (late events)
    if shuffled:  # the history stays first, the rest arrive in any order
        rest = [rest[i] for i in rng.permutation(len(rest))]
    ws = history_ws(tmp_path, first)
    for i, frame in enumerate(rest):
        steps = load(ws, frame, f"batch {i}")
        assert "lookups updated" in steps[-1] and last_build(ws) == PARTIAL, (steps, last_build(ws))
        assert not cases.cases_stale(ws)
    assert ws.count("case_entity_pairs") > 0 and ws.count("alerts") > 0
    assert_equals_whole_rebuild(ws)
    ws.close()


def test_rows_without_device_ip_or_card_columns_and_without_customers(tmp_path):
    tx = simulate(rows=10_000, seed=11, days=60, fraud_rate=0.03).transactions.sort_values("ts")
    tx = tx.drop(columns=["device_id", "ip", "card_id"])
    tx.loc[tx.sample(frac=0.1, random_state=1).index, "customer_id"] = None  # some rows name no customer
    ws = history_ws(tmp_path, tx.iloc[:8_000])
    load(ws, tx.iloc[8_000:9_000], "next")
    load(ws, pd.concat([tx.iloc[9_000:], tx.iloc[7_000:7_100].assign(
        transaction_id=lambda f: f["transaction_id"] + "-late")]), "with late rows")
    assert last_build(ws) == PARTIAL
    assert set(ws.df("SELECT DISTINCT kind FROM case_entities")["kind"]) == {"email"}
    assert_equals_whole_rebuild(ws)
    ws.close()


def test_a_loads_entity_counts_are_added_beside_its_features_and_the_queue_refresh_finds_them_done(tmp_path):
    tx = simulate(rows=10_000, seed=12, days=60, fraud_rate=0.03).transactions.sort_values("ts")
    ws = history_ws(tmp_path, tx.iloc[:9_000])
    counted = ws.scalar("SELECT sum(transactions) FROM case_entities")
    loaded = ingest_table(ws, tx.iloc[9_000:], source="next")
    update = update_features(ws, beside=cases.count_loaded)
    assert ws.scalar("SELECT value FROM case_meta WHERE key = 'entities_cover_ingest'") == str(loaded.ingest_id)
    assert ws.scalar("SELECT sum(transactions) FROM case_entities") > counted
    score_window(ws, start=update.first_ts, explain_top=0, rows=update.rows)
    cases.refresh_cases(ws, changed_since=update.first_ts)
    assert last_build(ws) == PARTIAL
    assert_equals_whole_rebuild(ws)
    ws.close()


def test_analyst_decisions_between_loads_are_kept_and_their_values_recounted(tmp_path):
    tx = simulate(rows=10_000, seed=11, days=60, fraud_rate=0.03).transactions.sort_values("ts")
    ws = history_ws(tmp_path, tx.iloc[:9_000])
    top = ws.df("SELECT case_id FROM cases ORDER BY score DESC, case_id LIMIT 3")["case_id"].tolist()
    cases.decide(ws, top[0], "legitimate", analyst(), note="customer confirmed",
                 close_reason="legitimate: customer confirmed")
    cases.decide(ws, top[1], "fraud", analyst(), note="card testing", close_reason="card testing")
    plan = cases.assign_round_robin(ws, ["ann"], cap=1, who=manager())
    decisions = ws.df("SELECT * FROM decisions ORDER BY decision_id")
    load(ws, tx.iloc[9_000:9_500], "next")
    assert last_build(ws) == PARTIAL
    pd.testing.assert_frame_equal(decisions, ws.df("SELECT * FROM decisions ORDER BY decision_id"))
    states = cases.queue(ws, limit=100_000)[0].set_index("case_id")
    assert states.loc[top[0], "status"] == "legitimate" and states.loc[top[1], "status"] == "fraud"
    assert states.loc[plan["case_id"].iloc[0], "assignee"] == "ann"
    assert_equals_whole_rebuild(ws)
    ws.close()


def test_live_events_then_a_load_recount_the_live_rows_values(tmp_path):
    tx = simulate(rows=10_000, seed=11, days=60, fraud_rate=0.03).transactions.sort_values("ts")
    ws = history_ws(tmp_path, tx.iloc[:9_000])
    client = TestClient(Starlette(routes=build_routes(lambda: ws, budget_ms=10_000.0, recheck_s=0.0)))
    headers = {"Authorization": f"Bearer {create_key(ws, 'checkout', admin())}"}
    for _, row in tx.iloc[9_000:9_030].iterrows():
        answer = client.post("/api/v1/score", json=event(row), headers=headers)
        assert answer.status_code == 200, answer.text
    assert flush_all()
    assert ws.scalar("SELECT count(*) FROM transactions WHERE ingest_id IS NULL") == 30
    load(ws, tx.iloc[9_030:], "after the live events")
    assert last_build(ws) == PARTIAL
    assert_equals_whole_rebuild(ws)
    for writer in list(WRITERS):  # stopped before the file closes, so no later test meets a writer of a closed file
        writer.close()
    ws.close()


def test_each_part_falls_back_to_its_whole_rebuild_when_its_marks_do_not_add_up(tmp_path):
    tx = simulate(rows=10_000, seed=11, days=60, fraud_rate=0.03).transactions.sort_values("ts")
    ws = history_ws(tmp_path, tx.iloc[:9_000])
    # unlabelled rows carrying an older load id than the counts' mark: only the per-kind totals check can notice
    loaded = ingest_table(ws, tx.iloc[9_000:9_200].assign(is_fraud=None), source="sneaked")
    with ws.write(bump=False) as cur:
        cur.execute("UPDATE transactions SET ingest_id = 0 WHERE ingest_id = ?", [loaded.ingest_id])
    incremental_refresh(ws)
    assert last_build(ws) == {"alerts": "partial", "history": "partial", "entities": "whole"}
    assert_equals_whole_rebuild(ws)
    # label rows deleted since the last count: the label marks no longer add up
    with ws.write(bump=False) as cur:
        cur.execute("DELETE FROM labels WHERE transaction_id IN (SELECT transaction_id FROM labels "
                    "WHERE is_fraud LIMIT 5)")
    load(ws, tx.iloc[9_200:9_400], "next")
    assert last_build(ws)["entities"] == "whole"
    assert_equals_whole_rebuild(ws)
    # a history row lost: its count disagrees with the transactions; a new threshold: the alerts are rebuilt whole
    with ws.write(bump=False) as cur:
        cur.execute("DELETE FROM case_history WHERE transaction_id = (SELECT min(transaction_id) FROM case_history)")
    ingest_table(ws, tx.iloc[9_400:9_700], source="next")
    from fraudlab.incremental import update_features
    upd = update_features(ws)
    score_window(ws, start=upd.first_ts, explain_top=0, rows=upd.rows)
    cases.refresh_cases(ws, threshold=0.5, changed_since=upd.first_ts)
    assert last_build(ws) == {"alerts": "whole", "history": "whole", "entities": "partial"}
    assert_equals_whole_rebuild(ws, threshold=0.5)
    # the caller's time later than some rescored rows: they are found anyway
    ingest_table(ws, tx.iloc[9_700:9_850], source="late caller")
    upd = update_features(ws)
    score_window(ws, start=upd.first_ts, explain_top=0, rows=upd.rows)
    cases.refresh_cases(ws, threshold=0.5, changed_since=upd.first_ts + pd.Timedelta(days=3))
    assert last_build(ws) == PARTIAL
    assert_equals_whole_rebuild(ws, threshold=0.5)
    # scores cleared, then only the new rows scored: fewer scores than at the build, everything is rebuilt whole
    ingest_table(ws, tx.iloc[9_850:], source="last")
    upd = update_features(ws)
    with ws.write(bump=False) as cur:
        cur.execute("DELETE FROM scores")
    score_window(ws, start=upd.first_ts, explain_top=0)
    cases.refresh_cases(ws, threshold=0.5, changed_since=upd.first_ts)
    assert last_build(ws) == {"alerts": "whole", "history": "whole", "entities": "whole"}
    assert_equals_whole_rebuild(ws, threshold=0.5)
    ws.close()


def test_a_queue_built_before_the_marks_is_rebuilt_whole_then_updated(tmp_path):
    tx = simulate(rows=10_000, seed=11, days=60, fraud_rate=0.03).transactions.sort_values("ts")
    ws = history_ws(tmp_path, tx.iloc[:9_000])
    with ws.write(bump=False) as cur:  # a workspace whose queue an older fraudlab built
        cur.execute("DELETE FROM case_meta WHERE key IN ('scores_mark', 'queue_basis', 'entities_labels')")
        cur.execute("DROP TABLE case_entity_pairs")
    load(ws, tx.iloc[9_000:9_500], "first after the upgrade")
    assert last_build(ws) == {"alerts": "whole", "history": "whole", "entities": "whole"}
    load(ws, tx.iloc[9_500:], "second")
    assert last_build(ws) == PARTIAL
    assert_equals_whole_rebuild(ws)
    ws.close()
