"""Model registry: saved XGBoost models (JSON, never pickle), statuses, guarded promotion and one-step rollback.

The promotion guard protects the champion from bad or poisoned training labels: a challenger must match the
champion on a trusted, time-later holdout, and is blocked when the label mix jumps, when analyst labels
contradict confident scores unusually often, or when one entity carries a burst of "legitimate" labels on
high-scoring rows (a trigger attack). An override needs a written reason and is audited.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score

from fraudlab.errors import ModelError, PromotionBlocked
from fraudlab.features import load_frame
from fraudlab.labels import resolved_sql
from fraudlab.workspace import Workspace, utcnow

EVENTS_TABLE = "model_events"
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




def _data_hash(ws: Workspace, lo, hi) -> str:
    digest = ws.scalar("SELECT sum(hash(transaction_id))::VARCHAR || '-' || count(*) FROM transactions "
                       "WHERE ts BETWEEN $lo AND $hi", {"lo": lo, "hi": hi})
    return hashlib.sha256(str(digest).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """Hex sha256 of a model file's bytes (stored at registration, checked at every load)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def register(ws: Workspace, result, who: str = "system", kind: str = "xgboost") -> str:
    """Save a TrainResult (booster JSON + test predictions Parquet) as a challenger; the first model becomes champion."""
    now = utcnow()
    data_hash = _data_hash(ws, result.train_from, result.train_to)
    model_id = f"m{now:%Y%m%d-%H%M%S}-{hashlib.sha256((data_hash + str(now.timestamp())).encode()).hexdigest()[:4]}"
    path = ws.models_dir / f"{model_id}.json"
    result.booster.save_model(str(path))
    result.test_predictions.to_parquet(ws.models_dir / f"{model_id}_test.parquet", index=False)
    first = ws.scalar("SELECT count(*) FROM models WHERE status = 'champion'") == 0
    status = "champion" if first else "challenger"
    features = {"names": result.features, "categories": result.categories}
    with ws.write("model_registered", who, {"model_id": model_id, "status": status}) as cur:
        cur.execute("INSERT INTO models (model_id, created_at, kind, features, params, train_from, train_to, "
                    "data_hash, metrics, status, path, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [model_id, now, kind, json.dumps(features), json.dumps(result.params), result.train_from,
                     result.train_to, data_hash, json.dumps(result.metrics), status, path.name, file_sha256(path)])
        cur.execute(f"INSERT INTO {EVENTS_TABLE} VALUES (?, ?, ?, ?, ?)",
                    [model_id, "promoted" if first else "registered", now, who, "first model" if first else ""])
    return model_id


@dataclass(frozen=True)
class ModelRecord:
    """One registered model: what it was trained on and how, its metrics, status and file."""

    model_id: str
    created_at: datetime
    kind: str
    features: tuple[str, ...]
    categories: dict[str, list[str]]
    params: dict
    train_from: datetime
    train_to: datetime
    data_hash: str
    metrics: dict
    status: str  # challenger | champion | retired
    path: Path
    sha256: str | None = None  # None for models registered before schema version 4 (their files are not checked)

    @property
    def alert_threshold(self) -> float:
        """The one alert threshold: the score above which about the daily alert budget of alerts is raised."""
        m = self.metrics
        return float(m.get("alert_threshold", m.get("threshold", 0.5)))

    @property
    def alert_budget_per_day(self) -> int | None:
        """The daily alert budget the alert threshold was set for."""
        budget = self.metrics.get("alert_budget_per_day")
        return None if budget is None else int(budget)

    @property
    def holdout_path(self) -> Path:
        """Parquet of the model's test-period predictions, beside its booster file."""
        return self.path.with_name(f"{self.model_id}_test.parquet")


def _record(ws: Workspace, row: pd.Series) -> ModelRecord:
    features = json.loads(row["features"] or "{}")
    return ModelRecord(
        model_id=str(row["model_id"]), created_at=pd.Timestamp(row["created_at"]).to_pydatetime(),
        kind=str(row["kind"]), features=tuple(features.get("names", [])), categories=features.get("categories", {}),
        params=json.loads(row["params"] or "{}"), train_from=pd.Timestamp(row["train_from"]).to_pydatetime(),
        train_to=pd.Timestamp(row["train_to"]).to_pydatetime(), data_hash=str(row["data_hash"]),
        metrics=json.loads(row["metrics"] or "{}"), status=str(row["status"]),
        path=ws.models_dir / Path(row["path"]).name,  # stored by name: the workspace can move
        sha256=None if pd.isna(row.get("sha256")) else str(row["sha256"]))


def list_models(ws: Workspace) -> pd.DataFrame:
    """All registered models, newest first, with headline metrics as columns."""
    frame = ws.df("SELECT model_id, created_at, kind, status, train_from, train_to, data_hash, metrics, path "
                  "FROM models ORDER BY created_at DESC")
    metrics = [json.loads(m or "{}") for m in frame.pop("metrics")]
    for key in ("pr_auc", "roc_auc", "recall_at_budget", "precision_at_budget"):
        frame[key] = [m.get(key) for m in metrics]
    frame["alert_threshold"] = [m.get("alert_threshold", m.get("threshold")) for m in metrics]
    return frame


