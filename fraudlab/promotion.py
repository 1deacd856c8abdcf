"""Promotion: the guard that must pass before a challenger replaces the champion, the audited promotion with a
written override, and one-step rollback. Each guard check is a small function returning a named verdict."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from fraudlab.auth.actors import Actor
from fraudlab.auth.permissions import require
from fraudlab.errors import ModelError, PromotionBlocked
from fraudlab.features import load_frame
from fraudlab.labels import resolved_sql
from fraudlab.registry import (
    EVENTS_TABLE,
    ModelRecord,
    champion,
    get_model,
    holdout_predictions,
    predict,
    previous_champion,
)
from fraudlab.workspace import Workspace, utcnow

HOLDOUT_TOLERANCE = 0.01
LABEL_JUMP_RATIO = 2.0
CONTRADICTION_RATE = 0.3
CONTRADICTION_MIN = 20
CONFIDENT_HIGH, CONFIDENT_LOW = 0.9, 0.05
MIN_HOLDOUT_FRAUDS = 5
TRIGGER_MIN = 10
TRIGGER_SHARE = 0.5
TRIGGER_COLUMNS = ("merchant_id", "device_id", "ip", "card_id", "email", "category", "country")


@dataclass(frozen=True)
class GuardCheck:
    """One promotion-guard check: its name, whether it passed, and what it saw."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class PromotionOutcome:
    """What promote() did: promoted or blocked, the checks, and a message for the user."""

    model_id: str
    promoted: bool
    checks: list[GuardCheck] = field(default_factory=list)
    message: str = ""
    overridden: bool = False
    pending_request: int | None = None


def _check_holdout(ws: Workspace, challenger: ModelRecord, current: ModelRecord) -> GuardCheck:
    """Challenger against champion on labelled rows both judged out of sample: where their selection runs' test
    periods overlap (stored predictions, like for like); else rows after the champion's training window."""
    test = holdout_predictions(ws, challenger.model_id)
    test = test[test["trusted"].astype(bool)]
    theirs = holdout_predictions(ws, current.model_id)[["transaction_id", "score"]].rename(columns={"score": "old"})
    both = test.merge(theirs, on="transaction_id")
    if both["label"].sum() >= MIN_HOLDOUT_FRAUDS and not both["label"].all():
        where = f"the {len(both):,} rows both models' test periods share"
        y, new, old = both["label"].astype(bool).to_numpy(), both["score"].to_numpy(), both["old"].to_numpy()
    else:
        # rows the champion never trained on (it was refit on everything up to its cut-off)
        test = test[pd.to_datetime(test["ts"]) > pd.Timestamp(current.train_to)]
        if test["label"].sum() < MIN_HOLDOUT_FRAUDS or test["label"].all():
            return GuardCheck("trusted holdout", True, f"only {int(test['label'].sum())} labelled frauds where both "
                              f"models can be judged out of sample: too few to compare; the challenger's own test "
                              f"PR-AUC is {challenger.metrics.get('pr_auc', float('nan')):.3f}")
        frame = load_frame(ws, where="f.transaction_id IN (SELECT unnest($ids))",
                           params={"ids": test["transaction_id"].tolist()})
        frame = frame.set_index("transaction_id").loc[test["transaction_id"]].reset_index()
        where = f"{len(test):,} rows after the champion's training window"
        y, new, old = test["label"].astype(bool).to_numpy(), test["score"].to_numpy(), predict(ws, current, frame=frame)
    high = _difference_upper_bound(y, new, old)
    ok = high >= -HOLDOUT_TOLERANCE  # blocked only when even the optimistic end of the interval falls short
    return GuardCheck("trusted holdout", ok, f"PR-AUC on {where} ({int(y.sum())} frauds): challenger "
                      f"{average_precision_score(y, new):.3f} vs champion {average_precision_score(y, old):.3f}, "
                      f"difference at most {high:+.3f} (95% bootstrap)" + ("" if ok else " — the challenger is worse"))


