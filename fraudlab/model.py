"""XGBoost training on point-in-time features: time-ordered split, imbalance, early stopping, cost-based threshold.

Only labels known by the cut-off are used, and the training window ends where labels have matured, so the
newest weeks (whose frauds are not reported yet) do not teach the model that recent means legitimate.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from fraudlab import jobs
from fraudlab.errors import ModelError
from fraudlab.features import feature_columns, feature_info, has_features, load_frame
from fraudlab.jobs import Progress
from fraudlab.labels import label_maturity_days, resolved_sql
from fraudlab.workspace import Workspace

DEFAULT_PARAMS = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.1,
                  "subsample": 0.9, "colsample_bytree": 0.8, "min_child_weight": 2,
                  "max_cat_to_onehot": 1, "nthread": 2, "seed": 0}
SEARCH_GRID = [{"max_depth": 4, "eta": 0.1}, {"max_depth": 6, "eta": 0.1}, {"max_depth": 8, "eta": 0.05}]
COST_REVIEW = 5.0  # what one analyst review costs; a missed fraud costs its amount
ALERT_BUDGET_PER_DAY = 20
RECALL_AT_PRECISION = 0.9
MIN_POSITIVES = 10


@dataclass(frozen=True)
class Split:
    """A time-ordered train / validation / test split of labelled feature rows."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    features: list[str]
    as_of: datetime
    train_from: datetime
    train_to: datetime


@dataclass
class TrainResult:
    """A trained booster with its features, parameters, window, metrics and test-set predictions."""

    booster: xgb.Booster
    features: list[str]
    categories: dict[str, list[str]]
    params: dict
    train_from: datetime
    train_to: datetime
    as_of: datetime
    metrics: dict
    test_predictions: pd.DataFrame = field(repr=False)
    seconds: float = 0.0


def training_frame(ws: Workspace, train_from: datetime | None = None, train_to: datetime | None = None,
                   as_of: datetime | None = None) -> tuple[pd.DataFrame, datetime, datetime, datetime]:
    """Labelled feature rows of the window, with labels known at `as_of`; the window defaults to matured rows."""
    if not has_features(ws):
        raise ModelError("features are missing or stale: build features first")
    last = ws.scalar("SELECT max(ts) FROM transactions")
    as_of = as_of or last
    if train_to is None:
        train_to = as_of - pd.Timedelta(days=label_maturity_days(ws))
    if train_from is None:
        train_from = ws.scalar("SELECT min(ts) FROM transactions")
    frame = load_frame(ws, where="t.ts BETWEEN $lo AND $hi", extra="l.label, l.trusted, t.amount AS __amount",
                       join=f"LEFT JOIN ({resolved_sql()}) l USING (transaction_id)", params={"lo": train_from, "hi": train_to, "as_of": as_of})
    return frame, pd.Timestamp(train_from).to_pydatetime(), pd.Timestamp(train_to).to_pydatetime(), as_of


def time_split(frame: pd.DataFrame, shares: tuple[float, float] = (0.6, 0.2)) -> tuple[pd.DataFrame, ...]:
    """Split rows (already ordered by time) into train / validation / test by time quantiles."""
    n = len(frame)
    a, b = int(n * shares[0]), int(n * (shares[0] + shares[1]))
    return frame.iloc[:a], frame.iloc[a:b], frame.iloc[b:]


def _matrix(frame: pd.DataFrame, features: list[str], label: bool = True) -> xgb.DMatrix:
    y = frame["label"].astype(float).to_numpy() if label else None
    return xgb.DMatrix(frame[features], label=y, enable_categorical=True)


def evaluate(y: np.ndarray, score: np.ndarray, amount: np.ndarray, days: float,
             alert_budget_per_day: int = ALERT_BUDGET_PER_DAY, cost_review: float = COST_REVIEW,
             threshold: float | None = None) -> dict:
    """ROC-AUC, PR-AUC, recall at 90% precision, precision/recall at the alert budget, expected cost at a threshold."""
    y = np.asarray(y).astype(bool)
    out: dict = {"rows": int(len(y)), "positives": int(y.sum())}
    if y.all() or not y.any():
        return out
    out["roc_auc"] = float(roc_auc_score(y, score))
    out["pr_auc"] = float(average_precision_score(y, score))
    precision, recall, _ = precision_recall_curve(y, score)
    ok = precision >= RECALL_AT_PRECISION
    out["recall_at_90_precision"] = float(recall[ok].max()) if ok.any() else 0.0
    budget = max(int(round(alert_budget_per_day * max(days, 1.0))), 1)
    top = np.argsort(-score, kind="stable")[:budget]
    out["alerts_at_budget"] = int(len(top))
    out["precision_at_budget"] = float(y[top].mean())
    out["recall_at_budget"] = float(y[top].sum() / y.sum())
    if threshold is not None:
        out.update(cost_at(y, score, amount, threshold, cost_review))
    return out


