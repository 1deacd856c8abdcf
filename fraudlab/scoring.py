"""Batch scoring into `scores` (with exact explanations for the top cases) and single-case scoring with a fallback chain.

Fallback chain: champion -> previous champion -> rules. A failure or a latency-budget overrun at one step
passes the case to the next; the answer records which scorer answered and how long it took.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xgboost as xgb

from fraudlab import explain, jobs, rules
from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.auth.permissions import require
from fraudlab.batch_predict import Ahead, Piece, handed_frame, piece_of, predict_pieces, usable_booster
from fraudlab.errors import FraudlabError, ModelError
from fraudlab.features import feature_rows, has_features, load_frame
from fraudlab.jobs import Progress
from fraudlab.labels import resolved_sql
from fraudlab.model import evaluate
from fraudlab.registry import (
    ModelRecord,
    champion,
    get_model,
    prepare,
    previous_champion,
)
from fraudlab.workspace import Workspace, utcnow

CHUNK_ROWS = 1_000_000
EXPLAIN_TOP = 10_000
CASE_BUDGET_MS = 500.0  # an analyst opening a case; real-time callers pass their own budget


@dataclass(frozen=True)
class ScoreReport:
    """What a batch scoring run did and how fast, with an evaluation where labels exist."""

    model_id: str
    rows: int
    seconds: float
    explained: int
    explain_seconds: float
    metrics: dict = field(default_factory=dict)
    scorer: str = "model"  # model | fallback | rules: which step of the chain answered
    fallback_reasons: tuple[str, ...] = ()  # why earlier steps were passed over

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class CaseScore:
    """One case scored through the fallback chain, with its exact explanation."""

    transaction_id: str
    score: float
    scorer: str  # model | fallback | rules
    model_id: str | None
    latency_ms: float
    base_value: float
    contributions: pd.DataFrame  # feature, name, value, contribution, direction, text (most risk-raising first)
    reasons: list[str]  # what raised the risk ("why it was flagged")
    attempts: list[str] = field(default_factory=list)
    against: list[str] = field(default_factory=list)  # what lowered it ("what speaks against")


def _chunks(ws: Workspace, start, end, rows: int) -> list[tuple]:
    """Time boundaries splitting the window into pieces of about `rows` rows."""
    total = ws.scalar("SELECT count(*) FROM transactions WHERE ts BETWEEN $lo AND $hi", {"lo": start, "hi": end})
    pieces = max(int(np.ceil(total / rows)), 1)
    if pieces == 1:
        return [(start, end)]
    qs = [i / pieces for i in range(1, pieces)]
    cuts = ws.scalar("SELECT quantile_disc(ts, $q) FROM transactions WHERE ts BETWEEN $lo AND $hi",
                     {"q": qs, "lo": start, "hi": end})
    bounds = [start] + sorted(set(cuts)) + [end]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


@jobs.as_job('scoring')
def score_window(ws: Workspace, start: datetime | None = None, end: datetime | None = None,
                 model_id: str | None = None, explain_top: int = EXPLAIN_TOP, who: Actor = SYSTEM,
                 progress: Progress | None = None, explain_min_score: float | None = None,
                 rows: pa.Table | None = None, ahead: Ahead | None = None) -> ScoreReport:
    """Score every transaction of the window and explain the top-scored ones (only those scoring at least
    `explain_min_score`, e.g. the alert threshold, when given).

    `rows`: feature rows (with `ts`) to score instead of reading the window's: the incremental pipeline hands over
    the rows it just recomputed, so only they are rescored and the features table is not scanned again (the report
    then has no window metrics: those rows are not a window). `ahead`: those rows' scores predicted already
    (`batch_predict.Ahead`), used when the same model answers first.

    Without `model_id` the fallback chain answers: champion, else previous champion, else rules; a fallback is
    recorded in `scores.scorer` and as a 'scoring_fallback' audit row. A named `model_id` is used or refused.
    """
    progress = progress or (lambda _f, _m: None)
    if not has_features(ws):
        raise ModelError("features are missing or stale: build features first")
    if model_id:
        chain = [("model", get_model(ws, model_id))]
    else:
        current = champion(ws)
        if current is None:
            raise ModelError("no champion model yet: train one first")
        chain = [("model", current), ("fallback", previous_champion(ws))]
    began = time.perf_counter()
    if rows is not None and rows.num_rows == 0:  # nothing handed over: nothing to score or store
        return ScoreReport(chain[0][1].model_id, 0, 0.0, 0, 0.0)
    found = {} if ahead is None or rows is None else ahead.result()
    if rows is not None:
        given = found.get("given")
        given = handed_frame(ws, rows) if given is None else given
        start, end = given["ts"].min(), given["ts"].max()
        pieces = [piece_of(ws, given)]
    else:
        start = start or ws.scalar("SELECT min(ts) FROM transactions")
        end = end or ws.scalar("SELECT max(ts) FROM transactions")
        bounds = _chunks(ws, start, end, CHUNK_ROWS)
        pieces = [partial(_piece, ws, i, lo, hi, len(bounds)) for i, (lo, hi) in enumerate(bounds)]
    failures: list[str] = []
    for scorer, record in chain:
        if record is None:
            continue
        try:
            if found.get("model_id") == record.model_id:
                booster, scored = found["booster"], found["scored"]
            else:
                booster = usable_booster(ws, record)
                scored = predict_pieces(record, booster, pieces, progress)
        except ModelError as exc:
            if model_id:
                raise
            failures.append(f"{scorer} {record.model_id}: {exc}")
            continue
        seconds = time.perf_counter() - began + found.get("seconds", 0.0)
        progress(0.8, f"explaining the top {min(explain_top, scored.num_rows):,} cases")
        explain_began = time.perf_counter()
        reasons = explain_top_scores(ws, record, booster, scored, explain_top, explain_min_score,
                                     given=None if rows is None else given)
        answered = (scorer, record.model_id)
        break
    else:
        scored, reasons = _rules_window(ws, pieces, progress, explain_top)
        seconds = time.perf_counter() - began
        explain_began = time.perf_counter()
        answered = ("rules", None)
    explain_seconds = time.perf_counter() - explain_began
    per_row_ms = 1000 * seconds / max(scored.num_rows, 1)
    if failures:
        with ws.write("scoring_fallback", who, {"scorer": answered[0], "model_id": answered[1],
                                                "reason": "; ".join(failures)}):
            pass
    _store(ws, scored, reasons, answered[1], per_row_ms, who, (start, end), scorer=answered[0])
    metrics = evaluate_window(ws, start, end) if rows is None else {}
    progress(1.0, "scored")
    return ScoreReport(answered[1] or "rules", scored.num_rows, seconds, len(reasons), explain_seconds, metrics,
                       scorer=answered[0], fallback_reasons=tuple(failures))


def _piece(ws: Workspace, i: int, lo, hi, pieces: int, columns: list[str] | None) -> pd.DataFrame:
    """The feature rows of the i-th of `pieces` time slices of the window."""
    return load_frame(ws, where="t.ts >= $lo AND (t.ts < $hi OR ($last AND t.ts = $hi))",
                      params={"lo": lo, "hi": hi, "last": i == pieces - 1}, columns=columns)


def _rules_window(ws: Workspace, pieces: list[Piece], progress: Progress, top: int) -> tuple[pa.Table, pd.DataFrame]:
    """Rule scores over the window (the last step of the chain) and the fired rules of the top `top` as reasons."""
    present = set(ws.columns("features"))
    needed = [f for f in dict.fromkeys(c[0] for rule in rules.DEFAULT_RULES for c in rule.conditions) if f in present]
    parts, fired_ids, fired_texts = [], [], []
    for i, piece in enumerate(pieces):
        progress(0.8 * i / len(pieces), f"scoring part {i + 1} of {len(pieces)} with rules")
        frame = piece(needed or None)
        result = rules.score_rules(frame)
        ids = frame["transaction_id"].astype(object)
        parts.append(pa.table({"transaction_id": pa.array(ids, pa.string()),
                               "score": pa.array(result.score.astype(np.float64))}))
        fired_ids += [t for t, names in zip(ids, result.fired) if names]
        fired_texts += [json.dumps([{"feature": n, "name": n, "value": None, "contribution": 0.0, "text": d}
                                    for n, d in zip(names, rules.describe(names))]) for names in result.fired if names]
    scored = pa.concat_tables(parts)
    reasons = pd.DataFrame({"transaction_id": fired_ids, "reasons": fired_texts})
    if len(reasons) > top:
        score = dict(zip(scored["transaction_id"].to_pylist(), scored["score"].to_pylist()))
        reasons = reasons.assign(_s=reasons["transaction_id"].map(score)).nlargest(max(top, 0), "_s").drop(columns="_s")
    return scored, reasons


def explain_top_scores(ws: Workspace, record: ModelRecord, booster: xgb.Booster, scored: pa.Table, top: int,
                       min_score: float | None = None, given: pd.DataFrame | None = None) -> pd.DataFrame:
    """Exact TreeSHAP reasons (JSON) for the `top` highest scores (of those at least `min_score`); their feature
    rows from `given` when the caller has them, else from the features table."""
    scores = scored["score"].to_numpy()
    idx = np.argsort(-scores, kind="stable")[:max(top, 0)]
    if min_score is not None:
        idx = idx[scores[idx] >= min_score]
    if len(idx) == 0:
        return pd.DataFrame({"transaction_id": [], "reasons": []})
    ids = scored["transaction_id"].take(pa.array(idx)).to_pylist()
    columns = _with_baseline(ws, list(record.features))
    if given is not None:
        frame = given.loc[given["transaction_id"].isin(ids), ["transaction_id", "ts"] + columns]
    else:
        frame = load_frame(ws, where="f.transaction_id IN (SELECT unnest($ids))", params={"ids": ids}, columns=columns)
    X = prepare(frame, record)
    contribs, _ = explain.contributions(booster, X)
    reasons = explain.reasons_json(list(record.features), frame, contribs, usual=record.metrics.get("usual"))
    return pd.DataFrame({"transaction_id": frame["transaction_id"].to_numpy(), "reasons": reasons})


def _with_baseline(ws: Workspace, features: list[str]) -> list[str]:
    """Model features plus the customer-baseline columns the reason sentences quote (those the data has)."""
    present = set(ws.columns("features"))
    return list(dict.fromkeys(features + [c for c in ("amount", "c_amt_mean", "c_hist_cnt", "c_tenure_s")
                                          if c in present]))


def _store(ws: Workspace, scored: pa.Table, reasons: pd.DataFrame, model_id: str | None, per_row_ms: float, who: Actor,
           window: tuple, scorer: str = "model") -> None:
    """Replace the window's scores in one write: one current row per transaction."""
    reasons_table = pa.Table.from_pandas(reasons.astype({"transaction_id": object, "reasons": object}),
                                         preserve_index=False)
    with ws.write("scored", who, {"model_id": model_id, "scorer": scorer, "rows": scored.num_rows, "from": str(window[0]),
                                  "to": str(window[1])}) as cur:
        cur.register("_scored", scored)
        cur.register("_reasons", reasons_table)
        # the id range first: ids grow with time, so the zone maps skip the row groups of older scores (a full
        # scan of every stored id cost most of an incremental run's write); the IN keeps the result exact
        lo, hi = pc.min_max(scored["transaction_id"]).values()
        cur.execute("DELETE FROM scores WHERE transaction_id BETWEEN $lo AND $hi "
                    "AND transaction_id IN (SELECT transaction_id FROM _scored)", {"lo": lo.as_py(), "hi": hi.as_py()})
        cur.execute("""INSERT INTO scores SELECT s.transaction_id, $m, s.score, $scorer, $ms, $now, r.reasons
                       FROM _scored s LEFT JOIN _reasons r USING (transaction_id)""",
                    {"m": model_id, "scorer": scorer, "ms": per_row_ms, "now": utcnow()})
        cur.unregister("_scored")
        cur.unregister("_reasons")


