"""Storing live events: one write per group of batches (transactions, labels, features, scores, alerts, cases,
answers), the repair of late events, and the replay of logged events a crash kept out of DuckDB."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from fraudlab.api.live import typed_rows
from fraudlab.api.queue import add_alert, add_history_rows, move_fingerprint, queue_state
from fraudlab.api.writer import Batch, logged, segments
from fraudlab.auth.actors import Actor
from fraudlab.errors import FraudlabError
from fraudlab.labels import insert_source_labels
from fraudlab.workspace import Workspace, utcnow

NEW_ROWS, FEATURES, SCORES, EVENTS = "_live_new", "_live_features", "_live_scores", "_live_events"  # a batch's rows


class Conflict(FraudlabError):
    """The transaction_id belongs to a transaction loaded in batch, not to an earlier API call (HTTP 409)."""


@dataclass
class Job:
    """One posted event waiting for its decision (`first`: the earlier copy of a repeated id in the same batch)."""

    row: dict
    extra: dict
    key_name: str | None
    began: float
    answer: dict | None = None
    error: Exception | None = None
    done: bool = False
    first: "Job | None" = None
    score: float | None = None  # as the scorer gave it (the answer rounds it; `scores` keeps it whole, as batch does)
    logged: int = 0  # the live log's batch sequence number holding it (answered once that is fsync'ed)
    received_at: datetime | None = None  # when it was posted (the write may follow later)
    on_ready: Callable[["Job"], None] | None = field(default=None, repr=False, compare=False)  # the decider calls it


def actor(jobs: list[Job]) -> Actor:
    """The integration the events' keys proved (the demo session when none)."""
    return Actor(f"api:{','.join(sorted({job.key_name or 'demo' for job in jobs}))}", "system", via="api")


def store(ws: Workspace, jobs: list[Job], new: pa.Table, frame: pd.DataFrame | pa.Table, threshold: float,
          bump: Callable[[bool], bool]) -> None:
    """One write: transactions, labels, features, scores, alerts and cases, the answers (case ids set)."""
    features = frame if isinstance(frame, pa.Table) else _frame(frame)
    details = {"transaction_ids": [j.row["transaction_id"] for j in jobs],
               "scorers": dict(Counter(j.answer["scorer"] for j in jobs)),
               "alerts": sum(j.answer["alert"] for j in jobs)}
    alerts = any(job.answer["alert"] for job in jobs)
    now = utcnow()
    scores = pa.table({
        "transaction_id": pa.array([j.row["transaction_id"] for j in jobs], pa.string()),
        "model_id": pa.array([j.answer["model_id"] for j in jobs], pa.string()),
        "score": pa.array([j.score for j in jobs], pa.float64()),
        "scorer": pa.array([j.answer["scorer"] for j in jobs], pa.string()),
        "latency_ms": pa.array([j.answer["latency_ms"] for j in jobs], pa.float64()),
        "scored_at": pa.array([now] * len(jobs), pa.timestamp("us")),
        "reasons": pa.array([json.dumps([{"feature": r["code"], "name": r["code"], "value": r["value"],
                                          "contribution": r["contribution"], "text": r["text"]}
                                         for r in j.answer["reasons"]], default=str) for j in jobs], pa.string())})
    with ws.write("api_score", actor(jobs), details, bump=bump(alerts)) as cur:
        fresh, window = queue_state(cur, threshold)
        regroup = False
        labelled = [(j.row["transaction_id"], j.row["is_fraud"]) for j in jobs if j.row.get("is_fraud") is not None]
        if labelled:  # a label sent with the event: stored like a loaded file's (known from the start)
            cur.register("_live_label_rows", pd.DataFrame({"transaction_id": [t for t, _ in labelled],
                                                           "is_fraud": [bool(f) for _, f in labelled]}))
            insert_source_labels(cur, "SELECT transaction_id, is_fraud, NULL::TIMESTAMP AS label_ts "
                                      "FROM _live_label_rows")
            cur.unregister("_live_label_rows")
        for name, relation in ((NEW_ROWS, new), (FEATURES, features), (SCORES, scores)):
            cur.register(name, relation)
        try:
            cur.execute(f"INSERT INTO features BY NAME SELECT * FROM {FEATURES}")
            cur.execute(f"INSERT INTO transactions BY NAME SELECT * FROM {NEW_ROWS}")
            cur.execute(f"INSERT INTO scores BY NAME SELECT * FROM {SCORES}")
            for job in jobs:
                tid = job.row["transaction_id"]
                case_id, late = (add_alert(cur, tid, window, SCORES, NEW_ROWS) if job.answer["alert"]
                                 else (None, False))
                regroup |= late
                job.answer["case_id"] = case_id
            add_history_rows(cur, NEW_ROWS, SCORES, FEATURES)
        finally:
            for name in (NEW_ROWS, FEATURES, SCORES):
                cur.unregister(name)
        if fresh and not regroup:  # the queue had every score before: it still has (no page rebuilds it)
            move_fingerprint(cur, threshold, window)
        events = pa.table({"transaction_id": pa.array([j.row["transaction_id"] for j in jobs], pa.string()),
                           "received_at": pa.array([j.received_at or now for j in jobs], pa.timestamp("us")),
                           "key_name": pa.array([j.key_name for j in jobs], pa.string()),
                           "answer": pa.array([json.dumps(j.answer, default=str) for j in jobs], pa.string()),
                           "extra": pa.array([json.dumps(j.extra, default=str) for j in jobs], pa.string())})
        cur.register(EVENTS, events)
        try:
            cur.execute(f"INSERT INTO api_events BY NAME SELECT * FROM {EVENTS}")
        finally:
            cur.unregister(EVENTS)


