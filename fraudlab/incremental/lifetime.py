"""The customer's lifetime features without re-reading the customer's whole history through window sorts.

The built-in customer group mixes bounded windows (5 minutes .. 30 days) with lifetime ones (history count, time
since the previous transaction, tenure, mean / standard deviation of amount and the ratio and z-score against
them, first-time merchant / device / country flags). For the rows being recomputed, the window SQL runs over the
customer's rows since (earliest such row - 30 days): the bounded windows come out exact, the lifetime ones cover
only that slice. Here they are completed with one aggregate per customer over the rows before the slice (count,
sum, mean, squared deviations, first and last time, the merchants / devices / countries already seen), combined
like partial aggregates (Chan et al. for the variance). A group-by over the older rows is far cheaper than window
sorts over them; the values equal the full build's to floating-point rounding.
"""
from __future__ import annotations

import duckdb

from fraudlab.features import CUSTOMER_WINDOWS, FeaturePlan
from fraudlab.workspace import quote_ident

SPAN = max(CUSTOMER_WINDOWS.values())  # the longest bounded customer window
LIFETIME = ("c_hist_cnt", "c_secs_since_prev", "c_tenure_s", "c_amt_mean", "c_amt_std", "c_amt_ratio", "c_amt_z")
FLAGS = {"c_new_merchant": "merchant_id", "c_new_device": "device_id", "c_new_country": "country"}


def _alias(expr: str) -> str:
    return expr.rsplit(" AS ", 1)[-1]


def applies(plan: FeaturePlan) -> bool:
    """True when the customer group's all-history expressions are exactly the ones completed here."""
    exprs = plan.by_key.get("customer_id", [])
    lifetime = {_alias(e) for e in exprs if "UNBOUNDED PRECEDING" in e}
    return bool(exprs) and set(LIFETIME) <= lifetime and lifetime <= set(LIFETIME) | set(FLAGS)


def flags_in(plan: FeaturePlan) -> dict[str, str]:
    """The first-time flags the plan computes, with their source column."""
    names = {_alias(e) for e in plan.by_key.get("customer_id", [])}
    return {flag: col for flag, col in FLAGS.items() if flag in names}


def complete(cur: duckdb.DuckDBPyConnection, group: str, plan: FeaturePlan) -> int:
    """Complete the lifetime columns of temp table `group` (rows of _sub, customers of _keys with their slice start
    `lo`); returns how many older rows the aggregates read."""
    cut = f"b.lo - INTERVAL {int(SPAN)} SECOND"
    older = f"transactions t JOIN _keys b ON t.customer_id IS NOT DISTINCT FROM b.k WHERE t.ts < {cut}"
    cur.execute(f"""CREATE OR REPLACE TEMP TABLE _pre AS
        SELECT t.customer_id AS k, count(*) AS n0, sum(t.amount) AS s0, avg(t.amount) AS m0,
               stddev_samp(t.amount) AS sd0, var_pop(t.amount) * count(*) AS q0, max(t.ts) AS last0,
               min(t.ts) AS first0
        FROM {older} GROUP BY 1""")
    read = int(cur.execute("SELECT coalesce(sum(n0), 0) FROM _pre").fetchone()[0])
    flags = flags_in(plan)
    seen, joins = [], []
    for i, (flag, col) in enumerate(flags.items()):
        c = quote_ident(col)
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _seen{i} AS SELECT DISTINCT t.customer_id AS k, t.{c} AS v, "
                    f"true AS hit FROM {older} AND t.{c} IS NOT NULL")
        seen.append(f"CASE WHEN s.{c} IS NULL THEN NULL ELSE (g.{flag} = 1 AND x{i}.hit IS NULL)::INTEGER END "
                    f"AS {flag}")
        joins.append(f"LEFT JOIN _seen{i} x{i} ON x{i}.k IS NOT DISTINCT FROM s.customer_id AND x{i}.v = s.{c}")
    cur.execute(f"""CREATE OR REPLACE TEMP TABLE _life AS
        WITH j AS (
            SELECT g.transaction_id, s.ts, s.amount, g.c_hist_cnt AS n1, g.c_amt_mean AS m1, g.c_amt_std AS sd1,
                   g.c_secs_since_prev, g.c_tenure_s, coalesce(p.n0, 0) AS n0, p.s0, p.m0, p.sd0, p.q0, p.last0,
                   p.first0 {''.join(', ' + s for s in seen)}
            FROM {group} g JOIN _sub s USING (transaction_id) LEFT JOIN _pre p ON s.customer_id IS NOT DISTINCT FROM p.k
            {' '.join(joins)}
        ), c AS (
            SELECT *, n0 + n1 AS n,
                   CASE WHEN n0 = 0 THEN m1 WHEN n1 = 0 THEN m0 ELSE (s0 + m1 * n1) / (n0 + n1) END AS mean,
                   CASE WHEN n0 = 0 THEN sd1 WHEN n1 = 0 THEN sd0
                        ELSE sqrt((q0 + coalesce(sd1 * sd1, 0) * (n1 - 1)
                                   + (m1 - m0) * (m1 - m0) * n0 * n1 / (n0 + n1)) / (n0 + n1 - 1)) END AS sd
            FROM j
        )
        SELECT transaction_id, n AS c_hist_cnt,
               CASE WHEN n1 = 0 AND n0 > 0 THEN epoch(ts) - epoch(last0) ELSE c_secs_since_prev END
                   AS c_secs_since_prev,
               CASE WHEN n0 > 0 THEN epoch(ts) - epoch(first0) ELSE c_tenure_s END AS c_tenure_s,
               mean AS c_amt_mean, sd AS c_amt_std, amount / (mean + 1) AS c_amt_ratio,
               (amount - mean) / (coalesce(sd, 0) + 1) AS c_amt_z {''.join(', ' + f for f in flags)}
        FROM c""")
    columns = list(LIFETIME) + list(flags)
    sets = ", ".join(f"{c} = l.{c}" for c in columns)
    cur.execute(f"UPDATE {group} SET {sets} FROM _life l WHERE {group}.transaction_id = l.transaction_id")
    for i in range(len(flags)):
        cur.execute(f"DROP TABLE IF EXISTS _seen{i}")
    cur.execute("DROP TABLE IF EXISTS _pre; DROP TABLE IF EXISTS _life")
    return read