def evaluate_window(ws: Workspace, start=None, end=None) -> dict:
    """Evaluation of current scores in a window against labels known now (empty when there are none)."""
    # the window's labels only: resolving every label of a large workspace costs more than the rest together
    frame = ws.df(f"""WITH w AS (SELECT transaction_id, amount, ts FROM transactions
                                 WHERE ($lo IS NULL OR ts >= $lo) AND ($hi IS NULL OR ts <= $hi)),
                           wl AS (SELECT * FROM labels WHERE transaction_id IN (SELECT transaction_id FROM w))
                      SELECT s.score, l.label, w.amount, w.ts FROM scores s JOIN w USING (transaction_id)
                      JOIN ({resolved_sql(None, 'wl')}) l USING (transaction_id)""",
                  {"lo": start, "hi": end})
    if frame.empty:
        return {}
    days = (frame["ts"].max() - frame["ts"].min()).total_seconds() / 86_400
    from fraudlab.model import decision_threshold

    return evaluate(frame["label"].astype(bool).to_numpy(), frame["score"].to_numpy(), frame["amount"].to_numpy(),
                    days, threshold=decision_threshold(ws))


class Scorer:
    """Single-case scoring through the fallback chain; load once (the UI caches it per workspace version)."""

    def __init__(self, ws: Workspace, budget_ms: float = CASE_BUDGET_MS, threads: int | None = None) -> None:
        self.ws = ws
        self.budget_ms = budget_ms
        self.threads = threads  # 1 for a server scoring single events: no thread-pool cost per row
        self.steps: list[tuple[str, ModelRecord, xgb.Booster | None]] = []
        self.load_errors: dict[str, str] = {}
        for scorer, record in (("model", champion(ws)), ("fallback", previous_champion(ws))):
            if record is None:
                continue
            try:
                booster = usable_booster(ws, record)
                if threads:
                    booster.set_param({"nthread": threads})
                self.steps.append((scorer, record, booster))
            except (ModelError, xgb.core.XGBoostError) as exc:
                self.steps.append((scorer, record, None))
                self.load_errors[record.model_id] = str(exc).splitlines()[0]
        self._warm_up()

    def _warm_up(self) -> None:
        """One throw-away prediction per model, so the first real case is not charged the start-up cost."""
        for _scorer, record, booster in self.steps:
            if booster is None:
                continue
            try:
                frame = feature_rows(self.ws, [self.ws.scalar("SELECT transaction_id FROM features LIMIT 1")],
                                     _with_baseline(self.ws, list(record.features)))
                if not frame.empty:
                    matrix = xgb.DMatrix(prepare(frame, record), enable_categorical=True)
                    booster.predict(matrix, pred_contribs=True)
            except (FraudlabError, xgb.core.XGBoostError, KeyError, ValueError):
                continue  # a broken model shows up when a case is scored

    def _row(self, transaction_id: str, features: list[str], given: pd.DataFrame | None = None) -> pd.DataFrame:
        if given is not None:
            return given
        frame = feature_rows(self.ws, [transaction_id], _with_baseline(self.ws, features))
        if frame.empty:
            raise FraudlabError(f"no features for transaction {transaction_id!r}")
        return frame

    def score_case(self, transaction_id: str, given: pd.DataFrame | None = None) -> CaseScore:
        """Score and explain one transaction; a broken or missing model passes the case on, rules always answer.

        `given` is its feature row when it is not in the features table yet (a live event being decided).
        """
        attempts = []
        for scorer, record, booster in self.steps:
            began = time.perf_counter()
            try:
                if booster is None:
                    raise ModelError(self.load_errors.get(record.model_id, "model could not be loaded"))
                frame = self._row(transaction_id, list(record.features), given)
                X = prepare(frame, record)
                score = float(booster.predict(xgb.DMatrix(X, enable_categorical=True, nthread=self.threads))[0])
                contribs, bias = explain.contributions(booster, X, self.threads)
                table = explain.reason_frame(list(record.features), frame.iloc[0], contribs[0],
                                             usual=record.metrics.get("usual"))
            except (FraudlabError, xgb.core.XGBoostError, KeyError, ValueError) as exc:
                attempts.append(f"{scorer} {record.model_id}: failed ({exc})")
                continue
            ms = 1000 * (time.perf_counter() - began)
            if ms > self.budget_ms:
                attempts.append(f"{scorer} {record.model_id}: over budget ({ms:.0f} ms > {self.budget_ms:.0f} ms)")
                continue
            return CaseScore(transaction_id, score, scorer, record.model_id, ms, float(bias[0]), table,
                             explain.flagged_because(table), attempts, explain.speaks_against(table))
        return self._rules(transaction_id, attempts, given)

    def _rules(self, transaction_id: str, attempts: list[str], given: pd.DataFrame | None = None) -> CaseScore:
        began = time.perf_counter()
        frame = feature_rows(self.ws, [transaction_id]) if given is None else given
        if frame.empty:
            raise FraudlabError(f"no features for transaction {transaction_id!r}: build features first")
        result = rules.score_rules(frame)
        texts = rules.describe(result.fired[0]) or ["no rule fired"]
        fired = result.fired[0] or ["(none)"]
        table = pd.DataFrame({"feature": fired, "name": fired, "value": [None] * len(fired),
                              "contribution": [0.0] * len(fired), "direction": ["raises"] * len(fired), "text": texts})
        return CaseScore(transaction_id, float(result.score[0]), "rules", None, 1000 * (time.perf_counter() - began),
                         0.0, table, texts, attempts)