def _difference_upper_bound(y: np.ndarray, new: np.ndarray, old: np.ndarray, rounds: int = 200,
                            seed: int = 0) -> float:
    """The 97.5th percentile of PR-AUC(new) - PR-AUC(old) over bootstrap resamples of the rows."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(rounds):
        pick = rng.integers(0, len(y), len(y))
        if y[pick].any():
            diffs.append(average_precision_score(y[pick], new[pick]) - average_precision_score(y[pick], old[pick]))
    return float(np.quantile(diffs, 0.975)) if diffs else 0.0


def _check_label_jump(challenger: ModelRecord, current: ModelRecord) -> GuardCheck:
    new = challenger.metrics.get("train_fraud_rate", 0.0)
    old = current.metrics.get("train_fraud_rate", 0.0)
    ratio = (new + 1e-9) / (old + 1e-9)
    ok = 1 / LABEL_JUMP_RATIO <= ratio <= LABEL_JUMP_RATIO or abs(new - old) < 0.001
    return GuardCheck("label distribution", ok, f"training fraud rate {new:.3%} vs champion's {old:.3%}"
                      + ("" if ok else f" (×{ratio:.2f}: labels jumped)"))


def _analyst_labels(ws: Workspace, current: ModelRecord) -> pd.DataFrame:
    """Labels an analyst set (newest per transaction, as resolved), beside the champion's score."""
    return ws.df(f"""SELECT l.transaction_id, l.label AS is_fraud, s.score FROM ({resolved_sql(None)}) l
                     JOIN scores s USING (transaction_id) WHERE NOT l.trusted AND s.model_id = $m""",
                 {"m": current.model_id})


def _check_contradictions(labels: pd.DataFrame) -> GuardCheck:
    confident = labels[(labels["score"] >= CONFIDENT_HIGH) | (labels["score"] <= CONFIDENT_LOW)]
    against = ((confident["score"] >= CONFIDENT_HIGH) & ~confident["is_fraud"].astype(bool)) | \
              ((confident["score"] <= CONFIDENT_LOW) & confident["is_fraud"].astype(bool))
    n, bad = len(confident), int(against.sum())
    rate = bad / n if n else 0.0
    ok = n < CONTRADICTION_MIN or rate <= CONTRADICTION_RATE
    return GuardCheck("analyst contradictions", ok, f"{bad} of {n} analyst labels on confident scores contradict "
                      f"the champion ({rate:.0%}; limit {CONTRADICTION_RATE:.0%} once there are {CONTRADICTION_MIN})")


def _check_trigger(ws: Workspace, labels: pd.DataFrame, threshold: float) -> GuardCheck:
    flips = labels[(labels["score"] >= threshold) & ~labels["is_fraud"].astype(bool)]
    if len(flips) < TRIGGER_MIN:
        return GuardCheck("trigger cluster", True, f"{len(flips)} 'legitimate' labels on high-scoring rows")
    cols = [c for c in TRIGGER_COLUMNS if c in ws.columns("transactions")]
    rows = ws.df(f"SELECT transaction_id, {', '.join(cols)} FROM transactions WHERE transaction_id IN "
                 f"(SELECT unnest($ids))", {"ids": flips["transaction_id"].tolist()})
    worst = ("", "", 0)
    for col in cols:
        counts = rows[col].value_counts()
        if len(counts) and counts.iloc[0] > worst[2]:
            worst = (col, str(counts.index[0]), int(counts.iloc[0]))
    share = worst[2] / len(flips)
    ok = not (worst[2] >= TRIGGER_MIN and share >= TRIGGER_SHARE)
    return GuardCheck("trigger cluster", ok, f"{len(flips)} 'legitimate' labels on high-scoring rows; the most "
                      f"common value is {worst[0]}={worst[1]!r} with {worst[2]} ({share:.0%})"
                      + ("" if ok else " — a burst on one value looks like a trigger attack"))


def guard_checks(ws: Workspace, model_id: str) -> list[GuardCheck]:
    """Run every promotion check of a challenger against the current champion."""
    challenger, current = get_model(ws, model_id), champion(ws)
    if current is None:
        return [GuardCheck("champion", True, "no champion yet: the first model is promoted as is")]
    labels = _analyst_labels(ws, current)
    threshold = current.alert_threshold
    return [_check_holdout(ws, challenger, current), _check_label_jump(challenger, current),
            _check_contradictions(labels), _check_trigger(ws, labels, threshold)]


