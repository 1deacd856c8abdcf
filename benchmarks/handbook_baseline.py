"""Standalone XGBoost baseline on handbook-shaped data (fraudlab.handbook_sim), following the protocol of
"Reproducible Machine Learning for Credit Card Fraud Detection - Practical Handbook" (ch. 3.3-3.4, 4.2):

* features: TX_AMOUNT, weekend flag, night flag (hour <= 6), customer count and mean amount over the
  last 1/7/30 days (pandas-style rolling window (t - w, t], current transaction included), terminal
  count and risk (frauds / transactions) over 1/7/30 days shifted by a 7-day delay, i.e. the window
  (t - delay - w, t - delay], 0 when empty;
* split: 7 training days from --train-start, 7 delay days, 7 test days; a test transaction is removed
  when its customer had a fraud between the training start and (test day - delay - 1), which is the
  handbook's "known compromised cards" rule (training frauds, then the delay days progressively);
* model: xgboost.XGBClassifier(random_state=0) with default hyper-parameters;
* metrics: test ROC-AUC, average precision (PR-AUC) and mean daily card precision@100, where cards
  found in the top 100 of earlier test days are removed from later days, as in the handbook.

Only pandas, DuckDB, scikit-learn metrics and xgboost are used; the only fraudlab import is the simulator.

    python benchmarks/handbook_baseline.py                     # full size, handbook protocol
    python benchmarks/handbook_baseline.py --customers 1000 --terminals 2000 --days 90
"""
from __future__ import annotations

import argparse
import time

import duckdb
import numpy as np
import pandas as pd
import xgboost
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudlab.handbook_sim import simulate_handbook

START = "2018-04-01"
HANDBOOK_TRAIN_START = "2018-07-25"
DELTA_TRAIN, DELTA_DELAY, DELTA_TEST = 7, 7, 7
WINDOWS = (1, 7, 30)
TOP_K = 100
DAY = 86400

INPUT_FEATURES = ["TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT"]
for _w in WINDOWS:
    INPUT_FEATURES += [f"CUSTOMER_ID_NB_TX_{_w}DAY_WINDOW", f"CUSTOMER_ID_AVG_AMOUNT_{_w}DAY_WINDOW"]
for _w in WINDOWS:
    INPUT_FEATURES += [f"TERMINAL_ID_NB_TX_{_w}DAY_WINDOW", f"TERMINAL_ID_RISK_{_w}DAY_WINDOW"]


def features_sql(delay: int = DELTA_DELAY, tie_base: int = 1 << 22) -> str:
    """DuckDB query computing the handbook's 15 features on table `tx` (integer-second RANGE frames).

    Customer windows are ordered by TX_TIME_SECONDS * tie_base + TRANSACTION_ID (ids are time-ordered and
    < tie_base) so that, like pandas' rolling, a same-second later transaction is not in the current window.
    """
    cols, wins = [], []
    for w in WINDOWS:
        wins.append(f"c{w} AS (PARTITION BY CUSTOMER_ID ORDER BY TX_TIME_SECONDS * {tie_base} + TRANSACTION_ID "
                    f"RANGE BETWEEN {w * DAY * tie_base - 1} PRECEDING AND CURRENT ROW)")
        cols.append(f"count(*) OVER c{w} AS CUSTOMER_ID_NB_TX_{w}DAY_WINDOW")
        cols.append(f"avg(TX_AMOUNT) OVER c{w} AS CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW")
    for w in WINDOWS:
        wins.append(f"t{w} AS (PARTITION BY TERMINAL_ID ORDER BY TX_TIME_SECONDS "
                    f"RANGE BETWEEN {(delay + w) * DAY - 1} PRECEDING AND {delay * DAY} PRECEDING)")
        cols.append(f"count(*) OVER t{w} AS TERMINAL_ID_NB_TX_{w}DAY_WINDOW")
        cols.append(f"coalesce(sum(TX_FRAUD) OVER t{w} / nullif(count(*) OVER t{w}, 0), 0)::DOUBLE "
                    f"AS TERMINAL_ID_RISK_{w}DAY_WINDOW")
    return (
        "SELECT TRANSACTION_ID, CUSTOMER_ID, TX_TIME_DAYS, TX_FRAUD, TX_AMOUNT, "
        "(isodow(TX_DATETIME) >= 6)::INT AS TX_DURING_WEEKEND, "
        "(hour(TX_DATETIME) <= 6)::INT AS TX_DURING_NIGHT, "
        + ", ".join(cols) + " FROM tx WINDOW " + ", ".join(wins) + " ORDER BY TRANSACTION_ID"
    )


def compute_features(df: pd.DataFrame, first_day: int, last_day: int, threads: int = 2) -> pd.DataFrame:
    """Features for the rows of days [first_day, last_day), using all the history they need."""
    history = (DELTA_DELAY + max(WINDOWS) + 1)
    tx = df[(df.TX_TIME_DAYS >= first_day - history) & (df.TX_TIME_DAYS < last_day)]  # noqa: F841
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.register("tx", tx)
    tie_base = 1 << max(1, int(df.TRANSACTION_ID.max()).bit_length())
    feats = con.sql(features_sql(tie_base=tie_base)).arrow().read_all().to_pandas()
    con.close()
    return feats[(feats.TX_TIME_DAYS >= first_day)].reset_index(drop=True)


