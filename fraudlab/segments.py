"""Customer segments: RFM-style customer features in DuckDB, K-Means with k by silhouette, readable names,
and the managers' numbers per segment (fraud, losses, alerts, workload, weekly trend, propensity to turn bad).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.cluster import KMeans
from sklearn.metrics import roc_auc_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.auth.permissions import require
from fraudlab.errors import FraudlabError
from fraudlab.features import source_columns
from fraudlab.jobs import Progress
from fraudlab.labels import resolved_sql
from fraudlab.workspace import Workspace, utcnow

K_RANGE = range(3, 9)
SILHOUETTE_SAMPLE = 4_000
FIT_SAMPLE = 200_000
# card-not-present channels under the names real data uses for them
ONLINE_SQL = ("lower(trim(channel)) IN ('online', 'ecommerce', 'e-commerce', 'web', 'internet', 'cnp', "
              "'card_not_present', 'card-not-present', 'app', 'in-app', 'mobile_app')")
LOG_FEATURES = ("frequency", "monetary", "avg_ticket", "ticket_spread", "recency_days", "tenure_days",
                "distinct_merchants", "distinct_devices")

MIN_CUSTOMERS = 10


@dataclass(frozen=True)
class SegmentReport:
    """Result of segmenting: how many customers, the chosen k, silhouette per k, profiles, timing."""

    customers: int
    k: int
    silhouette: dict[int, float]
    profiles: pd.DataFrame
    seconds: float
    skipped: list[str] = field(default_factory=list)


def customer_features(ws: Workspace, as_of: datetime | None = None) -> pd.DataFrame:
    """One row per customer from transactions before `as_of` (default: all), computed in DuckDB."""
    cols = set(source_columns(ws))
    if "customer_id" not in cols:
        raise FraudlabError("segments need a customer_id column; this data has none")
    select = ["customer_id", "count(*) AS frequency", "sum(amount) AS monetary", "avg(amount) AS avg_ticket",
              "coalesce(stddev_samp(amount), 0) AS ticket_spread",
              "(epoch($as_of) - epoch(max(ts))) / 86400 AS recency_days",
              "(epoch($as_of) - epoch(min(ts))) / 86400 AS tenure_days",
              "avg(CASE WHEN hour(ts) < 6 THEN 1.0 ELSE 0.0 END) AS night_share"]
    if "channel" in cols:
        select.append(f"avg(CASE WHEN {ONLINE_SQL} THEN 1.0 ELSE 0.0 END) AS online_share")
    if "country" in cols:
        select.append("avg(CASE WHEN country <> home THEN 1.0 ELSE 0.0 END) AS foreign_share")
    if "merchant_id" in cols:
        select.append("count(DISTINCT merchant_id) AS distinct_merchants")
    if "device_id" in cols:
        select.append("count(DISTINCT device_id) AS distinct_devices")
    home = ("LEFT JOIN (SELECT customer_id, mode(country) AS home FROM transactions WHERE ts < $as_of "
            "GROUP BY 1) h USING (customer_id)") if "country" in cols else ""
    as_of = as_of or ws.scalar("SELECT max(ts) FROM transactions") + pd.Timedelta(seconds=1)
    return ws.df(f"""SELECT {', '.join(select)} FROM transactions t {home}
                     WHERE t.ts < $as_of AND t.customer_id IS NOT NULL GROUP BY customer_id ORDER BY customer_id""",
                 {"as_of": as_of})


def _matrix(features: pd.DataFrame) -> np.ndarray:
    """Log-transform the skewed columns, keep shares as they are."""
    data = features.drop(columns=["customer_id"]).astype(float).fillna(0.0)
    for col in LOG_FEATURES:
        if col in data:
            data[col] = np.log1p(data[col].clip(lower=0))
    return data.to_numpy()


def choose_k(X: np.ndarray, seed: int = 0, k_range=K_RANGE) -> tuple[int, dict[int, float]]:
    """The k with the best silhouette on a sample (seeded), and the silhouette of every k tried."""
    rng = np.random.default_rng(seed)
    sample = X[rng.choice(len(X), size=min(len(X), SILHOUETTE_SAMPLE), replace=False)]
    scores = {}
    for k in k_range:
        if k >= len(sample):
            break
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(sample)
        scores[k] = float(silhouette_score(sample, labels, random_state=seed))
    if not scores:
        raise FraudlabError("too few customers to segment")
    return max(scores, key=scores.get), scores


def fit_segments(features: pd.DataFrame, k: int | None = None, seed: int = 0) -> tuple[np.ndarray, dict[int, float]]:
    """K-Means labels for every customer (k by silhouette unless given), fitted on a seeded sample."""
    X = StandardScaler().fit_transform(_matrix(features))
    silhouettes = {}
    if k is None:
        k, silhouettes = choose_k(X, seed)
    rng = np.random.default_rng(seed)
    fit_rows = X[rng.choice(len(X), size=min(len(X), FIT_SAMPLE), replace=False)]
    model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(fit_rows)
    labels = model.predict(X)
    # stable ids: segments numbered by size, largest first
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    relabel = np.empty(k, dtype=int)
    relabel[order] = np.arange(k)
    return relabel[labels], silhouettes


TRAITS = [  # (column, high word, low word)
    ("frequency", "frequent", "occasional"), ("avg_ticket", "big-ticket", "small-ticket"),
    ("online_share", "online", "in-store"), ("foreign_share", "cross-border", None), ("night_share", "night-time", None),
    ("tenure_days", None, "new"), ("recency_days", "lapsed", None), ("distinct_devices", "multi-device", None),
]


SHARES = ("online_share", "foreign_share", "night_share")


def name_segments(profiles: pd.DataFrame, population: pd.Series) -> list[str]:
    """Readable, unique names: each segment's median customer against the population's median customer."""
    names = []
    for _, row in profiles.iterrows():
        scored = []
        for col, hi, lo in TRAITS:
            if col not in row or col not in population:
                continue
            if col in SHARES:
                strength = float(row[col] - population[col]) / 0.15  # 15 points above the median customer counts
            else:
                strength = float(np.log((row[col] + 1e-9) / (population[col] + 1e-9)) / np.log(1.6))
            word = hi if strength > 0 else lo
            if word and abs(strength) >= 1:
                scored.append((abs(strength), word))
        names.append([w for _, w in sorted(scored, reverse=True)])
    return _distinct_names(names)


def _distinct_names(ranked_words: list[list[str]], size: int = 3) -> list[str]:
    """Names of up to `size` words that no other segment's name repeats or contains (as a set of words): a name
    that would echo another takes its next strongest trait, and a number only when traits run out.

    >>> _distinct_names([["lapsed", "occasional"], ["occasional", "lapsed", "new"], []])
    ['lapsed occasional customers', 'new occasional lapsed customers', 'typical customers']
    """
    chosen: list[list[str]] = []
    for words in ranked_words:
        pick = words[:size] or ["typical"]
        for extra in words[size:]:
            if not any(set(pick) <= set(other) or set(other) <= set(pick) for other in chosen):
                break
            pick = pick[:-1] + [extra]
        chosen.append(pick)
    for i, pick in enumerate(chosen):  # a word set inside another's: lead with what only this one has
        others = [set(o) for j, o in enumerate(chosen) if j != i]
        if any(set(pick) <= o or o <= set(pick) for o in others):
            own = [w for w in pick if not any(w in o for o in others)]
            chosen[i] = own + [w for w in pick if w not in own]
    names = [" ".join(pick) + " customers" for pick in chosen]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def profile(features: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Median of each customer feature per segment, with its size."""
    data = features.drop(columns=["customer_id"]).assign(segment_id=labels)
    out = data.groupby("segment_id").median()
    out.insert(0, "customers", data.groupby("segment_id").size())
    return out.reset_index()