def get_model(ws: Workspace, model_id: str) -> ModelRecord:
    """One model's record (features, categories, params, metrics parsed)."""
    frame = ws.df("SELECT * FROM models WHERE model_id = ?", [model_id])
    if frame.empty:
        raise ModelError(f"no model {model_id!r} in this workspace")
    return _record(ws, frame.iloc[0])


def champion(ws: Workspace) -> ModelRecord | None:
    """The current champion's record, or None."""
    frame = ws.df("SELECT * FROM models WHERE status = 'champion' ORDER BY created_at DESC LIMIT 1")
    return None if frame.empty else _record(ws, frame.iloc[0])


def previous_champion(ws: Workspace) -> ModelRecord | None:
    """The model that was champion before the current one (rollback target and fallback scorer), or None."""
    current = champion(ws)
    frame = ws.df(f"""SELECT model_id FROM {EVENTS_TABLE} WHERE event = 'promoted' AND model_id <> $cur
                      AND model_id IN (SELECT model_id FROM models) ORDER BY happened_at DESC LIMIT 1""",
                  {"cur": current.model_id if current else ""})
    return None if frame.empty else get_model(ws, frame["model_id"].iloc[0])


def models_stamp(ws: Workspace) -> str:
    """Changes when the champion, the fallback or any model's status changes (a cache key for loaded models)."""
    row = ws.df("SELECT count(*) AS n, string_agg(model_id || ':' || status, ',' ORDER BY model_id) AS s "
                "FROM models").iloc[0]
    return f"{row['n']}|{row['s']}"


def load_booster(record: ModelRecord) -> xgb.Booster:
    """Load a model's booster from its JSON file (never pickle); a missing, changed or unreadable file is a ModelError."""
    path = record.path
    if not path.exists():
        raise ModelError(f"model {record.model_id}: file {path} is missing")
    if record.sha256 is not None and file_sha256(path) != record.sha256:
        raise ModelError(f"model {record.model_id}: file {path} changed since it was registered: refused as tampered")
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        raise ModelError(f"model {record.model_id}: file {path} is not a readable XGBoost model "
                         f"({str(exc).strip().splitlines()[0] if str(exc).strip() else 'unreadable'})") from exc
    names = booster.feature_names
    if names is not None and list(names) != list(record.features):
        raise ModelError(f"model {record.model_id}: its file was trained on {len(names)} features but the registry "
                         f"lists {len(record.features)} ({_difference(names, record.features)}): retrain it")
    booster.set_param({"nthread": 2})
    return booster


def check_features(ws: Workspace, record: ModelRecord) -> None:
    """Raise ModelError when the features table lacks a feature the model was trained on (rebuild or retrain)."""
    present = set(ws.columns("features")) if ws.has_table("features") else set()
    missing = [f for f in record.features if f not in present]
    if missing:
        raise ModelError(f"model {record.model_id} needs features the features table does not have: "
                         f"{', '.join(missing[:8])}{', …' if len(missing) > 8 else ''}; rebuild features or retrain")
    if not record.features:
        raise ModelError(f"model {record.model_id}: the registry lists no features for it; retrain it")


def _difference(names: list[str], listed: tuple[str, ...]) -> str:
    """What differs between a booster's feature names and the registry's list, for an error message."""
    extra, absent = [n for n in names if n not in listed], [n for n in listed if n not in names]
    parts = ([f"only in the file: {', '.join(extra[:5])}"] if extra else []) + \
            ([f"only in the registry: {', '.join(absent[:5])}"] if absent else [])
    return "; ".join(parts) or "same names in another order"


def prepare(frame: pd.DataFrame, record: ModelRecord) -> pd.DataFrame:
    """Feature columns in the model's order, categoricals with the categories it was trained on."""
    out = frame.reindex(columns=list(record.features))
    for col, cats in record.categories.items():
        out[col] = pd.Categorical(frame[col].astype("string").astype(object) if col in frame else None, categories=cats)
    return out


def predict(ws: Workspace, record: ModelRecord, transaction_ids: list[str] | None = None,
            frame: pd.DataFrame | None = None) -> np.ndarray:
    """Scores of a model for the given feature rows (or transaction ids)."""
    if frame is None:
        frame = load_frame(ws, where="f.transaction_id IN (SELECT unnest($ids))", params={"ids": transaction_ids})
    booster = load_booster(record)
    return booster.predict(xgb.DMatrix(prepare(frame, record), enable_categorical=True))


def holdout_predictions(ws: Workspace, model_id: str) -> pd.DataFrame:
    """The model's test-period predictions (transaction_id, ts, label, score, amount, trusted)."""
    record = get_model(ws, model_id)
    path = record.holdout_path
    if not path.exists():
        raise ModelError(f"test predictions of {model_id} are missing")
    return pd.read_parquet(path)