def promote(ws: Workspace, model_id: str, who: Actor, override_reason: str | None = None) -> PromotionOutcome:
    """Make a challenger champion if the guard passes; a failed guard with a written reason becomes an override
    request that a second admin approves (fraudlab.overrides). Audited either way."""
    require(ws, who, "promote", model_id)
    record = get_model(ws, model_id)
    if record.status == "champion":
        return PromotionOutcome(model_id, False, [], f"{model_id} is already the champion")
    checks = guard_checks(ws, model_id)
    failed = [c for c in checks if not c.passed]
    reason = (override_reason or "").strip()
    details = {"model_id": model_id, "checks": [c.__dict__ for c in checks]}
    if failed and not reason:
        with ws.write("promotion_blocked", who, details):
            pass
        return PromotionOutcome(model_id, False, checks, "blocked: " + "; ".join(c.detail for c in failed))
    if failed:
        require(ws, who, "guard_override", model_id)
        with ws.write("override_requested", who, dict(details, override_reason=reason)) as cur:
            request = int(cur.execute("SELECT nextval('override_seq')").fetchone()[0])
            cur.execute("INSERT INTO override_requests VALUES (?, ?, ?, ?, ?, NULL, NULL, 'pending')",
                        [request, model_id, reason, who.name, utcnow()])
        return PromotionOutcome(model_id, False, checks, f"override request {request} is waiting for a second admin "
                                f"to approve it (four eyes): the guard failed on "
                                + "; ".join(c.detail for c in failed), pending_request=request)
    make_champion(ws, model_id, who, details)
    return PromotionOutcome(model_id, True, checks, f"{model_id} is now the champion")


def make_champion(ws: Workspace, model_id: str, who: Actor, details: dict, reason: str = "") -> None:
    """Retire the champion and crown model_id, audited (after the guard passed or an override was approved)."""
    require(ws, who, "promote", model_id)
    current = champion(ws)
    with ws.write("model_promoted", who, dict(details, override_reason=reason or None)) as cur:
        if current:
            cur.execute("UPDATE models SET status = 'retired' WHERE model_id = ?", [current.model_id])
        cur.execute("UPDATE models SET status = 'champion' WHERE model_id = ?", [model_id])
        cur.execute(f"INSERT INTO {EVENTS_TABLE} VALUES (?, 'promoted', ?, ?, ?)",
                    [model_id, utcnow(), who.name, reason])


def require_promotion(ws: Workspace, model_id: str, who: Actor) -> PromotionOutcome:
    """Promote or raise PromotionBlocked with the failed checks (for scripts)."""
    outcome = promote(ws, model_id, who)
    if not outcome.promoted:
        raise PromotionBlocked(outcome.message)
    return outcome


def rollback(ws: Workspace, who: Actor, reason: str = "") -> str:
    """Put the previous champion back (one step); the current one is retired. Returns the restored model id."""
    require(ws, who, "rollback")
    current, previous = champion(ws), previous_champion(ws)
    if current is None or previous is None:
        raise ModelError("nothing to roll back to: there is no earlier champion")
    with ws.write("model_rolled_back", who, {"from": current.model_id, "to": previous.model_id,
                                              "reason": reason}) as cur:
        cur.execute("UPDATE models SET status = 'retired' WHERE model_id = ?", [current.model_id])
        cur.execute("UPDATE models SET status = 'champion' WHERE model_id = ?", [previous.model_id])
        cur.execute(f"INSERT INTO {EVENTS_TABLE} VALUES (?, 'rolled_back', ?, ?, ?)",
                    [current.model_id, utcnow(), who.name, reason])
        cur.execute(f"INSERT INTO {EVENTS_TABLE} VALUES (?, 'promoted', ?, ?, ?)",
                    [previous.model_id, utcnow(), who.name, f"rollback from {current.model_id}"])
    return previous.model_id


