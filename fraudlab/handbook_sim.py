"""Vectorised re-implementation of the transaction simulator from the open handbook
"Reproducible Machine Learning for Credit Card Fraud Detection - Practical Handbook"
(Le Borgne, Siblini, Lebichot, Bontempi), chapter 3.2 "Transaction data simulator".

It is a stand-in for "real data nobody here wrote": its shape (customers with a home
location, terminals within a radius, three fraud scenarios) is unlike fraudlab's own
simulator.  The generation logic follows the handbook step by step, but with NumPy
arrays instead of per-customer Python loops, so random streams differ from the
handbook's (statistics match, individual rows do not).

Faithful details worth knowing:

* times of day are ``int(Normal(43200, 20000))``; as in the handbook, draws outside
  the open interval (0, 86400) are *dropped* (pass ``clip_time=True`` to clip them
  into [0, 86399] instead);
* a negative amount is redrawn as Uniform(0, 2 * mean_amount), then rounded to cents;
* scenario labels overwrite one another in the handbook's order 1 -> 2 -> 3, and the
  scenario-3 "x5" is applied once per selection (a transaction picked on two
  different days is multiplied by 25, exactly like the handbook's loop).

>>> df = simulate_handbook(n_customers=50, n_terminals=100, nb_days=10, seed=1)
>>> list(df.columns)[:4]
['TRANSACTION_ID', 'TX_DATETIME', 'CUSTOMER_ID', 'TERMINAL_ID']
>>> bool((df.loc[df.TX_AMOUNT > 220, "TX_FRAUD"] == 1).all())
True
>>> df.equals(simulate_handbook(n_customers=50, n_terminals=100, nb_days=10, seed=1))
True
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "simulate_handbook", "write_handbook"]

COLUMNS = [
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
]

_DAY = 86400


def _customer_profiles(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Customer locations and spending habits, as in the handbook."""
    xy = rng.uniform(0, 100, size=(n, 2))
    mean_amount = rng.uniform(5, 100, size=n)
    return {
        "xy": xy,
        "mean_amount": mean_amount,
        "std_amount": mean_amount / 2,
        "mean_nb_tx_per_day": rng.uniform(0, 4, size=n),
    }


