"""Batch prediction of feature rows by one model: its booster checked against the features table, the scores of a
window's pieces, and the rows the incremental pipeline hands over predicted ahead, on another thread, while their
features are still being written. No storing here: `fraudlab.scoring` decides which model answers and stores."""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xgboost as xgb

from fraudlab.errors import FraudlabError, ModelError
from fraudlab.features import categorised, feature_columns
from fraudlab.jobs import Progress
from fraudlab.registry import ModelRecord, champion, check_features, load_booster, model_matrix
from fraudlab.workspace import Workspace

Piece = Callable[[list[str] | None], pd.DataFrame]  # feature columns -> the rows of one slice of the window


def usable_booster(ws: Workspace, record: ModelRecord) -> xgb.Booster:
    """The model's booster once its file checks out and the features table has every feature it needs."""
    check_features(ws, record)
    return load_booster(record)


def predict_pieces(record: ModelRecord, booster: xgb.Booster, pieces: list[Piece], progress: Progress) -> pa.Table:
    """Scores of one model over the window's pieces; a booster that cannot predict is a ModelError."""
    parts = []
    for i, piece in enumerate(pieces):
        progress(0.8 * i / len(pieces), f"scoring part {i + 1} of {len(pieces)}")
        frame = piece(list(record.features))
        try:
            score = booster.inplace_predict(model_matrix(frame, record), validate_features=False)
        except (xgb.core.XGBoostError, ValueError) as exc:
            raise ModelError(f"model {record.model_id} could not score: {str(exc).strip().splitlines()[0]}") from exc
        ids = pa.array(frame["transaction_id"]).cast(pa.string())  # Arrow-backed: no Python string per row (GIL)
        parts.append(pa.table({"transaction_id": ids,
                               "score": pa.array(score.astype(np.float64))}))
    return pa.concat_tables(parts)


def handed_frame(ws: Workspace, rows: pa.Table) -> pd.DataFrame:
    """Handed-over rows sorted as a window is read (in Arrow, several times faster than pandas), categories typed."""
    return categorised(ws, rows.take(pc.sort_indices(rows, [("ts", "ascending"), ("transaction_id", "ascending")]))
                       .to_pandas())


def piece_of(ws: Workspace, given: pd.DataFrame) -> Piece:
    """The handed-over rows as the one piece of their window."""
    return lambda columns: given[["transaction_id", "ts"] + (columns or feature_columns(ws))]


class Ahead:
    """The champion's scores of handed-over feature rows (with `ts`, as `score_window` takes them), predicted on
    another thread, started at once, while those rows are still being written; `score_window` uses them when that
    model still answers first."""

    def __init__(self, ws: Workspace, rows: pa.Table) -> None:
        self._found: dict = {}
        self._thread = threading.Thread(target=self._predict, args=(ws, rows), name="predict-ahead", daemon=True)
        self._thread.start()

    def _predict(self, ws: Workspace, rows: pa.Table) -> None:
        began = time.perf_counter()
        try:
            record = champion(ws)
            if record is None:
                return
            booster = usable_booster(ws, record)
            given = handed_frame(ws, rows)
            scored = predict_pieces(record, booster, [piece_of(ws, given)], lambda _f, _m: None)
        except (FraudlabError, xgb.core.XGBoostError, OSError, ValueError):
            return  # score_window's own chain then decides, and records any fallback
        self._found = {"model_id": record.model_id, "booster": booster, "given": given, "scored": scored,
                       "seconds": time.perf_counter() - began}

    def result(self) -> dict:
        """model_id, booster, given (the rows as a frame), scored and seconds; {} when it could not predict."""
        self._thread.join()
        return self._found