def score_case(ws: Workspace, transaction_id: str, scorer: Scorer | None = None) -> CaseScore:
    """Score and explain one case now (champion -> previous champion -> rules)."""
    return (scorer or Scorer(ws)).score_case(transaction_id)


def stored_reasons(ws: Workspace, transaction_id: str) -> pd.DataFrame:
    """The reasons stored with a transaction's current score (empty frame when it was not explained)."""
    text = ws.scalar("SELECT reasons FROM scores WHERE transaction_id = ?", [transaction_id])
    return pd.DataFrame(json.loads(text)) if text else pd.DataFrame(columns=["feature", "value", "contribution", "text"])


def clear_scores(ws: Workspace, who: Actor | None) -> int:
    """Forget every stored score (before rescoring from scratch); audited; returns how many were removed."""
    require(ws, who, "clear_data")
    with ws.write("scores_cleared", who) as cur:
        return int(cur.execute("DELETE FROM scores").fetchone()[0])


def recent_fallbacks(ws: Workspace, limit: int = 10) -> pd.DataFrame:
    """The latest batch-scoring runs that did not get an answer from the champion: when, who answered, and why."""
    frame = ws.df("""SELECT logged_at, who, json_extract_string(details, '$.scorer') AS scorer,
                            json_extract_string(details, '$.model_id') AS answered_by,
                            json_extract_string(details, '$.reason') AS reason
                     FROM audit WHERE action = 'scoring_fallback' ORDER BY audit_id DESC LIMIT ?""", [int(limit)])
    return frame
