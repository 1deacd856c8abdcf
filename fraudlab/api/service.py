"""Live scoring of one posted transaction: features, the fallback chain, the answer, and everything stored.

One :class:`LiveScoring` per open workspace (the server's); its lock makes live events of the same process follow
one another, so each sees the ones before it. The decision is made on point-in-time features computed as the batch
build computes them (:mod:`fraudlab.api.live`), by :class:`fraudlab.scoring.Scorer`'s chain champion -> previous
champion -> rules within a per-step budget; then one `Workspace.write` appends the transaction, its label (if sent),
its features, its score and, when it alerts, its alert and case, with the answer kept for retries.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import pandas as pd

from fraudlab.api.events import insert_sql, parse_event, row_select
from fraudlab.api.live import LivePlan, compute, features_stamp, live_plan
from fraudlab.api.queue import add_alert, add_history, move_fingerprint, queue_state
from fraudlab.errors import FraudlabError
from fraudlab.registry import models_stamp
from fraudlab.scoring import CaseScore, Scorer
from fraudlab.workspace import Workspace, utcnow

SCORE_BUDGET_MS = 50.0  # per model step of the chain; past it the next step answers
RECHECK_S = 1.0  # a changed feature set, registry or model file is noticed within this
TOP_REASONS = 5


class Conflict(FraudlabError):
    """The transaction_id belongs to a transaction loaded in batch, not to an earlier API call (HTTP 409)."""


class NotReady(FraudlabError):
    """The workspace has no features yet, or they were built from other settings (HTTP 503)."""


@dataclass
class _Models:
    key: tuple
    scorer: Scorer
    threshold: float


def _model_files(ws: Workspace) -> tuple:
    """Path, size and mtime of every model file in the registry: a removed or replaced file changes this."""
    out = []
    for path in sorted(ws.df("SELECT path FROM models")["path"]):
        file = ws.models_dir / str(path)
        stat = file.stat() if file.exists() else None
        out.append((str(path), None if stat is None else (stat.st_size, stat.st_mtime_ns)))
    return tuple(out)


def reason_codes(result: CaseScore) -> list[dict]:
    """What raised the risk, strongest first: a code (feature or rule name), its sentence and contribution."""
    table = result.contributions
    raised = table[(table["direction"] == "raises") & (table["feature"] != "(none)")].head(TOP_REASONS)
    return [{"code": str(r.feature), "text": str(r.text), "contribution": round(float(r.contribution), 6),
             "value": None if r.value is None or (isinstance(r.value, float) and r.value != r.value) else r.value}
            for r in raised.itertuples()]


class LiveScoring:
    """Scores posted transactions against one open workspace (plans and models loaded once, reloaded on change)."""

    def __init__(self, ws: Workspace, budget_ms: float = SCORE_BUDGET_MS, recheck_s: float = RECHECK_S) -> None:
        self.ws = ws
        self.budget_ms = budget_ms
        self.recheck_s = recheck_s  # how long a check that nothing changed (plan, models, columns) holds
        self._lock = threading.Lock()
        self._plan: LivePlan | None = None
        self._models: _Models | None = None
        self._types: dict[str, str] | None = None
        self._checked: dict[str, float] = {}

    def _due(self, what: str) -> bool:
        """True when `what` should be checked against the workspace again (at most every `recheck_s` seconds)."""
        now = time.monotonic()
        if now - self._checked.get(what, -1e18) < self.recheck_s:
            return False
        self._checked[what] = now
        return True

    # ------------------------------------------------------------------------------------------ cached state

    def column_types(self) -> dict[str, str]:
        """Column -> SQL type of `transactions` (re-read every `recheck_s`: a load may add columns)."""
        if self._types is None or self._due("types"):
            rows = self.ws.df("SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_name = 'transactions' ORDER BY ordinal_position")
            self._types = dict(zip(rows["column_name"], rows["data_type"]))
        return self._types

    def plan(self) -> LivePlan:
        """The live feature plan, rebuilt when the feature set changed."""
        if self._plan is not None and not self._due("plan"):
            return self._plan
        if not self.ws.has_table("features") or not self.ws.count("feature_meta"):
            raise NotReady("features are not built yet: open the app once (it prepares the workspace) or run "
                           "`python -m fraudlab features`")
        stamp = features_stamp(self.ws)
        if self._plan is None or self._plan.stamp != stamp:
            try:
                self._plan = live_plan(self.ws)
            except FraudlabError as exc:
                raise NotReady(str(exc)) from exc
        return self._plan

    def models(self) -> _Models:
        """The chain's models, reloaded when the registry changes or a model file is removed or replaced."""
        if self._models is not None and not self._due("models"):
            return self._models
        key = (models_stamp(self.ws), _model_files(self.ws))
        if self._models is None or self._models.key != key:
            scorer = Scorer(self.ws, budget_ms=self.budget_ms, threads=1)
            threshold = next((r.alert_threshold for s, r, _b in scorer.steps if s == "model"), 0.5)
            self._models = _Models(key, scorer, threshold)
        return self._models

    def status(self) -> dict:
        """What the health route reports: transactions, the scorer that would answer, why models are passed over."""
        models = self.models()
        usable = [(s, r.model_id) for s, r, b in models.scorer.steps if b is not None]
        return {"transactions": self.ws.count("transactions"), "scorer": usable[0][0] if usable else "rules",
                "model_id": usable[0][1] if usable else None, "alert_threshold": models.threshold,
                "model_problems": models.scorer.load_errors, "budget_ms": self.budget_ms}

    # ------------------------------------------------------------------------------------------ scoring

    def stored_answer(self, transaction_id: str) -> dict | None:
        """The answer an earlier call got for this transaction_id, if any."""
        text = self.ws.scalar("SELECT answer FROM api_events WHERE transaction_id = ?", [transaction_id])
        return None if text is None else json.loads(text)

    def score(self, payload: object, key_name: str | None = None) -> dict:
        """Decide one posted transaction and store it; a retry of the same transaction_id gets the stored answer."""
        began = time.perf_counter()
        types = self.column_types()
        row, extra = parse_event(payload, types)
        tid = row["transaction_id"]
        with self._lock:
            stored = self.stored_answer(tid)
            if stored is not None:
                return {**stored, "replayed": True}
            if self.ws.scalar("SELECT count(*) FROM features WHERE transaction_id = ?", [tid]):
                raise Conflict(f"transaction_id {tid!r} is already in the workspace (loaded in batch): "
                               f"send new transactions only")
            plan = self.plan()
            frame = self._features(row, types, plan)
            features_ms = 1000 * (time.perf_counter() - began)
            models = self.models()
            result = models.scorer.score_case(tid, frame)
            alert = bool(result.score >= models.threshold)
            answer = {"transaction_id": tid, "score": round(float(result.score), 6), "alert": alert,
                      "scorer": result.scorer, "model_id": result.model_id, "reasons": reason_codes(result),
                      "threshold": models.threshold, "passed_over": result.attempts,
                      "latency_ms": round(1000 * (time.perf_counter() - began), 3),
                      "features_ms": round(features_ms, 3), "ignored_fields": sorted(extra)}
            answer["case_id"] = self._store(row, types, extra, frame, answer, key_name, models.threshold)
        return answer

    def _features(self, row: dict, types: dict[str, str], plan: LivePlan) -> pd.DataFrame:
        cur = self.ws.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            return compute(cur, plan, row, row_select(row, types))
        finally:
            cur.close()

    def _store(self, row: dict, types: dict[str, str], extra: dict, frame: pd.DataFrame, answer: dict,
               key_name: str | None, threshold: float) -> str | None:
        """One write: transaction, label, features, score, alert and case, the answer; returns the case id."""
        tid = row["transaction_id"]
        features = frame.astype({c: object for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})
        reasons = json.dumps([{"feature": r["code"], "name": r["code"], "value": r["value"],
                               "contribution": r["contribution"], "text": r["text"]} for r in answer["reasons"]],
                             default=str)
        who = f"api:{key_name or 'demo'}"
        details = {"transaction_id": tid, "scorer": answer["scorer"], "alert": answer["alert"]}
        with self.ws.write("api_score", who, details, bump=answer["alert"]) as cur:
            fresh, window = queue_state(cur, threshold)
            sql, params = insert_sql("transactions", row, types)
            cur.execute(sql, params)
            if row.get("is_fraud") is not None:
                cur.execute("INSERT INTO labels (transaction_id, is_fraud, label_ts, source, recorded_at) "
                            "VALUES (?, ?, NULL, 'data', ?)", [tid, row["is_fraud"], utcnow()])
            cur.register("_live_features", features)
            cur.execute("INSERT INTO features BY NAME SELECT * FROM _live_features")
            cur.unregister("_live_features")
            cur.execute("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [tid, answer["model_id"], answer["score"], answer["scorer"], answer["latency_ms"], utcnow(),
                         reasons])
            case_id, late = add_alert(cur, tid, window) if answer["alert"] else (None, False)
            add_history(cur, tid)
            if fresh and not late:  # the queue had every score before: it still has (no page rebuilds it)
                move_fingerprint(cur, threshold, window)
            answer["case_id"] = case_id
            cur.execute("INSERT INTO api_events VALUES (?, ?, ?, ?, ?)",
                        [tid, utcnow(), key_name, json.dumps(answer, default=str), json.dumps(extra, default=str)])
        return case_id