def importance(ws: Workspace, model_id: str, rows: int = 2_000) -> pd.DataFrame:
    """Mean |SHAP| per feature over (up to) `rows` of the model's test period."""
    from fraudlab.explain import contributions, global_importance

    record = get_model(ws, model_id)
    ids = holdout_predictions(ws, model_id)["transaction_id"].tail(rows).tolist()
    frame = load_frame(ws, where="f.transaction_id IN (SELECT unnest($ids))", params={"ids": ids})
    contribs, _ = contributions(load_booster(record), prepare(frame, record))
    return global_importance(list(record.features), contribs)


# ------------------------------------------------------------------------------------------ guard

def _check_holdout(ws: Workspace, challenger: ModelRecord, current: ModelRecord) -> GuardCheck:
    test = holdout_predictions(ws, challenger.model_id)
    # rows the champion never trained on (it was refit on everything up to its cut-off), labels from the data
    test = test[test["trusted"].astype(bool) & (pd.to_datetime(test["ts"]) > pd.Timestamp(current.train_to))]
    if test["label"].sum() < MIN_HOLDOUT_FRAUDS or test["label"].all():
        return GuardCheck("trusted holdout", True, f"only {int(test['label'].sum())} labelled frauds in the "
                          f"challenger's test period after the champion's training window "
                          f"({current.train_to:%Y-%m-%d}): too few to compare; the challenger's own test PR-AUC is "
                          f"{challenger.metrics.get('pr_auc', float('nan')):.3f}")
    frame = load_frame(ws, where="f.transaction_id IN (SELECT unnest($ids))",
                       params={"ids": test["transaction_id"].tolist()})
    frame = frame.set_index("transaction_id").loc[test["transaction_id"]].reset_index()
    champ_score = predict(ws, current, frame=frame)
    y = test["label"].astype(bool).to_numpy()
    new, old = average_precision_score(y, test["score"]), average_precision_score(y, champ_score)
    ok = new >= old - HOLDOUT_TOLERANCE
    return GuardCheck("trusted holdout", ok, f"PR-AUC on {len(test):,} trusted, time-later rows: challenger "
                      f"{new:.3f} vs champion {old:.3f}" + ("" if ok else " — the challenger is worse"))


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


def promote(ws: Workspace, model_id: str, who: str = "system", override_reason: str | None = None) -> PromotionOutcome:
    """Make a challenger champion if the guard passes (or with a written override reason); audited either way."""
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
    current = champion(ws)
    with ws.write("model_promoted", who, dict(details, override_reason=reason or None)) as cur:
        if current:
            cur.execute("UPDATE models SET status = 'retired' WHERE model_id = ?", [current.model_id])
        cur.execute("UPDATE models SET status = 'champion' WHERE model_id = ?", [model_id])
        cur.execute(f"INSERT INTO {EVENTS_TABLE} VALUES (?, 'promoted', ?, ?, ?)",
                    [model_id, utcnow(), who, reason or ""])
    message = f"{model_id} is now the champion" + (f" (guard overridden: {reason})" if failed else "")
    return PromotionOutcome(model_id, True, checks, message, overridden=bool(failed))


def require_promotion(ws: Workspace, model_id: str, who: str = "system") -> PromotionOutcome:
    """Promote or raise PromotionBlocked with the failed checks (for scripts)."""
    outcome = promote(ws, model_id, who)
    if not outcome.promoted:
        raise PromotionBlocked(outcome.message)
    return outcome


def rollback(ws: Workspace, who: str = "system", reason: str = "") -> str:
    """Put the previous champion back (one step); the current one is retired. Returns the restored model id."""
    current, previous = champion(ws), previous_champion(ws)
    if current is None or previous is None:
        raise ModelError("nothing to roll back to: there is no earlier champion")
    with ws.write("model_rolled_back", who, {"from": current.model_id, "to": previous.model_id,
                                              "reason": reason}) as cur:
        cur.execute("UPDATE models SET status = 'retired' WHERE model_id = ?", [current.model_id])
        cur.execute("UPDATE models SET status = 'champion' WHERE model_id = ?", [previous.model_id])
        cur.execute(f"INSERT INTO {EVENTS_TABLE} VALUES (?, 'rolled_back', ?, ?, ?)",
                    [current.model_id, utcnow(), who, reason])
        cur.execute(f"INSERT INTO {EVENTS_TABLE} VALUES (?, 'promoted', ?, ?, ?)",
                    [previous.model_id, utcnow(), who, f"rollback from {current.model_id}"])
    return previous.model_id


def model_events(ws: Workspace) -> pd.DataFrame:
    """Promotions, rollbacks and registrations, newest first."""
    return ws.df(f"SELECT * FROM {EVENTS_TABLE} ORDER BY happened_at DESC")