def _frame(features: pd.DataFrame | dict) -> pd.DataFrame:
    """A batch's feature rows as a frame with plain (object) categoricals."""
    frame = features if isinstance(features, pd.DataFrame) else pd.DataFrame(features)
    return frame.astype({c: object for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})


def _arrow_column(parts: list) -> pa.Array:
    """One feature column of many batches as Arrow: NumPy floats with NaN as NULL (as the frame path stores them),
    lists of values as they are."""
    if all(isinstance(p, np.ndarray) and p.dtype.kind == "f" for p in parts):
        values = np.concatenate(parts).astype(np.float64, copy=False)
        return pa.array(values, mask=np.isnan(values))
    return pa.array([v for p in parts for v in (p.tolist() if isinstance(p, np.ndarray) else p)], from_pandas=True)


def features_table(parts: list[pd.DataFrame | dict]) -> pd.DataFrame | pa.Table:
    """The feature rows of many batches as one relation to insert: Arrow when each batch is a dict of columns (the
    NumPy path's; no pandas frame per batch, which cost the writer more than its DuckDB write), else a frame."""
    if not all(isinstance(p, dict) for p in parts):
        return pd.concat([_frame(p) for p in parts], ignore_index=True)
    return pa.table({name: _arrow_column([p[name] for p in parts]) for name in parts[0]})


def store_group(ws: Workspace, group: list[Batch], bump: Callable[[bool], bool]) -> None:
    """Commit batches waiting in the writer: one write per run of batches with the same alert threshold."""
    runs: list[list[Batch]] = []
    for batch in group:
        if runs and runs[-1][0].threshold == batch.threshold:
            runs[-1].append(batch)
        else:
            runs.append([batch])
    for run in runs:
        jobs = [j for b in run for j in b.jobs]
        new = pa.concat_tables([b.new for b in run], promote_options="default")
        frame = features_table([b.frame for b in run])
        store(ws, jobs, new, frame, run[0].threshold, bump)
        repair(ws, [t for b in run for t in b.late], jobs)


def repair(ws: Workspace, late: list[str], jobs: list[Job]) -> None:
    """Later stored rows' windows now include these (stored) late events: repair their features, scores, cases."""
    if not late:
        return
    from fraudlab.config import load_config
    from fraudlab.incremental.arrivals import record_live_arrivals
    from fraudlab.pipeline import incremental_refresh

    record_live_arrivals(ws, late, load_config().late_horizon_hours)
    incremental_refresh(ws, actor(jobs), changed=late)


def replay(ws: Workspace, path: Path, column_types: dict[str, str], bump: Callable[[bool], bool]) -> None:
    """Store the logged events a crash left out of DuckDB (answered, logged, not committed)."""
    records = logged(path)
    ids = [r["row"]["transaction_id"] for r in records]
    if ids:
        done = set(ws.df("SELECT transaction_id FROM api_events WHERE transaction_id IN (SELECT unnest($i))",
                              {"i": ids})["transaction_id"])
        todo = [r for r in records if r["row"]["transaction_id"] not in done]
        if todo:
            from fraudlab.api.events import parse_time

            rows = [{**r["row"], "ts": parse_time(r["row"]["ts"])} for r in todo]
            jobs = [Job(row, r["extra"], r["key_name"], 0.0, r["answer"], score=r["score"],
                        received_at=parse_time(r["received_at"]) if r.get("received_at") else None)
                    for row, r in zip(rows, todo)]
            cur = ws.cursor()
            try:
                new = typed_rows(cur, rows, column_types)
            finally:
                cur.close()
            frame = pd.DataFrame([r["features"] for r in todo])
            store_group(ws, [Batch(jobs, new, frame, todo[0]["threshold"], [])], bump)
    for segment in segments(path):
        segment.unlink(missing_ok=True)


def first_copies(batch: list[Job], answers: dict, loaded: set) -> list[Job]:
    """The jobs to decide: stored answers replayed, ids loaded in batch refused, a repeated id left to its first
    copy."""
    fresh, first = [], {}
    for job in batch:
        tid = job.row["transaction_id"]
        if job.done:
            continue
        if tid in answers:
            job.answer, job.done = {**json.loads(answers[tid]), "replayed": True}, True
        elif tid in loaded:
            job.error = Conflict(f"transaction_id {tid!r} is already in the workspace (loaded in batch): "
                                 f"send new transactions only")
            job.done = True
        elif tid in first:
            job.first = first[tid]
        else:
            first[tid] = job
            fresh.append(job)
    return fresh
