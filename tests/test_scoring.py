"""Scoring: batch scores with stored explanations, the fallback chain, latency, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudlab.cli import main
from fraudlab.model import train_model
from fraudlab.registry import champion, promote, register
from fraudlab.scoring import Scorer, score_case, score_window, stored_reasons
from fraudlab.workspace import Workspace


def test_batch_scores_every_row_once_and_explains_the_top(ws):
    report = score_window(ws, explain_top=300)
    assert report.rows == ws.count("transactions") == ws.count("scores")
    assert ws.scalar("SELECT count(DISTINCT transaction_id) FROM scores") == report.rows
    assert ws.scalar("SELECT count(*) FROM scores WHERE reasons IS NOT NULL") == 300
    top = ws.scalar("SELECT transaction_id FROM scores ORDER BY score DESC LIMIT 1")
    reasons = stored_reasons(ws, top)
    assert len(reasons) == 5 and reasons["text"].str.len().gt(5).all()
    assert report.metrics["pr_auc"] > 0.3


def test_single_case_matches_batch_score_and_is_fast(ws):
    tid = ws.scalar("SELECT transaction_id FROM scores ORDER BY score DESC LIMIT 1")
    batch = ws.scalar("SELECT score FROM scores WHERE transaction_id = ?", [tid])
    scorer = Scorer(ws)
    case = scorer.score_case(tid)
    assert case.scorer == "model" and case.model_id == champion(ws).model_id
    assert case.score == pytest.approx(batch, abs=1e-6)
    assert case.contributions["contribution"].sum() + case.base_value == pytest.approx(
        __import__("math").log(batch / (1 - batch)), abs=1e-3)
    assert len(case.reasons) == 5 and case.latency_ms < 1000


def test_broken_champion_falls_back_to_previous_then_to_rules(ws):
    first = champion(ws)
    second = register(ws, train_model(ws))
    assert promote(ws, second).promoted
    tid = ws.scalar("SELECT transaction_id FROM scores ORDER BY score DESC LIMIT 1")
    Path(champion(ws).path).write_text("{ not a model")
    case = score_case(ws, tid)
    assert case.scorer == "fallback" and case.model_id == first.model_id
    assert any("failed" in a for a in case.attempts)
    Path(first.path).unlink()
    case = score_case(ws, tid)
    assert case.scorer == "rules" and 0 <= case.score <= 1 and case.reasons


def test_over_budget_model_passes_the_case_on(ws):
    tid = ws.scalar("SELECT transaction_id FROM scores ORDER BY score DESC LIMIT 1")
    case = Scorer(ws, budget_ms=0.0).score_case(tid)
    assert case.scorer == "rules" and "over budget" in case.attempts[0]


def test_cli_trains_and_scores(app_workspace, capsys):
    assert main(["train"]) == 0
    assert main(["score", "--explain-top", "100"]) == 0
    out = capsys.readouterr().out
    assert "trained in" in out and "scored" in out and "PR-AUC" in out
    ws = Workspace(app_workspace)
    assert ws.scalar("SELECT count(*) FROM models") == 2
    assert json.loads(ws.df("SELECT metrics FROM models").iloc[0, 0])["pr_auc"] > 0
    ws.close()