def segment_customers(ws: Workspace, k: int | None = None, seed: int = 0, who: Actor = SYSTEM,
                      progress: Progress | None = None) -> SegmentReport:
    """Segment every customer, store the assignment and profiles (audited); return what was found."""
    require(ws, who, "resegment")
    progress = progress or (lambda _f, _m: None)
    began = time.perf_counter()
    progress(0.05, "customer features in DuckDB")
    features = customer_features(ws)
    if len(features) < MIN_CUSTOMERS:
        raise FraudlabError(f"only {len(features)} customers: too few to segment")
    progress(0.35, "choosing k by silhouette" if k is None else f"K-Means with k={k}")
    labels, silhouettes = fit_segments(features, k, seed)
    k = int(labels.max()) + 1
    profiles = profile(features, labels)
    profiles.insert(1, "segment_name", name_segments(profiles, features.drop(columns=["customer_id"]).median()))
    progress(0.85, "saving segments")
    now = utcnow()
    names = profiles.set_index("segment_id")["segment_name"]
    assigned = pd.DataFrame({"customer_id": features["customer_id"].astype(object), "segment_id": labels.astype(int),
                             "segment_name": names.loc[labels].to_numpy().astype(object), "assigned_at": now})
    stored = profiles.assign(profile=[row.drop(["segment_id", "segment_name", "customers"]).to_json()
                                      for _, row in profiles.iterrows()], created_at=now)
    with ws.write("segmented", who, {"k": k, "customers": len(features), "seed": seed}) as cur:
        cur.register("_assigned", assigned)
        cur.register("_profiles", stored[["segment_id", "segment_name", "customers", "profile", "created_at"]])
        cur.execute("DELETE FROM customer_segments")
        cur.execute("INSERT INTO customer_segments SELECT * FROM _assigned")
        cur.execute("DELETE FROM segment_profiles")
        cur.execute("INSERT INTO segment_profiles SELECT * FROM _profiles")
    progress(1.0, "segments ready")
    skipped = [c for c in ("online_share", "foreign_share", "distinct_merchants", "distinct_devices")
               if c not in features]
    return SegmentReport(len(features), k, silhouettes, profiles, time.perf_counter() - began, skipped)


