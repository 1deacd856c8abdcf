"""Time-honest evaluation the way the fraud-detection literature does it: train up to a cut-off, wait out the label
delay, test on the days after, with customers already known as compromised taken out.

The protocol (Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection*): a model trained on
rows up to `train_to`, with the labels known by the start of the test; a gap of `delay` days in which labels of the
training period arrive; a test period scored by that model. With `exclude_known_compromised`, each test day drops
the customers who had a fraud known by then (fraud time + delay, or its label time). Reported: PR-AUC (average
precision) and ROC-AUC over the test rows, and card precision@k per day (of the k customers with the highest
score that day, the share with a fraud that day; customers found on earlier test days are not counted again).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.errors import ModelError
from fraudlab.features import load_frame
from fraudlab.labels import resolved_sql
from fraudlab.model import TrainResult, train_model
from fraudlab.registry import prepare
from fraudlab.workspace import Workspace, utcnow

TOP_K = 100


@dataclass(frozen=True)
class Protocol:
    """What was trained on and tested, in dates."""

    train_to: datetime
    delay_days: float
    test_from: datetime
    test_to: datetime
    exclude_known_compromised: bool
    top_k: int = TOP_K
    known_since: datetime | None = None  # frauds before this are not counted as known (None: all history)

    def describe(self) -> str:
        """The protocol in one sentence, printed with the results."""
        since = f" since {self.known_since:%Y-%m-%d}" if self.known_since else ""
        removed = (f"customers with a fraud{since} known by each test day removed" if self.exclude_known_compromised
                   else "every test row kept")
        return (f"trained on labelled rows up to {self.train_to:%Y-%m-%d %H:%M} with the labels known at "
                f"{self.test_from:%Y-%m-%d}; {self.delay_days:g}-day label delay; tested on "
                f"{self.test_from:%Y-%m-%d} to {self.test_to:%Y-%m-%d} ({removed}); card precision@{self.top_k} "
                f"per day")


@dataclass(frozen=True)
class Evaluation:
    """An evaluation run: the protocol, the headline numbers, per-day card precision, and the trained model."""

    protocol: Protocol
    rows: int
    frauds: int
    removed_rows: int
    pr_auc: float | None
    roc_auc: float | None
    card_precision: float | None
    per_day: pd.DataFrame = field(repr=False)
    train: TrainResult | None = field(default=None, repr=False)

    def to_json(self) -> str:
        """JSON of the run (without the model), for the `evaluations` table."""
        data = {k: v for k, v in asdict(self).items() if k not in ("per_day", "train", "protocol")}
        data["protocol"] = {k: str(v) for k, v in asdict(self.protocol).items()}
        data["per_day"] = self.per_day.astype({"day": str}).to_dict("records")
        return json.dumps(data, default=str)


def default_protocol(ws: Workspace, train_to: datetime | None = None, delay_days: float = 7.0,
                     test_from: datetime | None = None, test_to: datetime | None = None,
                     exclude_known_compromised: bool = True, top_k: int = TOP_K,
                     known_since: datetime | None = None) -> Protocol:
    """Fill what the user left out: train up to three weeks before the end, wait `delay_days`, test a week."""
    last = pd.Timestamp(ws.scalar("SELECT max(ts) FROM transactions"))
    if train_to is None:
        train_to = (last - pd.Timedelta(days=delay_days + 7)).normalize()
    train_to = pd.Timestamp(train_to)
    test_from = pd.Timestamp(test_from) if test_from is not None else (train_to + pd.Timedelta(days=delay_days))
    test_to = pd.Timestamp(test_to) if test_to is not None else test_from + pd.Timedelta(days=7)
    if test_from <= train_to:
        raise ModelError(f"the test period ({test_from:%Y-%m-%d}) must start after the training cut-off "
                         f"({train_to:%Y-%m-%d})")
    return Protocol(train_to.to_pydatetime(), float(delay_days), test_from.to_pydatetime(), test_to.to_pydatetime(),
                    exclude_known_compromised, top_k,
                    None if known_since is None else pd.Timestamp(known_since).to_pydatetime())


def _test_rows(ws: Workspace, protocol: Protocol, features: list[str]) -> pd.DataFrame:
    """Test-period feature rows with their label (as known now) and customer."""
    frame = load_frame(ws, where="t.ts >= $lo AND t.ts < $hi", columns=features,
                       extra="l.label, t.customer_id AS __customer",
                       join=f"JOIN ({resolved_sql(None)}) l USING (transaction_id)",
                       params={"lo": protocol.test_from, "hi": protocol.test_to})
    frame["__day"] = frame["ts"].dt.floor("D")
    return frame


def _known_compromised(ws: Workspace, protocol: Protocol) -> pd.DataFrame:
    """(customer, known_at): when each customer's first fraud became known (label time, or fraud time + delay)."""
    return ws.df(f"""SELECT t.customer_id AS __customer,
                            min(coalesce(k.label_ts, t.ts + to_seconds($delay))) AS known_at
                     FROM transactions t JOIN ({resolved_sql(None)}) l USING (transaction_id)
                     LEFT JOIN (SELECT transaction_id, min(label_ts) AS label_ts FROM labels WHERE is_fraud
                                GROUP BY 1) k USING (transaction_id)
                     WHERE l.label AND t.customer_id IS NOT NULL AND t.ts < $hi AND ($since IS NULL OR t.ts >= $since)
                     GROUP BY 1""",
                 {"delay": protocol.delay_days * 86_400, "hi": protocol.test_to, "since": protocol.known_since})


