"""Live micro-batches scored together through the fallback chain of :class:`fraudlab.scoring.Scorer`.

One prediction and one contributions pass per step for all the batch's rows instead of one per event; the per-step
budget holds for each event's share of the step; rules always answer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import xgboost as xgb

from fraudlab import rules, treeshap
from fraudlab.errors import FraudlabError, ModelError
from fraudlab.explain import raising_reasons
from fraudlab.rules import describe
from fraudlab.scoring import Scorer
from fraudlab.workspace import Workspace

TOP_REASONS = 5


@dataclass(frozen=True)
class RowsScore:
    """Many feature rows scored together by the one step of the fallback chain that answered (live micro-batches)."""

    scores: np.ndarray
    scorer: str  # model | fallback | rules
    model_id: str | None
    ms: float  # the answering step's time for all the rows
    features: tuple[str, ...]  # the model's features, in the order of `contribs`' columns (empty for rules)
    contribs: np.ndarray | None  # exact TreeSHAP values, rows x features (None for rules)
    fired: list[list[str]]  # per row, the rules that fired (rules step only)
    attempts: list[str] = field(default_factory=list)
    usual: dict | None = None  # the population's usual values the reason sentences quote


def _floats(values: Sequence) -> np.ndarray:
    """A column as floats (None and unreadable values missing); NumPy arrays and plain numbers without pandas."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False)
    if not isinstance(values, pd.Series):
        try:
            return np.array(values, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    return pd.to_numeric(pd.Series(values, copy=False), errors="coerce").to_numpy(np.float64, na_value=np.nan)


@dataclass(frozen=True)
class _Layout:
    """What a model's matrix needs, worked out once per model: names, types, category codes."""

    names: list[str]
    types: list[str]
    codes: list[dict[str, int] | None]


_LAYOUTS: dict[tuple, _Layout] = {}


def _layout(record) -> _Layout:
    """The model's matrix layout (cached by model id and file: the live path builds a matrix for every batch)."""
    key = (record.model_id, str(record.path), record.sha256)
    found = _LAYOUTS.get(key)
    if found is None:
        if len(_LAYOUTS) > 16:
            _LAYOUTS.clear()
        codes = [None if record.categories.get(c) is None else {str(v): i for i, v in enumerate(record.categories[c])}
                 for c in record.features]
        found = _LAYOUTS[key] = _Layout(list(record.features), ["q" if c is None else "c" for c in codes], codes)
    return found


def model_array(columns: Mapping[str, Sequence], rows: int, record) -> np.ndarray:
    """The model's float32 matrix from a few feature rows (`columns`: name -> values, a DataFrame or a dict of arrays):
    categoricals as codes of the categories it was trained on, unknown or missing values missing; what `prepare`
    gives, without a pandas round trip."""
    layout = _layout(record)
    data = np.full((rows, len(layout.names)), np.nan, dtype=np.float32)
    for j, (col, code) in enumerate(zip(layout.names, layout.codes)):
        if col not in columns:
            continue
        values = columns[col]
        if code is None:
            data[:, j] = _floats(values)
        else:
            data[:, j] = [np.nan if v is None or v != v else code.get(str(v), np.nan) for v in values]
    return data


def model_matrix(columns: Mapping[str, Sequence], rows: int, record, nthread: int) -> xgb.DMatrix:
    """:func:`model_array` as the model's DMatrix."""
    layout = _layout(record)
    return xgb.DMatrix(model_array(columns, rows, record), feature_names=layout.names, feature_types=layout.types,
                       enable_categorical=True, nthread=nthread)


_ONE_THREAD: dict[int, tuple[xgb.Booster, xgb.Booster]] = {}  # id of a booster -> (it, its one-thread copy)


def one_thread(booster: xgb.Booster) -> xgb.Booster:
    """A copy of `booster` that predicts on one thread (made once per booster): a few rows' prediction needs no
    OpenMP team, and each parallel region waits for its second thread, milliseconds whenever another process holds
    the other core (at 10M rows, 4 rows: 0.06 ms on one thread; 0.3 ms on two, 7-23 ms beside a busy process). Its
    predictions are the same numbers."""
    found = _ONE_THREAD.get(id(booster))
    if found is None or found[0] is not booster:
        if len(_ONE_THREAD) > 16:
            _ONE_THREAD.clear()
        twin = booster.copy()
        twin.set_param({"nthread": 1})
        found = _ONE_THREAD[id(booster)] = (booster, twin)
    return found[1]


def warm(scorer: Scorer) -> Scorer:
    """Make each model's one-thread copy and TreeSHAP tables now (0.5-1 s at 400 trees), off the path of the first
    batch that uses them."""
    for _step, _record, booster in scorer.steps:
        if booster is not None:
            one_thread(booster)
            treeshap.contributions(booster, np.full((1, booster.num_features()), np.nan, np.float32))
    return scorer


def score_rows(scorer: Scorer, frame: pd.DataFrame | Mapping[str, Sequence]) -> RowsScore:
    """Score and explain many feature rows at once through the chain (one prediction and one exact TreeSHAP pass
    per step; the budget holds for each row's share of the step); rules always answer. `columns`: the same rows as
    name -> values (the live path's columns: read faster, a DataFrame is made only if the rules answer)."""
    rows = len(frame) if isinstance(frame, pd.DataFrame) else len(next(iter(frame.values())))
    attempts = []
    for step, record, booster in scorer.steps:
        began = time.perf_counter()
        try:
            if booster is None:
                raise ModelError(scorer.load_errors.get(record.model_id, "model could not be loaded"))
            data = model_array(frame, rows, record)  # in the model's feature order: no name check per call
            scores = one_thread(booster).inplace_predict(data, validate_features=False)  # no OpenMP team (one_thread)
            contribs = treeshap.contributions(booster, data, threads=2)  # exact TreeSHAP, half the trees beside
        except (FraudlabError, xgb.core.XGBoostError, KeyError, ValueError) as exc:
            attempts.append(f"{step} {record.model_id}: failed ({exc})")
            continue
        ms = 1000 * (time.perf_counter() - began)
        share = ms / max(rows, 1)  # each event's share of the step: the budget holds per event
        if share > scorer.budget_ms:
            attempts.append(f"{step} {record.model_id}: over budget ({share:.1f} ms per event > "
                            f"{scorer.budget_ms:.0f} ms)")
            continue
        return RowsScore(np.asarray(scores, dtype=float), step, record.model_id, ms, tuple(record.features),
                         contribs, [], attempts, record.metrics.get("usual"))
    began = time.perf_counter()
    result = rules.score_rules(frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame))
    return RowsScore(np.asarray(result.score, dtype=float), "rules", None, 1000 * (time.perf_counter() - began), (),
                     None, result.fired, attempts)