def has_segments(ws: Workspace) -> bool:
    """True when customers have been segmented."""
    return ws.count("customer_segments") > 0


def can_segment(ws: Workspace) -> bool:
    """True when there are enough customers with an id to segment (real data may have none)."""
    return int(ws.scalar("SELECT count(DISTINCT customer_id) FROM transactions") or 0) >= MIN_CUSTOMERS


def missing_features(ws: Workspace) -> list[str]:
    """Customer features that cannot be computed because the data lacks their column (shown on the page)."""
    cols = set(source_columns(ws))
    needs = {"online_share": "channel", "foreign_share": "country", "distinct_merchants": "merchant_id",
             "distinct_devices": "device_id"}
    return [f"{feature} (no {column} column)" for feature, column in needs.items() if column not in cols]


def segment_names(ws: Workspace) -> pd.DataFrame:
    """Segment ids and names."""
    if not has_segments(ws):
        return pd.DataFrame(columns=["segment_id", "segment_name"])
    return ws.df("SELECT segment_id, segment_name FROM segment_profiles ORDER BY segment_id")


def segment_profiles(ws: Workspace) -> pd.DataFrame:
    """Stored profiles: one row per segment with its median customer features."""
    frame = ws.df("SELECT segment_id, segment_name, customers, profile FROM segment_profiles ORDER BY segment_id")
    return pd.concat([frame.drop(columns=["profile"]), pd.DataFrame([json.loads(p) for p in frame["profile"]])], axis=1)


# analyst decisions override the source label (the newest analyst label per transaction wins)
_FRAUD_JOIN = f"LEFT JOIN ({resolved_sql(None)}) lab USING (transaction_id)"
_FRAUD = "coalesce(lab.label, false)"


def segment_summary(ws: Workspace, threshold: float = 0.5) -> pd.DataFrame:
    """Per segment: customers, transactions, amount, labelled fraud and losses, alerts and analyst workload.

    Fraud is the source label unless an analyst decided otherwise; alerts are scored transactions at or above
    `threshold`; `decided` counts transactions with an analyst decision, `open_alerts` the alerts without one.
    """
    scores = "LEFT JOIN scores s USING (transaction_id)" if ws.has_table("scores") else ""
    alert = "(s.score >= $threshold)" if scores else "false"
    return ws.df(f"""WITH d AS (SELECT DISTINCT case_id FROM decisions)
                     SELECT cs.segment_id, cs.segment_name, count(DISTINCT t.customer_id) AS customers,
                            count(*) AS transactions, sum(t.amount) AS amount,
                            count(*) FILTER ({_FRAUD}) AS fraud, avg({_FRAUD}::DOUBLE) AS fraud_rate,
                            coalesce(sum(t.amount) FILTER ({_FRAUD}), 0) AS fraud_losses,
                            count(*) FILTER ({alert}) AS alerts,
                            count(d.case_id) AS decided,
                            count(*) FILTER ({alert} AND d.case_id IS NULL) AS open_alerts
                     FROM transactions t JOIN customer_segments cs USING (customer_id) {scores} {_FRAUD_JOIN}
                          LEFT JOIN d ON d.case_id = t.transaction_id
                     GROUP BY 1, 2 ORDER BY 1""", {"threshold": threshold} if scores else None)