def _terminals_within_radius(
    cust_xy: np.ndarray, term_xy: np.ndarray, radius: float, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """CSR lists (indptr, indices) of terminals strictly within `radius` of each customer."""
    counts = np.zeros(len(cust_xy), dtype=np.int64)
    parts: list[np.ndarray] = []
    r2 = radius * radius
    for lo in range(0, len(cust_xy), chunk):  # chunked over customers, not rows
        block = cust_xy[lo : lo + chunk]
        d2 = ((block[:, None, :] - term_xy[None, :, :]) ** 2).sum(axis=2)
        rows, cols = np.nonzero(d2 < r2)
        counts[lo : lo + chunk] = np.bincount(rows, minlength=len(block))
        parts.append(cols.astype(np.int64))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return indptr, indices


def simulate_handbook(
    n_customers: int = 5000,
    n_terminals: int = 10000,
    nb_days: int = 183,
    start: str = "2018-04-01",
    seed: int = 0,
    radius: float = 5.0,
    clip_time: bool = False,
) -> pd.DataFrame:
    """Simulate the handbook's card transactions with its three fraud scenarios."""
    rng = np.random.default_rng(seed)
    cust = _customer_profiles(rng, n_customers)
    term_xy = rng.uniform(0, 100, size=(n_terminals, 2))
    indptr, indices = _terminals_within_radius(cust["xy"], term_xy, radius)
    n_avail = np.diff(indptr)

    # Number of transactions per (customer, day) ~ Poisson(mean_nb_tx_per_day).
    nb = rng.poisson(np.repeat(cust["mean_nb_tx_per_day"][:, None], nb_days, axis=1))
    flat = nb.ravel()
    total = int(flat.sum())
    cust_id = np.repeat(np.repeat(np.arange(n_customers), nb_days), flat)
    day = np.repeat(np.tile(np.arange(nb_days), n_customers), flat)

    time_tx = rng.normal(_DAY / 2, 20000, size=total).astype(np.int64)  # int() truncation
    amount = rng.normal(cust["mean_amount"][cust_id], cust["std_amount"][cust_id])
    neg = amount < 0
    amount[neg] = rng.uniform(0, cust["mean_amount"][cust_id[neg]] * 2)
    amount = np.round(amount, 2)
    u = rng.random(total)

    if clip_time:
        time_tx = np.clip(time_tx, 0, _DAY - 1)
        keep = n_avail[cust_id] > 0
    else:
        keep = (time_tx > 0) & (time_tx < _DAY) & (n_avail[cust_id] > 0)
    cust_id, day, time_tx, amount, u = cust_id[keep], day[keep], time_tx[keep], amount[keep], u[keep]
    k = np.minimum((u * n_avail[cust_id]).astype(np.int64), n_avail[cust_id] - 1)
    term_id = indices[indptr[cust_id] + k]

    seconds = time_tx + day * _DAY
    order = np.lexsort((cust_id, seconds))  # sorted by time, ties by customer
    cust_id, term_id, amount, seconds, day = (a[order] for a in (cust_id, term_id, amount, seconds, day))
    n = len(seconds)

    fraud = np.zeros(n, dtype=np.int64)
    scenario = np.zeros(n, dtype=np.int64)
    # Scenario 1: any amount above 220 is fraud.
    s1 = amount > 220
    fraud[s1], scenario[s1] = 1, 1

    n_loop_days = int(day.max()) if n else 0  # handbook: range(TX_TIME_DAYS.max())
    if n_loop_days > 0:
        # Scenario 2: 2 terminals per day, compromised for that day and the next 27.
        picked = np.zeros((nb_days, n_terminals), dtype=np.int64)
        k_t = min(2, n_terminals)
        for d in range(n_loop_days):  # one tiny draw per simulated day
            picked[d, rng.choice(n_terminals, size=k_t, replace=False)] = 1
        csum = np.cumsum(picked, axis=0)
        shifted = np.zeros_like(csum)
        shifted[28:] = csum[:-28]
        active = (csum - shifted) > 0  # compromised on some day in [d-27, d]
        s2 = active[day, term_id]
        fraud[s2], scenario[s2] = 1, 2

        # Scenario 3: 3 customers per day, compromised for 14 days; a third of
        # their transactions in that window (drawn per day) get amount x5.
        k_c = min(3, n_customers)
        ev_day = np.repeat(np.arange(n_loop_days), k_c)
        ev_cust = np.concatenate(
            [rng.choice(n_customers, size=k_c, replace=False) for _ in range(n_loop_days)]
        )
        by_cust = np.argsort(cust_id, kind="stable")
        c_start = np.searchsorted(cust_id[by_cust], np.arange(n_customers + 1))
        # Transactions of each event's customer (all days), then keep days [d, d+14).
        lens = c_start[ev_cust + 1] - c_start[ev_cust]
        ev_idx = np.repeat(np.arange(len(ev_day)), lens)
        offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        tx = by_cust[np.repeat(c_start[ev_cust], lens) + offs]
        in_win = (day[tx] >= ev_day[ev_idx]) & (day[tx] < ev_day[ev_idx] + 14)
        tx, pair_day = tx[in_win], ev_day[ev_idx][in_win]
        # Per loop day: pick int(n_d / 3) of its pairs uniformly without replacement.
        o = np.lexsort((rng.random(len(tx)), pair_day))
        tx, pair_day = tx[o], pair_day[o]
        n_d = np.bincount(pair_day, minlength=n_loop_days)
        first = np.concatenate([[0], np.cumsum(n_d)[:-1]])
        rank = np.arange(len(tx)) - first[pair_day]
        chosen = tx[rank < (n_d // 3)[pair_day]]
        times = np.bincount(chosen, minlength=n)
        hit = times > 0
        amount = amount * np.power(5.0, times)
        fraud[hit], scenario[hit] = 1, 3

    start_ns = pd.Timestamp(start).to_datetime64().astype("datetime64[ns]")
    return pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(n, dtype=np.int64),
            "TX_DATETIME": start_ns + seconds.astype("timedelta64[s]"),
            "CUSTOMER_ID": cust_id.astype(np.int64),
            "TERMINAL_ID": term_id.astype(np.int64),
            "TX_AMOUNT": amount.astype(np.float64),
            "TX_TIME_SECONDS": seconds.astype(np.int64),
            "TX_TIME_DAYS": day.astype(np.int64),
            "TX_FRAUD": fraud,
            "TX_FRAUD_SCENARIO": scenario,
        },
        columns=COLUMNS,
    )


def write_handbook(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` to CSV or Parquet, chosen by the file suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix in (".parquet", ".pq"):
        df.to_parquet(path, index=False)
    else:
        raise ValueError(f"unsupported suffix {path.suffix!r}: use .csv or .parquet")
    return path
