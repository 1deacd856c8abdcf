"""Registry: JSON models, promotion guard (holdout, label jump, contradictions, trigger attack), override, rollback."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from people import admin, analyst, scientist

from fraudlab import overrides
from fraudlab.auth.permissions import NotAllowed
from fraudlab.errors import ModelError
from fraudlab.labels import record_analyst_labels
from fraudlab.model import train_model
from fraudlab.promotion import GuardCheck, _check_label_jump, promote, rollback
from fraudlab.registry import champion, list_models, load_booster, model_events, register
from fraudlab.workspace import file_sha256


def _challenger(ws) -> str:
    return register(ws, train_model(ws), who=scientist("tester"))


def test_models_are_saved_as_xgboost_json_never_pickle(ws):
    record = champion(ws)
    path = Path(record.path)
    assert path.suffix == ".json"
    assert "learner" in json.loads(path.read_text())
    assert not list(path.parent.glob("*.pkl")) and not list(path.parent.glob("*.pickle"))


def test_registry_stores_the_model_file_sha256_and_refuses_a_changed_file(ws):
    record = champion(ws)
    assert record.sha256 == file_sha256(record.path) == ws.scalar("SELECT sha256 FROM models")
    load_booster(record)
    model = json.loads(record.path.read_text())
    model["learner"]["gradient_booster"]["model"]["trees"][0]["base_weights"][0] += 1.0
    record.path.write_text(json.dumps(model))  # still valid JSON, still loadable by XGBoost
    with pytest.raises(ModelError, match="changed since it was registered: refused as tampered"):
        load_booster(record)
    record.path.write_text("{ not a model")
    with pytest.raises(ModelError):
        load_booster(record)


def test_promote_with_passing_guard_then_roll_back_one_step(ws):
    first = champion(ws).model_id
    second = _challenger(ws)
    outcome = promote(ws, second, admin("lead"))
    assert outcome.promoted, outcome.message
    assert {c.name for c in outcome.checks} == {"trusted holdout", "label distribution", "analyst contradictions",
                                                "trigger cluster"}
    assert champion(ws).model_id == second
    assert rollback(ws, admin("lead"), reason="test") == first
    assert champion(ws).model_id == first
    statuses = list_models(ws).set_index("model_id")["status"]
    assert statuses[second] == "retired"
    actions = ws.audit_log()["action"].tolist()
    assert "model_promoted" in actions and "model_rolled_back" in actions
    assert {"promoted", "rolled_back"} <= set(model_events(ws)["event"])


def test_rollback_without_an_earlier_champion_is_refused(ws):
    with pytest.raises(ModelError, match="nothing to roll back"):
        rollback(ws, admin())


def _poison(ws, n: int = 40) -> str:
    """Analyst 'legitimate' labels on the champion's highest-scoring rows, all at one merchant (a trigger attack)."""
    merchant = ws.scalar("""SELECT t.merchant_id FROM scores s JOIN transactions t USING (transaction_id)
                            GROUP BY 1 ORDER BY count(*) DESC LIMIT 1""")
    ids = ws.df("""SELECT transaction_id FROM transactions WHERE merchant_id = ? ORDER BY ts LIMIT ?""",
                [merchant, n])["transaction_id"].tolist()
    with ws.write("poison_for_test", analyst("attacker")) as cur:
        cur.execute("UPDATE scores SET score = 0.99 WHERE transaction_id IN (SELECT unnest($ids))", {"ids": ids})
        record_analyst_labels(cur, ids, is_fraud=False)
    return merchant


def test_poisoned_labels_block_promotion_until_a_written_override(ws):
    merchant = _poison(ws)
    challenger = _challenger(ws)
    blocked = promote(ws, challenger, admin("lead"))
    assert not blocked.promoted
    failed = {c.name: c.detail for c in blocked.checks if not c.passed}
    assert "trigger cluster" in failed and merchant in failed["trigger cluster"]
    assert "analyst contradictions" in failed
    assert champion(ws).model_id != challenger
    assert "promotion_blocked" in ws.audit_log()["action"].tolist()
    with pytest.raises(NotAllowed):  # a data scientist promotes only through the guard
        promote(ws, challenger, scientist("dana"), override_reason="trust me")
    asked = promote(ws, challenger, admin("lead"), override_reason="labels reviewed by two seniors")
    assert not asked.promoted and asked.pending_request is not None  # waits for a second admin
    assert champion(ws).model_id != challenger
    with pytest.raises(NotAllowed, match="second admin"):
        overrides.approve_override(ws, admin("lead"), asked.pending_request)
    assert overrides.approve_override(ws, admin("bea"), asked.pending_request) == challenger
    assert champion(ws).model_id == challenger
    audit = ws.audit_log()
    details = audit.loc[audit["action"] == "model_promoted", "details"].iloc[0]
    assert "lead" in details and audit.loc[audit["action"] == "model_promoted", "who"].iloc[0] == "bea"
    events = model_events(ws)
    assert "labels reviewed by two seniors" in events.loc[events["model_id"] == challenger, "details"].iloc[0]


def test_label_distribution_jump_is_caught():
    def trained_at(rate: float) -> SimpleNamespace:  # the check reads only the records' metrics
        return SimpleNamespace(metrics={"train_fraud_rate": rate})

    check = _check_label_jump(trained_at(0.03), trained_at(0.007))
    assert isinstance(check, GuardCheck) and not check.passed and "jumped" in check.detail
    assert _check_label_jump(trained_at(0.008), trained_at(0.007)).passed