def cost_at(y: np.ndarray, score: np.ndarray, amount: np.ndarray, threshold: float, cost_review: float = COST_REVIEW) -> dict:
    """Expected cost when every row at or above the threshold is reviewed: reviews + amounts of missed frauds."""
    alert = score >= threshold
    missed = float(amount[(~alert) & y].sum())
    reviews = float(alert.sum() * cost_review)
    return {"threshold": float(threshold), "cost": missed + reviews, "cost_missed": missed, "cost_reviews": reviews,
            "alerts": int(alert.sum()), "caught": int((alert & y).sum())}


def best_threshold(y: np.ndarray, score: np.ndarray, amount: np.ndarray, cost_review: float = COST_REVIEW) -> float:
    """The threshold that minimises review cost plus missed-fraud amounts (vectorised over candidate cut-offs)."""
    y = np.asarray(y).astype(bool)
    order = np.argsort(-score, kind="stable")
    s, yy, amt = score[order], y[order], amount[order]
    caught_amount = np.cumsum(np.where(yy, amt, 0.0))
    cost = (amt[yy].sum() - caught_amount) + cost_review * np.arange(1, len(s) + 1)
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # a threshold can only cut between distinct scores
    cost = np.where(last_of_tie, cost, np.inf)
    best = int(np.argmin(cost))
    if amt[yy].sum() <= cost[best]:  # reviewing nothing is cheaper
        return float(min(1.0, s[0] + 1e-6))
    return float(s[best])


def budget_threshold(score: np.ndarray, ts: pd.Series, alert_budget_per_day: int = ALERT_BUDGET_PER_DAY) -> float:
    """The score above which about `alert_budget_per_day` alerts a day would have been raised."""
    days = max((ts.max() - ts.min()).total_seconds() / 86_400, 1.0)
    k = min(max(int(round(alert_budget_per_day * days)), 1), len(score))
    return float(np.sort(score)[::-1][k - 1])


def curves(y: np.ndarray, score: np.ndarray, points: int = 200) -> dict:
    """PR and ROC curves thinned to about `points` points each, for charts."""
    precision, recall, _ = precision_recall_curve(y, score)
    fpr, tpr, _ = roc_curve(y, score)
    pi = np.unique(np.linspace(0, len(precision) - 1, points).astype(int))
    ri = np.unique(np.linspace(0, len(fpr) - 1, points).astype(int))
    return {"precision": precision[pi].round(4).tolist(), "recall": recall[pi].round(4).tolist(),
            "fpr": fpr[ri].round(4).tolist(), "tpr": tpr[ri].round(4).tolist()}


def uninformative_features(frame: pd.DataFrame, features: list[str]) -> dict[str, str]:
    """Features that are all missing or take one value over the training window, with the reason for each."""
    dropped = {}
    for col in features:
        values = frame[col].dropna()
        if values.empty:
            dropped[col] = "missing in every row of the training window"
        elif values.nunique() == 1:
            dropped[col] = f"the same value ({values.iloc[0]}) in every row of the training window"
    return dropped


def _scale_pos_weight(frame: pd.DataFrame) -> float:
    positives = float(frame["label"].sum())
    return float(np.sqrt((len(frame) - positives) / max(positives, 1.0)))


class _JobCheck(xgb.callback.TrainingCallback):
    """Each boosting round is a cancellation point of the running job (see fraudlab.jobs)."""

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        jobs.checkpoint(f"training XGBoost (round {epoch + 1})")
        return False


def _refit(frame: pd.DataFrame, features: list[str], params: dict, rounds: int) -> xgb.Booster:
    """The chosen parameters and number of trees, trained again on every matured labelled row."""
    params = dict(params, scale_pos_weight=_scale_pos_weight(frame))
    return xgb.train(params, _matrix(frame, features), num_boost_round=rounds, verbose_eval=False,
                     callbacks=[_JobCheck()])