def card_precision_per_day(frame: pd.DataFrame, top_k: int = TOP_K) -> pd.DataFrame:
    """Per test day: of the top-k customers by their highest score, the share with a fraud that day; customers
    found on an earlier day are left out of later days (as in the literature).

    >>> f = pd.DataFrame({"__day": ["d1"] * 3 + ["d2"] * 2, "__customer": ["a", "b", "c", "a", "b"],
    ...                   "score": [0.9, 0.2, 0.1, 0.9, 0.8], "label": [True, False, False, True, True]})
    >>> card_precision_per_day(f, top_k=1)["card_precision"].tolist()
    [1.0, 1.0]
    """
    found: set = set()
    rows = []
    for day, part in frame.groupby("__day", sort=True):
        part = part[~part["__customer"].isin(found)]
        per_customer = part.groupby("__customer").agg(score=("score", "max"), fraud=("label", "max"))
        top = per_customer.sort_values("score", ascending=False).head(top_k)
        hits = top.index[top["fraud"].astype(bool)]
        found.update(hits)
        rows.append({"day": day, "customers": len(per_customer), "compromised": int(per_customer["fraud"].sum()),
                     "card_precision": len(hits) / top_k})
    return pd.DataFrame(rows, columns=["day", "customers", "compromised", "card_precision"])


def evaluate_protocol(ws: Workspace, protocol: Protocol, result: TrainResult | None = None,
                      search: bool = False) -> Evaluation:
    """Train (unless given a result) up to the cut-off with labels known at the test start, score the test period."""
    if result is None:
        result = train_model(ws, train_to=protocol.train_to, as_of=protocol.test_from, search=search)
    features = list(result.features)
    frame = _test_rows(ws, protocol, features)
    before = len(frame)
    if protocol.exclude_known_compromised and frame["__customer"].notna().any():
        known = _known_compromised(ws, protocol)
        frame = frame.merge(known, on="__customer", how="left")
        frame = frame[~(frame["known_at"] <= frame["__day"])].drop(columns="known_at")
    if frame.empty:
        raise ModelError(f"no labelled rows in the test period {protocol.test_from:%Y-%m-%d} to "
                         f"{protocol.test_to:%Y-%m-%d}")
    record = _Record(tuple(features), result.categories)
    frame["score"] = result.booster.predict(xgb.DMatrix(prepare(frame, record), enable_categorical=True))
    y = frame["label"].astype(bool).to_numpy()
    both = y.any() and not y.all()
    per_day = card_precision_per_day(frame, protocol.top_k) if frame["__customer"].notna().any() else pd.DataFrame(
        columns=["day", "customers", "compromised", "card_precision"])
    return Evaluation(protocol, len(frame), int(y.sum()), before - len(frame),
                      float(average_precision_score(y, frame["score"])) if both else None,
                      float(roc_auc_score(y, frame["score"])) if both else None,
                      float(per_day["card_precision"].mean()) if len(per_day) else None, per_day, result)


@dataclass(frozen=True)
class _Record:
    """The two things `registry.prepare` reads of a model, for a booster not registered yet."""

    features: tuple[str, ...]
    categories: dict


def save_evaluation(ws: Workspace, evaluation: Evaluation, model_id: str, who: Actor = SYSTEM) -> int:
    """Store the run beside its model (table `evaluations`); returns the run id."""
    with ws.write("evaluation", who, {"model_id": model_id, "pr_auc": evaluation.pr_auc}) as cur:
        run_id = int(cur.execute("SELECT nextval('evaluation_seq')").fetchone()[0])
        cur.execute("INSERT INTO evaluations VALUES (?, ?, ?, ?)", [run_id, model_id, utcnow(), evaluation.to_json()])
    return run_id


def list_evaluations(ws: Workspace, model_id: str | None = None) -> pd.DataFrame:
    """Stored evaluation runs (newest first), with their headline numbers as columns."""
    frame = ws.df("SELECT * FROM evaluations WHERE $m IS NULL OR model_id = $m ORDER BY run_id DESC", {"m": model_id})
    results = [json.loads(r) for r in frame.pop("results")]
    for key in ("pr_auc", "roc_auc", "card_precision", "rows", "frauds", "removed_rows"):
        frame[key] = [r.get(key) for r in results]
    frame["protocol"] = [json.dumps(r.get("protocol")) for r in results]
    return frame