def row_reasons(result: RowsScore, i: int, values: dict) -> list[dict]:
    """What raised the risk of row `i` of a batch scored together, strongest first: code (feature or rule), sentence,
    contribution, value."""
    if result.contribs is None:
        fired = result.fired[i]
        return [{"code": name, "text": text, "contribution": 0.0, "value": None}
                for name, text in zip(fired, describe(fired))][:TOP_REASONS]
    raised = raising_reasons(result.features, values, result.contribs[i], TOP_REASONS, result.usual)
    return [{"code": r["feature"], "text": r["text"], "contribution": round(r["contribution"], 6), "value": r["value"]}
            for r in raised]


def answer_of(job, result: RowsScore, i: int, values: dict, threshold: float, features_at: float, size: int) -> dict:
    """The answer to event `i` of a batch scored together (`job`: its :class:`fraudlab.api.store.Job`, whose `score`
    this sets; `features_at`: when the batch's features were ready; `size`: events in the batch)."""
    score = job.score = float(result.scores[i])
    return {"transaction_id": job.row["transaction_id"], "score": round(score, 6),
            "alert": bool(score >= threshold), "scorer": result.scorer, "model_id": result.model_id,
            "reasons": row_reasons(result, i, values), "threshold": threshold, "passed_over": result.attempts,
            "latency_ms": round(1000 * (time.perf_counter() - job.began), 3),
            "features_ms": round(1000 * (features_at - job.began), 3), "batch": size,
            "ignored_fields": sorted(job.extra)}


def model_files(ws: Workspace) -> tuple:
    """Path, size and mtime of every model file in the registry: a removed or replaced file changes this."""
    out = []
    for path in sorted(ws.df("SELECT path FROM models")["path"]):
        file = ws.models_dir / str(path)
        stat = file.stat() if file.exists() else None
        out.append((str(path), None if stat is None else (stat.st_size, stat.st_mtime_ns)))
    return tuple(out)