def _fit(train: pd.DataFrame, valid: pd.DataFrame, features: list[str], params: dict,
         rounds: int, early_stopping: int) -> tuple[xgb.Booster, float]:
    # Stop on validation log-loss (the last metric): PR-AUC saturates within a few trees on easy patterns and
    # would stop there, leaving scores squeezed far below 1 for obvious frauds. Candidates compare by PR-AUC.
    params = dict(params, scale_pos_weight=_scale_pos_weight(train), eval_metric=["aucpr", "logloss"])
    dtrain, dvalid = _matrix(train, features), _matrix(valid, features)
    booster = xgb.train(params, dtrain, num_boost_round=rounds, evals=[(dvalid, "valid")],
                        early_stopping_rounds=early_stopping, verbose_eval=False, callbacks=[_JobCheck()])
    score = booster.predict(dvalid, iteration_range=(0, booster.best_iteration + 1))
    return booster, float(average_precision_score(valid["label"].to_numpy(), score))


@jobs.as_job('training')
def train_model(ws: Workspace, train_from: datetime | None = None, train_to: datetime | None = None,
                params: dict | None = None, search: bool = False, rounds: int = 400, early_stopping: int = 30,
                alert_budget_per_day: int = ALERT_BUDGET_PER_DAY, cost_review: float = COST_REVIEW,
                progress: Progress | None = None, refit: bool = True, as_of: datetime | None = None,
                features: list[str] | None = None, extra: pd.DataFrame | None = None) -> TrainResult:
    """Train an XGBoost model on the labelled window; returns the booster, metrics and test predictions.

    `features` chooses the columns (default: every built feature); `extra` (transaction_id + columns) adds
    columns that are not in the features table yet, e.g. a candidate feature tried in a challenger.
    """
    progress = progress or (lambda _f, _m: None)
    began = time.perf_counter()
    progress(0.05, "loading labelled feature rows")
    frame, lo, hi, as_of = training_frame(ws, train_from, train_to, as_of)
    if extra is not None:  # a left merge keeps the time order, so the split is the same with or without it
        frame = frame.merge(extra, on="transaction_id", how="left", validate="one_to_one")
    frame = frame[frame["label"].notna()].reset_index(drop=True)
    if frame.empty:  # e.g. labels that take longer to arrive than the data spans: say so, not "every feature missing"
        raise ModelError(f"no labelled transactions between {lo:%Y-%m-%d %H:%M} and {hi:%Y-%m-%d %H:%M} (labels "
                         f"take about {label_maturity_days(ws):.1f} days to arrive, so the training window ends "
                         f"that long before the newest transaction): load more history or labels, or choose the "
                         f"training window")
    frame["label"] = frame["label"].astype(bool)
    chosen_features = features or feature_columns(ws)
    dropped = uninformative_features(frame, chosen_features)
    features = [f for f in chosen_features if f not in dropped]
    if not features:
        raise ModelError("every feature is constant or missing in the training window: " +
                         "; ".join(f"{f} ({why})" for f, why in dropped.items()))
    train, valid, test = time_split(frame)
    for name, part in (("training", train), ("validation", valid), ("test", test)):
        if part["label"].sum() < MIN_POSITIVES // (1 if name == "training" else 2) or part["label"].all():
            raise ModelError(f"too few labelled frauds in the {name} period ({int(part['label'].sum())}) between "
                             f"{lo:%Y-%m-%d} and {hi:%Y-%m-%d}: widen the training window or load more labels")
    base = dict(DEFAULT_PARAMS, **(params or {}))
    candidates = [dict(base, **g) for g in SEARCH_GRID] if search else [base]
    best = None
    for i, cand in enumerate(candidates):
        progress(0.15 + 0.6 * i / len(candidates), f"training XGBoost ({i + 1}/{len(candidates)})")
        booster, score = _fit(train, valid, features, cand, rounds, early_stopping)
        if best is None or score > best[1]:
            best = (booster, score, cand)
    booster, _, chosen = best
    progress(0.8, "evaluating on the test period")
    valid_score = booster.predict(_matrix(valid, features), iteration_range=(0, booster.best_iteration + 1))
    threshold = best_threshold(valid["label"].to_numpy(), valid_score, valid["__amount"].to_numpy(), cost_review)
    alert_threshold = budget_threshold(valid_score, valid["ts"], alert_budget_per_day)
    test_score = booster.predict(_matrix(test, features), iteration_range=(0, booster.best_iteration + 1))
    y = test["label"].to_numpy()
    days = (test["ts"].max() - test["ts"].min()).total_seconds() / 86_400
    metrics = evaluate(y, test_score, test["__amount"].to_numpy(), days, alert_budget_per_day, cost_review, threshold)
    metrics.update(curves(y, test_score), best_iteration=int(booster.best_iteration),
                   train_rows=len(train), valid_rows=len(valid), test_rows=len(test),
                   train_fraud_rate=float(train["label"].mean()), alert_budget_per_day=alert_budget_per_day,
                   alert_threshold=alert_threshold,
                   cost_review=cost_review, test_from=str(test["ts"].min()), test_to=str(test["ts"].max()),
                   excluded=feature_info(ws).get("excluded", {}))
    rounds_chosen = booster.best_iteration + 1
    if refit:
        progress(0.85, f"refitting on all {len(frame):,} matured labelled rows with {rounds_chosen} trees")
        booster = _refit(frame, features, chosen, rounds_chosen)
        metrics.update(refit_rows=len(frame), refit_trees=rounds_chosen,
                       refit_note=f"final model refit on every matured labelled row up to {hi:%Y-%m-%d} "
                                  f"({len(frame):,} rows, {rounds_chosen} trees chosen on validation); the test "
                                  f"metrics are those of the selection run, on rows it never saw")
        recent = booster.predict(_matrix(test, features, label=False))  # the refit model's own score scale
        metrics["alert_threshold"] = budget_threshold(recent, test["ts"], alert_budget_per_day)
    else:
        booster = booster[:rounds_chosen]
    metrics["dropped"] = dropped
    numeric = [f for f in features if str(train[f].dtype) != "category"]
    metrics["usual"] = {f: float(v) for f, v in train[numeric].median().items() if np.isfinite(v)}
    categories = {c: [str(v) for v in frame[c].cat.categories] for c in features if str(frame[c].dtype) == "category"}
    predictions = pd.DataFrame({"transaction_id": test["transaction_id"].to_numpy(), "ts": test["ts"].to_numpy(),
                                "label": y, "score": test_score, "amount": test["__amount"].to_numpy(),
                                "trusted": test["trusted"].fillna(True).to_numpy()})
    progress(1.0, "trained")
    return TrainResult(booster, features, categories, chosen, lo, hi, as_of, metrics, predictions,
                       time.perf_counter() - began)


