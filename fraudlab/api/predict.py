"""Live micro-batches scored together through the fallback chain of :class:`fraudlab.scoring.Scorer`.

One prediction and one contributions pass per step for all the batch's rows instead of one per event; the per-step
budget holds for each event's share of the step; rules always answer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xgboost as xgb

from fraudlab import rules
from fraudlab.errors import FraudlabError, ModelError
from fraudlab.registry import prepare
from fraudlab.scoring import Scorer


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


def score_rows(scorer: Scorer, frame: pd.DataFrame) -> RowsScore:
    """Score and explain many feature rows at once through the chain (one prediction and one exact TreeSHAP pass
    per step; the budget holds for each row's share of the step); rules always answer."""
    attempts = []
    for step, record, booster in scorer.steps:
        began = time.perf_counter()
        try:
            if booster is None:
                raise ModelError(scorer.load_errors.get(record.model_id, "model could not be loaded"))
            X = prepare(frame, record)
            matrix = xgb.DMatrix(X, enable_categorical=True, nthread=scorer.threads)
            scores = booster.predict(matrix)
            contribs = booster.predict(matrix, pred_contribs=True)[:, :-1]  # exact TreeSHAP, bias column dropped
        except (FraudlabError, xgb.core.XGBoostError, KeyError, ValueError) as exc:
            attempts.append(f"{step} {record.model_id}: failed ({exc})")
            continue
        ms = 1000 * (time.perf_counter() - began)
        share = ms / max(len(frame), 1)  # each event's share of the step: the budget holds per event
        if share > scorer.budget_ms:
            attempts.append(f"{step} {record.model_id}: over budget ({share:.1f} ms per event > "
                            f"{scorer.budget_ms:.0f} ms)")
            continue
        return RowsScore(np.asarray(scores, dtype=float), step, record.model_id, ms, tuple(record.features),
                         contribs, [], attempts, record.metrics.get("usual"))
    began = time.perf_counter()
    result = rules.score_rules(frame)
    return RowsScore(np.asarray(result.score, dtype=float), "rules", None, 1000 * (time.perf_counter() - began), (),
                     None, result.fired, attempts)