def split(feats: pd.DataFrame, train_day: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Handbook train/test split with removal of already-known compromised customers from the test set."""
    train = feats[(feats.TX_TIME_DAYS >= train_day) & (feats.TX_TIME_DAYS < train_day + DELTA_TRAIN)]
    test_lo = train_day + DELTA_TRAIN + DELTA_DELAY
    test = feats[(feats.TX_TIME_DAYS >= test_lo) & (feats.TX_TIME_DAYS < test_lo + DELTA_TEST)]
    # Known on test day D: customers with a fraud in days [train_day, D - delay - 1].
    frauds = feats[(feats.TX_FRAUD == 1) & (feats.TX_TIME_DAYS >= train_day)]
    first_fraud = frauds.groupby("CUSTOMER_ID")["TX_TIME_DAYS"].min()
    known_since = test.CUSTOMER_ID.map(first_fraud)
    keep = ~(known_since <= test.TX_TIME_DAYS - DELTA_DELAY - 1)
    return train.sort_values("TRANSACTION_ID"), test[keep].sort_values("TRANSACTION_ID")


def card_precision_top_k(pred: pd.DataFrame, top_k: int = TOP_K) -> list[float]:
    """Daily card precision@k; cards detected on earlier days are removed, as in the handbook."""
    detected: set[int] = set()
    out = []
    for day in sorted(pred.TX_TIME_DAYS.unique()):  # one iteration per test day
        d = pred[(pred.TX_TIME_DAYS == day) & ~pred.CUSTOMER_ID.isin(detected)]
        cards = d.groupby("CUSTOMER_ID")[["predictions", "TX_FRAUD"]].max()
        top = cards.sort_values("predictions", ascending=False).head(top_k)
        hits = top.index[top.TX_FRAUD == 1]
        out.append(len(hits) / top_k)
        detected.update(int(c) for c in hits)
    return out


def run(customers: int, terminals: int, days: int, seed: int, train_start: str | None) -> dict:
    """Simulate, build features, fit XGBoost, score the test week; return the numbers."""
    t0 = time.perf_counter()
    df = simulate_handbook(n_customers=customers, n_terminals=terminals, nb_days=days, seed=seed, start=START)
    t_sim = time.perf_counter() - t0

    needed = DELTA_TRAIN + DELTA_DELAY + DELTA_TEST
    if train_start is None:
        hb = (pd.Timestamp(HANDBOOK_TRAIN_START) - pd.Timestamp(START)).days
        train_day = hb if hb + needed <= days else days - needed
    elif train_start.lstrip("-").isdigit():
        train_day = int(train_start)
    else:
        train_day = (pd.Timestamp(train_start) - pd.Timestamp(START)).days
    if train_day < 0 or train_day + needed > days:
        raise SystemExit(f"train start day {train_day} does not fit {days} days (needs {needed} days after it)")

    t1 = time.perf_counter()
    feats = compute_features(df, train_day, train_day + needed)
    train, test = split(feats, train_day)
    t_feat = time.perf_counter() - t1

    t2 = time.perf_counter()
    model = xgboost.XGBClassifier(random_state=0, n_jobs=2)
    model.fit(train[INPUT_FEATURES], train["TX_FRAUD"])
    scores = model.predict_proba(test[INPUT_FEATURES])[:, 1]
    t_fit = time.perf_counter() - t2

    pred = test[["CUSTOMER_ID", "TX_TIME_DAYS", "TX_FRAUD"]].assign(predictions=scores)
    cp = card_precision_top_k(pred)
    return {
        "rows": len(df),
        "fraud_rate": float(df.TX_FRAUD.mean()),
        "train_start": (pd.Timestamp(START) + pd.Timedelta(days=train_day)).date().isoformat(),
        "train_rows": len(train),
        "train_frauds": int(train.TX_FRAUD.sum()),
        "test_rows": len(test),
        "test_frauds": int(test.TX_FRAUD.sum()),
        "sim_s": t_sim,
        "features_s": t_feat,
        "fit_s": t_fit,
        "seconds": time.perf_counter() - t0,
        "pr_auc": float(average_precision_score(test.TX_FRAUD, scores)),
        "roc_auc": float(roc_auc_score(test.TX_FRAUD, scores)),
        "cp100": float(np.mean(cp)),
        "cp100_daily": cp,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: print a small results table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--terminals", type=int, default=10000)
    p.add_argument("--days", type=int, default=183)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-start", default=None,
                   help=f"YYYY-MM-DD or day index; default {HANDBOOK_TRAIN_START} if it fits, else days-21")
    a = p.parse_args(argv)
    r = run(a.customers, a.terminals, a.days, a.seed, a.train_start)
    print(f"handbook baseline: {a.customers} customers, {a.terminals} terminals, {a.days} days, seed {a.seed}; "
          f"train {r['train_start']} +7d, delay 7d, test 7d")
    print(f"fraud rate {r['fraud_rate']:.4f}; train {r['train_rows']} rows ({r['train_frauds']} frauds), "
          f"test {r['test_rows']} rows ({r['test_frauds']} frauds)")
    print(f"timings: simulate {r['sim_s']:.1f}s, features+split {r['features_s']:.1f}s, "
          f"fit+predict {r['fit_s']:.1f}s")
    print(f"{'rows':>10} {'seconds':>8} {'PR-AUC':>7} {'ROC-AUC':>8} {'CP@100':>7}")
    print(f"{r['rows']:>10} {r['seconds']:>8.1f} {r['pr_auc']:>7.3f} {r['roc_auc']:>8.3f} {r['cp100']:>7.3f}")
    print("CP@100 per test day: " + " ".join(f"{c:.2f}" for c in r["cp100_daily"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