def weekly_trend(ws: Workspace) -> pd.DataFrame:
    """Per segment and complete week (a week the data covers to its end): transactions, labelled fraud count and
    rate, fraud losses. A partial last week would read as a fall in fraud."""
    return ws.df(f"""SELECT cs.segment_name, CAST(date_trunc('week', t.ts) AS DATE) AS week, count(*) AS transactions,
                            count(*) FILTER ({_FRAUD}) AS fraud, avg({_FRAUD}::DOUBLE) AS fraud_rate,
                            coalesce(sum(t.amount) FILTER ({_FRAUD}), 0) AS fraud_losses
                     FROM transactions t JOIN customer_segments cs USING (customer_id) {_FRAUD_JOIN}
                     WHERE date_trunc('week', t.ts) + INTERVAL 7 DAY <= (SELECT max(ts) FROM transactions)
                       AND date_trunc('week', t.ts) >= date_trunc('week', (SELECT min(ts) FROM transactions))
                                                       + INTERVAL (CASE WHEN (SELECT min(ts) FROM transactions)
                                                       = date_trunc('week', (SELECT min(ts) FROM transactions))
                                                       THEN 0 ELSE 7 END) DAY
                     GROUP BY 1, 2 ORDER BY 1, 2""")


def risk_trend(weekly: pd.DataFrame) -> pd.DataFrame:
    """Slope of each segment's weekly fraud rate (per week, least squares): which segment is growing riskiest."""
    rows = []
    for name, part in weekly.groupby("segment_name"):
        x = np.arange(len(part), dtype=float)
        y = part["fraud_rate"].fillna(0).to_numpy()
        slope = float(np.polyfit(x, y, 1)[0]) if len(part) > 1 else 0.0
        rows.append({"segment_name": name, "fraud_rate_slope_per_week": slope,
                     "latest_fraud_rate": float(y[-1]), "mean_fraud_rate": float(y.mean())})
    return pd.DataFrame(rows).sort_values("fraud_rate_slope_per_week", ascending=False, ignore_index=True)


@dataclass(frozen=True)
class Propensity:
    """A customer-level model of turning fraudulent after a cut-off, with its test AUC and top drivers."""

    cutoff: datetime
    customers: int
    positives: int
    auc: float | None
    drivers: pd.DataFrame
    scores: pd.DataFrame  # customer_id, propensity


def propensity(ws: Workspace, cutoff: datetime | None = None, seed: int = 0) -> Propensity:
    """Time-honest propensity: features from before the cut-off, label = any fraud after it (XGBoost, explained)."""
    first, last = ws.df("SELECT min(ts) AS a, max(ts) AS b FROM transactions").iloc[0]
    cutoff = cutoff or (first + (last - first) * 0.6)
    features = customer_features(ws, cutoff)
    bad = ws.df("SELECT DISTINCT customer_id FROM transactions WHERE ts >= $c AND is_fraud", {"c": cutoff})
    y = features["customer_id"].isin(set(bad["customer_id"])).to_numpy()
    X = features.drop(columns=["customer_id"]).astype(float)
    rng = np.random.default_rng(seed)
    test = rng.random(len(X)) < 0.3
    if y[~test].sum() < 5 or y[test].sum() < 2:
        return Propensity(cutoff, len(X), int(y.sum()), None, pd.DataFrame(columns=["feature", "mean_abs_shap"]),
                          pd.DataFrame(columns=["customer_id", "propensity"]))
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.1, "nthread": 2, "seed": seed,
              "scale_pos_weight": float(np.sqrt((~y[~test]).sum() / max(y[~test].sum(), 1)))}
    booster = xgb.train(params, xgb.DMatrix(X[~test], label=y[~test]), num_boost_round=150)
    score = booster.predict(xgb.DMatrix(X))
    contribs = booster.predict(xgb.DMatrix(X[test]), pred_contribs=True)[:, :-1]
    drivers = (pd.DataFrame({"feature": X.columns, "mean_abs_shap": np.abs(contribs).mean(axis=0)})
               .sort_values("mean_abs_shap", ascending=False, ignore_index=True))
    return Propensity(cutoff, len(X), int(y.sum()), float(roc_auc_score(y[test], score[test])), drivers,
                      pd.DataFrame({"customer_id": features["customer_id"], "propensity": score}))


def segment_members(ws: Workspace, segment_id: int, limit: int = 500) -> pd.DataFrame:
    """Customers of a segment with their activity, labelled fraud and highest score (riskiest first)."""
    scores = "LEFT JOIN scores s USING (transaction_id)" if ws.has_table("scores") else ""
    top = "max(s.score)" if scores else "NULL"
    return ws.df(f"""SELECT t.customer_id, count(*) AS transactions, sum(t.amount) AS amount,
                            count(*) FILTER (t.is_fraud) AS fraud, {top} AS top_score,
                            arg_max(t.transaction_id, {'s.score' if scores else 't.amount'}) AS top_transaction
                     FROM transactions t JOIN customer_segments cs USING (customer_id) {scores}
                     WHERE cs.segment_id = $seg GROUP BY 1 ORDER BY top_score DESC NULLS LAST, amount DESC
                     LIMIT $n""", {"seg": int(segment_id), "n": int(limit)})
