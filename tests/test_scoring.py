"""Scoring: batch scores with stored explanations, the fallback chain, latency, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from people import admin

from fraudlab.cli import main
from fraudlab.errors import ModelError
from fraudlab.model import train_model
from fraudlab.promotion import promote
from fraudlab.registry import champion, register
from fraudlab.scoring import Scorer, recent_fallbacks, score_case, score_window, stored_reasons
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
    assert promote(ws, second, admin()).promoted
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


def edit_leaf_values(path: Path) -> None:
    """Rewrite a booster JSON with every leaf value of the first tree raised: still a valid, loadable model."""
    model = json.loads(path.read_text())
    tree = model["learner"]["gradient_booster"]["model"]["trees"][0]
    tree["split_conditions"] = [v + 0.5 if left == -1 else v
                                for v, left in zip(tree["split_conditions"], tree["left_children"])]
    tree["base_weights"] = [w + 0.5 for w in tree["base_weights"]]
    path.write_text(json.dumps(model))


DAMAGE = {
    "corrupt": lambda path: path.write_text("{ not a model"),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]),
    "deleted": lambda path: path.unlink(),
    "leaf values changed": edit_leaf_values,
}


def assert_every_row_scored_by(ws, report, scorer: str) -> None:
    assert report.scorer == scorer and report.rows == ws.count("transactions")
    stored = ws.df("SELECT scorer, count(*) AS n, count(DISTINCT transaction_id) AS ids FROM scores GROUP BY 1")
    assert stored["scorer"].tolist() == [scorer] and stored["n"].iloc[0] == stored["ids"].iloc[0] == report.rows


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_only_champion_still_scores_every_row_with_rules(ws, damage):
    record = champion(ws)
    DAMAGE[damage](Path(record.path))
    report = score_window(ws, explain_top=50)
    assert_every_row_scored_by(ws, report, "rules")
    assert report.model_id == "rules" and record.model_id in report.fallback_reasons[0]
    assert ws.scalar("SELECT count(*) FROM scores WHERE model_id IS NOT NULL") == 0
    audit = ws.audit_log()
    fallback = audit[audit["action"] == "scoring_fallback"]
    assert len(fallback) == 1 and record.model_id in json.loads(fallback["details"].iloc[0])["reason"]
    shown = recent_fallbacks(ws)  # what the Models page shows, with the way to fix it
    assert len(shown) == 1 and shown["scorer"].iloc[0] == "rules" and record.model_id in shown["reason"].iloc[0]
    if damage == "leaf values changed":
        assert "refused as tampered" in report.fallback_reasons[0]
    with pytest.raises(ModelError):  # asked for by name, a damaged model is refused, not replaced
        score_window(ws, model_id=record.model_id)


def test_tampered_champion_falls_back_to_the_previous_champion_in_batch(ws):
    first = champion(ws)
    second = register(ws, train_model(ws))
    assert promote(ws, second, admin()).promoted
    edit_leaf_values(Path(champion(ws).path))
    report = score_window(ws, explain_top=50)
    assert_every_row_scored_by(ws, report, "fallback")
    assert report.model_id == first.model_id and "refused as tampered" in report.fallback_reasons[0]
    assert ws.scalar("SELECT DISTINCT model_id FROM scores") == first.model_id
    assert ws.scalar("SELECT count(*) FROM scores WHERE reasons IS NOT NULL") == 50


def test_registry_features_that_do_not_match_the_features_table_fall_back_with_a_clear_error(ws):
    record = champion(ws)
    names = list(record.features[:-1]) + ["no_such_feature"]
    with ws.write() as cur:
        cur.execute("UPDATE models SET features = ? WHERE model_id = ?",
                    [json.dumps({"names": names, "categories": record.categories}), record.model_id])
    report = score_window(ws, explain_top=10)
    assert_every_row_scored_by(ws, report, "rules")
    assert "no_such_feature" in report.fallback_reasons[0] and "rebuild features or retrain" in report.fallback_reasons[0]
    with ws.write() as cur:  # the features exist but the file was trained on others
        cur.execute("UPDATE models SET features = ? WHERE model_id = ?",
                    [json.dumps({"names": list(record.features[:-1]), "categories": record.categories}),
                     record.model_id])
    with pytest.raises(ModelError, match="retrain"):
        score_window(ws, model_id=record.model_id)
    tid = ws.scalar("SELECT transaction_id FROM scores LIMIT 1")
    assert score_case(ws, tid).scorer == "rules"


def test_rules_alert_only_when_a_rule_fires(ws):
    from fraudlab.model import decision_threshold
    from fraudlab.rules import score_rules

    frame = ws.df("SELECT * FROM features")
    result = score_rules(frame)
    fired = [bool(names) for names in result.fired]
    alerts = (result.score >= decision_threshold(ws)).tolist()
    assert alerts == fired and any(fired) and not all(fired)


def test_rescoring_handed_rows_replaces_exactly_theirs_with_the_dmatrix_scores(ws):
    import numpy as np
    import xgboost as xgb

    from fraudlab.features import load_frame
    from fraudlab.registry import load_booster, prepare

    before = ws.df("SELECT transaction_id, score, scored_at FROM scores ORDER BY transaction_id")
    # far-apart ids: the delete's id range spans nearly every score, and those between must stay
    ids = list(before["transaction_id"].iloc[[0, len(before) // 2, len(before) - 1]])
    rows = ws.arrow("SELECT f.*, t.ts FROM features f JOIN transactions t USING (transaction_id) "
                    "WHERE transaction_id IN (SELECT unnest(?))", [ids])
    assert score_window(ws, rows=rows, explain_top=0).rows == 3
    after = ws.df("SELECT transaction_id, score, scored_at FROM scores ORDER BY transaction_id")
    assert len(after) == len(before) == after["transaction_id"].nunique()
    assert set(after.loc[after["scored_at"] != before["scored_at"], "transaction_id"]) == set(ids)
    record = champion(ws)
    frame = load_frame(ws, where="f.transaction_id IN (SELECT unnest($ids))", params={"ids": ids},
                       columns=list(record.features))
    exact = load_booster(record).predict(xgb.DMatrix(prepare(frame, record), enable_categorical=True))
    stored = after.set_index("transaction_id").loc[frame["transaction_id"], "score"].to_numpy()
    assert np.array_equal(stored, exact.astype(np.float64))  # inplace prediction: the very same scores


def test_model_matrix_scores_equal_the_dataframe_scores_with_unseen_and_missing_values(ws):
    import numpy as np
    import xgboost as xgb

    from fraudlab.features import load_frame
    from fraudlab.registry import load_booster, model_matrix, prepare

    record = champion(ws)
    frame = load_frame(ws, columns=list(record.features)).head(300)
    cat = next(iter(record.categories))
    frame[cat] = frame[cat].cat.add_categories(["never seen"])
    frame.loc[frame.index[:20], cat] = "never seen"
    frame.loc[frame.index[20:40], cat] = None
    numeric = next(c for c in record.features if c not in record.categories)
    frame.loc[frame.index[40:60], numeric] = np.nan
    booster = load_booster(record)
    expected = booster.predict(xgb.DMatrix(prepare(frame, record), enable_categorical=True))
    assert np.array_equal(booster.inplace_predict(model_matrix(frame, record), validate_features=False), expected)
    assert np.isnan(model_matrix(frame, record)[:40, list(record.features).index(cat)]).all()


def test_scores_predicted_ahead_are_the_windows_and_a_stale_ahead_is_not_used(ws):
    from fraudlab.batch_predict import Ahead

    rows = ws.arrow("SELECT f.*, t.ts FROM features f JOIN transactions t USING (transaction_id) "
                    "ORDER BY t.ts DESC LIMIT 400")
    stored = "SELECT transaction_id, model_id, score, reasons FROM scores WHERE transaction_id IN " \
             "(SELECT unnest(?)) ORDER BY transaction_id"
    ids = rows["transaction_id"].to_pylist()
    score_window(ws, rows=rows, explain_top=50)
    plain = ws.df(stored, [ids])
    ahead = Ahead(ws, rows)
    assert ahead.result()["model_id"] == champion(ws).model_id
    report = score_window(ws, rows=rows, explain_top=50, ahead=ahead)
    assert report.rows == 400 and report.explained == 50
    pd.testing.assert_frame_equal(ws.df(stored, [ids]), plain)
    stale = Ahead(ws, rows)  # predicted by the old champion, then another model is promoted
    stale.result()
    newer = register(ws, train_model(ws, rounds=15, refit=False))
    assert promote(ws, newer, admin()).promoted
    score_window(ws, rows=rows, explain_top=50)
    fresh = ws.df(stored, [ids])
    assert set(fresh["model_id"]) == {newer} and not fresh["score"].equals(plain["score"])
    score_window(ws, rows=rows, explain_top=50, ahead=stale)
    pd.testing.assert_frame_equal(ws.df(stored, [ids]), fresh)
