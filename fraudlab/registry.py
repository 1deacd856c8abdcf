"""Model registry: saved XGBoost models (JSON, never pickle), statuses, guarded promotion and one-step rollback.

The promotion guard protects the champion from bad or poisoned training labels: a challenger must match the
champion on a trusted, time-later holdout, and is blocked when the label mix jumps, when analyst labels
contradict confident scores unusually often, or when one entity carries a burst of "legitimate" labels on
high-scoring rows (a trigger attack). An override needs a written reason and is audited.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from fraudlab import jobs
from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.errors import ModelError
from fraudlab.features import load_frame
from fraudlab.workspace import Workspace, file_sha256, utcnow

EVENTS_TABLE = "model_events"


def _data_hash(ws: Workspace, lo, hi) -> str:
    digest = ws.scalar("SELECT sum(hash(transaction_id))::VARCHAR || '-' || count(*) FROM transactions "
                       "WHERE ts BETWEEN $lo AND $hi", {"lo": lo, "hi": hi})
    return hashlib.sha256(str(digest).encode()).hexdigest()[:16]


def clean_orphan_files(ws: Workspace, older_than_s: float = 600.0) -> list[str]:
    """Delete model files that no registry row names (left by a training killed before it registered); files
    younger than `older_than_s` are left alone, in case a registration is under way. Returns the names removed."""
    known = set(ws.df("SELECT model_id FROM models")["model_id"])
    removed = []
    for path in ws.models_dir.glob("m*.*"):
        model_id = path.name.split(".")[0].removesuffix("_test")
        if model_id not in known and time.time() - path.stat().st_mtime > older_than_s:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def register(ws: Workspace, result, who: Actor = SYSTEM, kind: str = "xgboost") -> str:
    """Save a TrainResult (booster JSON + test predictions Parquet) as a challenger; the first model becomes champion."""
    clean_orphan_files(ws)
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
                    [model_id, "promoted" if first else "registered", now, who.name, "first model" if first else ""])
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
    booster.set_param({"nthread": jobs.job_threads(2)})  # 1 while a job yields to live scoring
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


def model_matrix(frame: pd.DataFrame, record: ModelRecord) -> np.ndarray:
    """The rows of :func:`prepare` as one dense float32 array (categories as the model's codes, missing as NaN):
    XGBoost reads it faster than a DataFrame and casts every value to float32 anyway, so the scores are the same."""
    out = np.empty((len(frame), len(record.features)), dtype=np.float32)
    for j, col in enumerate(record.features):
        values = frame[col] if col in frame else None
        if values is None:
            out[:, j] = np.nan
        elif col in record.categories:
            out[:, j] = _category_codes(values, record.categories[col])
        else:
            out[:, j] = values.to_numpy(dtype=np.float32, na_value=np.nan)
    return out


def _category_codes(values: pd.Series, categories: list) -> np.ndarray:
    """The codes :func:`prepare`'s Categorical gives `values` (-1 as NaN), mapped through the few distinct values."""
    known = pd.Index(list(categories), dtype=object)
    if isinstance(values.dtype, pd.CategoricalDtype):
        position = known.get_indexer(values.cat.categories.astype("string").astype(object))
        codes = values.cat.codes.to_numpy()
        codes = np.where(codes < 0, -1, position[np.maximum(codes, 0)]) if len(position) else np.full(len(codes), -1)
    else:
        codes = pd.Categorical(values.astype("string").astype(object), categories=categories).codes
    return np.where(codes < 0, np.nan, codes).astype(np.float32)


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

    record, frame = holdout_sample(ws, model_id, rows)
    contribs, _ = contributions(load_booster(record), frame)
    return global_importance(list(record.features), contribs)


def holdout_sample(ws: Workspace, model_id: str, rows: int = 2_000) -> tuple[ModelRecord, pd.DataFrame]:
    """The model's record and its newest (up to) `rows` test-period feature rows, prepared for it."""
    record = get_model(ws, model_id)
    ids = holdout_predictions(ws, model_id)["transaction_id"].tail(rows).tolist()
    frame = load_frame(ws, where="f.transaction_id IN (SELECT unnest($ids))", params={"ids": ids})
    return record, prepare(frame, record)


def model_events(ws: Workspace) -> pd.DataFrame:
    """Promotions, rollbacks and registrations, newest first."""
    return ws.df(f"SELECT * FROM {EVENTS_TABLE} ORDER BY happened_at DESC")
