"""The pipeline: first start and refresh: the sample loads, a model is trained and every row scored; new data gets scored too."""
from __future__ import annotations

import numpy as np

from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.pipeline import is_stale, refresh
from fraudlab.registry import champion
from fraudlab.workspace import Workspace


def test_ready_workspace_has_features_a_champion_and_scores(app_workspace):
    ws = Workspace(app_workspace)
    assert not is_stale(ws)
    assert champion(ws) is not None
    assert ws.count("scores") == ws.count("transactions") == 100_000
    assert ws.scalar("SELECT count(*) FROM scores WHERE reasons IS NOT NULL") == 5_000
    ws.close()


def test_new_data_gets_features_and_scores_on_the_next_refresh(app_workspace):
    ws = Workspace(app_workspace)
    extra = simulate(rows=2_000, seed=99, days=5, start="2026-04-01").transactions
    extra["transaction_id"] = "NEW" + extra["transaction_id"]
    ingest_table(ws, extra, source="april")
    assert is_stale(ws)
    steps = refresh(ws)
    assert any("features" in s for s in steps) and any("scored" in s for s in steps)
    assert ws.count("scores") == ws.count("transactions") == 102_000
    assert not is_stale(ws)
    ws.close()


def test_unlabelled_data_does_not_retrain_on_every_page(empty_ws):
    tx = simulate(rows=2_000, seed=5, days=10).transactions.drop(columns=["is_fraud", "label_ts"])
    tx["amount"] = np.round(tx["amount"], 2)
    ingest_table(empty_ws, tx, source="no labels")
    steps = refresh(empty_ws)
    assert any("no model yet" in s for s in steps)
    assert champion(empty_ws) is None
    assert not is_stale(empty_ws)