def cost_table(predictions: pd.DataFrame, cost_review: float = COST_REVIEW, points: int = 60) -> pd.DataFrame:
    """Cost at log-spaced thresholds for a prediction frame (label, score, amount): for the threshold slider."""
    y = predictions["label"].astype(bool).to_numpy()
    score, amount = predictions["score"].to_numpy(), predictions["amount"].to_numpy()
    thresholds = np.unique(np.r_[np.logspace(-4, 0, points), 0.5])
    return pd.DataFrame([cost_at(y, score, amount, t, cost_review) for t in thresholds])


def threshold_choices(alert_threshold: float, points: int = 81) -> list[float]:
    """Thresholds spaced evenly on a log scale from 1e-4 to 1, plus the alert threshold itself (for a slider)."""
    grid = np.logspace(-4, 0, points)
    return sorted({float(f"{t:.4g}") for t in grid} | {float(alert_threshold)})


def nearest(choices: list[float], value: float) -> float:
    """The choice closest to value (a slider's starting point)."""
    return min(choices, key=lambda c: abs(np.log10(max(c, 1e-12)) - np.log10(max(value, 1e-12))))


def metrics_by_group(y: np.ndarray, score: np.ndarray, group: np.ndarray) -> pd.DataFrame:
    """PR-AUC and ROC-AUC of each group's positives against all negatives (e.g. per fraud pattern)."""
    y = np.asarray(y).astype(bool)
    rows = []
    for name in sorted(set(group[y])):
        keep = (~y) | (group == name)
        yy, ss = y[keep], score[keep]
        rows.append({"group": name, "frauds": int(yy.sum()), "pr_auc": float(average_precision_score(yy, ss)),
                     "roc_auc": float(roc_auc_score(yy, ss)), "chance_pr_auc": float(yy.mean())})
    return pd.DataFrame(rows)


def decision_threshold(ws: Workspace) -> float:
    """The champion's alert threshold (about the daily alert budget on its validation period); 0.5 without one."""
    from fraudlab.registry import champion

    current = champion(ws)
    return 0.5 if current is None else current.alert_threshold
