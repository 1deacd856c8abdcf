"""The case records and the materialised `cases` table: rebuilt by the pipeline when scores, threshold or segments change."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from fraudlab.errors import FraudlabError
from fraudlab.labels import resolved_sql
from fraudlab.workspace import Workspace

DECISIONS = ("fraud", "legitimate", "escalate", "reopen")
STATUSES = ("open", "fraud", "legitimate", "escalated")
CASE_WINDOW_HOURS = 72.0  # a customer's alerts less than this apart are one case
# Why a case was closed: the fraud types the field reports on, and the ways a case turns out legitimate.
CLOSE_REASONS = {
    "fraud": ("card testing", "account takeover", "stolen card / card not present", "friendly fraud",
              "first-party fraud", "merchant compromise", "money mule / ring", "other fraud"),
    "legitimate": ("legitimate: customer confirmed", "legitimate: known pattern of the customer",
                   "legitimate: false positive of the model", "legitimate: duplicate alert", "other"),
}
LOCK_MINUTES = 15
SLA_HOURS = 24
PAGE_SIZE = 50
REASON_FAMILIES = {
    "c_cnt": "velocity", "c_sum": "velocity", "c_secs": "velocity", "c_amt": "amount", "amount": "amount",
    "log_amount": "amount", "c_new_device": "new device", "c_new_country": "new country", "country": "country",
    "c_new_merchant": "new merchant", "dev_customers": "shared identifier", "ip_customers": "shared identifier",
    "card_customers": "shared identifier", "m_": "merchant risk", "dist_merchant": "location", "hour": "time of day",
    "dow": "time of day", "c_tenure": "new customer", "c_hist": "new customer", "category": "category",
    "channel": "channel",
}
QUEUE_COLUMNS = ("case_id", "customer_id", "alerts", "open_alerts", "score", "expected_loss", "amount", "status",
                 "assignee", "reason_family", "first_ts", "ts", "age_hours", "sla_breached", "card_id", "merchant_id",
                 "category", "channel", "country", "segment", "decided_by", "decided_at")

ENTITIES_MARK = "entities_cover_ingest"  # in case_meta: the entity counts include every row up to this load id
LINK_KINDS = {"device_id": "device", "ip": "IP address", "card_id": "card", "email": "email"}


class CaseLocked(FraudlabError):
    """Another analyst holds the lock on this case."""


@dataclass(frozen=True)
class QueueFilter:
    """What the analyst narrowed the queue to; None means no filter on that field."""

    start: datetime | None = None
    end: datetime | None = None
    min_score: float | None = None
    max_score: float | None = None
    statuses: tuple[str, ...] = ()
    reason_families: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    min_amount: float | None = None
    max_amount: float | None = None
    countries: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    assignee: str | None = None


@dataclass(frozen=True)
class DecisionResult:
    """A stored decision; `conflict` names the decision someone else made first, if any."""

    decision_id: int
    case_id: str
    decision: str
    analyst: str
    previous_decision_id: int | None
    conflict: dict | None = None


@dataclass
class CaseDetail:
    """Everything the case page shows, assembled in a few indexed queries."""

    case: pd.Series
    history: pd.DataFrame
    linked: pd.DataFrame
    similar: pd.DataFrame
    decisions: pd.DataFrame
    reasons: pd.DataFrame = field(default_factory=pd.DataFrame)
    alerts: pd.DataFrame = field(default_factory=pd.DataFrame)
    comments: pd.DataFrame = field(default_factory=pd.DataFrame)


def reason_family(feature: str | None) -> str:
    """The family of a feature named in a reason ("velocity", "shared identifier", …), for filtering."""
    if not feature:
        return "other"
    for prefix, family in REASON_FAMILIES.items():
        if feature.startswith(prefix):
            return family
    return "other"




# A customer's alerts are one case while each follows the previous within the window; a new case starts after a
# longer gap. Alerts without a customer are cases of their own.
GROUP_ALERTS_SQL = """
CREATE OR REPLACE TABLE alerts AS
WITH gaps AS (
    SELECT *, CASE WHEN customer_id IS NULL THEN 1
                   WHEN epoch(ts) - epoch(lag(ts) OVER (PARTITION BY customer_id ORDER BY ts, alert_id)) <= $gap
                   THEN 0 ELSE 1 END AS starts
    FROM alerts
), episodes AS (
    SELECT *, sum(starts) OVER (PARTITION BY coalesce(customer_id, alert_id) ORDER BY ts, alert_id
                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode
    FROM gaps
)
SELECT * EXCLUDE (starts, episode),
       first_value(alert_id) OVER (PARTITION BY coalesce(customer_id, alert_id), episode ORDER BY ts, alert_id)
           AS case_id
FROM episodes
"""

# One row per case: the riskiest alert speaks for the case; amounts and expected losses add up.
CASES_SELECT = """
SELECT case_id, any_value(customer_id) AS customer_id, count(*) AS alerts, max(score) AS score,
       min(ts) AS first_ts, max(ts) AS ts, sum(amount) AS amount, sum(expected_loss) AS expected_loss,
       min(raised_at) AS raised_at, arg_max(top_reason, score) AS top_reason,
       arg_max(reason_family, score) AS reason_family, arg_max(reasons, score) AS reasons,
       arg_max(alert_id, score) AS top_alert, arg_max(card_id, score) AS card_id,
       arg_max(merchant_id, score) AS merchant_id, arg_max(category, score) AS category,
       arg_max(channel, score) AS channel, arg_max(country, score) AS country, arg_max(device_id, score) AS device_id,
       arg_max(ip, score) AS ip, arg_max(email, score) AS email, arg_max(scorer, score) AS scorer,
       arg_max(model_id, score) AS model_id, any_value(segment) AS segment
FROM alerts GROUP BY case_id
"""
CASES_SQL = f"CREATE OR REPLACE TABLE cases AS {CASES_SELECT}"


def _scores_fingerprint(ws: Workspace, threshold: float) -> str:
    cur = ws.cursor()
    try:
        return scores_fingerprint(cur, threshold)
    finally:
        cur.close()


def scores_fingerprint(cur, threshold: float) -> str:
    """What the queue was built from (score count, newest score, threshold, segmentation), read on `cur`."""
    n, last = cur.execute("SELECT count(*), max(scored_at) FROM scores").fetchall()[0]
    segmented = cur.execute("SELECT max(assigned_at) FROM customer_segments").fetchall()[0][0]
    return f"{n}|{None if last is None else pd.Timestamp(last)}|{threshold:.6f}|{segmented}"


def cases_stale(ws: Workspace) -> bool:
    """True when scores, the alert threshold or segments changed since the queue was built."""
    from fraudlab.model import decision_threshold

    built = ws.scalar("SELECT value FROM case_meta WHERE key = 'fingerprint'")
    expected = _scores_fingerprint(ws, decision_threshold(ws)) + f"|{float(CASE_WINDOW_HOURS):g}"
    return built != expected or not ws.has_table("alerts")


def refresh_cases(ws: Workspace, threshold: float | None = None, force: bool = False,
                  window_hours: float | None = None, changed_since: datetime | None = None) -> int:
    """Rebuild `alerts` and `cases` when scores, the threshold or segments changed; returns the number of cases.

    An alert is a scored transaction at or above the alert threshold (or one ever decided). A case groups one
    customer's alerts: a new case starts when the gap since the customer's previous alert exceeds `window_hours`
    (default CASE_WINDOW_HOURS). The case id is its first alert's transaction id, so a one-alert case keeps the id
    it always had.

    `changed_since` (from the incremental pipeline: only rows at or after it are new or rescored) keeps the
    per-customer history and entity lookups and replaces only what those rows touch; alerts and cases, small,
    are rebuilt whole. Without it, or when analysts' labels changed since the last build, everything is rebuilt.
    """
    from fraudlab.model import decision_threshold
    threshold = decision_threshold(ws) if threshold is None else threshold
    window_hours = float(window_hours if window_hours is not None else CASE_WINDOW_HOURS)
    fingerprint = _scores_fingerprint(ws, threshold) + f"|{window_hours:g}"
    if not force and ws.has_table("cases") and \
            ws.scalar("SELECT value FROM case_meta WHERE key = 'fingerprint'") == fingerprint:
        return ws.count("cases")
    segments = ws.count("customer_segments") > 0
    seg_select = "seg.segment_name AS segment" if segments else "NULL::VARCHAR AS segment"
    seg_join = ("LEFT JOIN (SELECT customer_id, any_value(segment_name) AS segment_name FROM customer_segments "
                "GROUP BY 1) seg USING (customer_id)") if segments else ""
    cols = set(ws.columns("transactions"))
    feature_cols = set(ws.columns("features")) if ws.has_table("features") else set()
    flags = [c for c in ("c_new_device", "c_new_country") if c in feature_cols]
    with ws.write() as cur:
        cur.execute(f"""CREATE OR REPLACE TABLE alerts AS
            SELECT t.transaction_id AS alert_id, t.* EXCLUDE (transaction_id), s.score, s.scorer, s.model_id,
                   s.scored_at AS raised_at, s.score * t.amount AS expected_loss, s.reasons,
                   json_extract_string(s.reasons, '$[0].feature') AS top_reason, {seg_select}
            FROM (SELECT * FROM scores WHERE score >= $threshold
                  OR transaction_id IN (SELECT alert_id FROM decision_alerts)) s  -- filtered before the join: 4x faster
            JOIN transactions t USING (transaction_id) {seg_join}""",
                    {"threshold": threshold})
        cur.execute("ALTER TABLE alerts ADD COLUMN reason_family VARCHAR")
        cur.execute("UPDATE alerts SET reason_family = 'other'")
        for prefix, family in REASON_FAMILIES.items():
            cur.execute("UPDATE alerts SET reason_family = $f WHERE starts_with(top_reason, $p) "
                        "AND reason_family = 'other'", {"f": family, "p": prefix})
        cur.execute(GROUP_ALERTS_SQL, {"gap": window_hours * 3_600})
        cur.execute(CASES_SQL)
        cur.execute("CREATE INDEX IF NOT EXISTS cases_id ON cases (case_id)")
        cur.execute("CREATE INDEX IF NOT EXISTS alerts_case ON alerts (case_id)")
        # lookup tables sorted by their key, so a case page reads a few row groups instead of scanning millions
        if "customer_id" in cols:
            partial = changed_since is not None and _lookups_current(cur)
            _case_history(cur, flags, changed_since if partial else None)
            _case_entities(cur, cols, changed_since if partial else None)
            cur.execute("INSERT OR REPLACE INTO case_meta VALUES ('analyst_labels', ?)", [_analyst_labels(cur)])
        cur.execute("INSERT OR REPLACE INTO case_meta VALUES ('fingerprint', ?), ('threshold', ?)",
                    [fingerprint, str(threshold)])
    return ws.count("cases")


def _analyst_labels(cur) -> str:
    return str(cur.execute("SELECT count(*) FROM labels WHERE source = 'analyst'").fetchone()[0])


def _lookups_current(cur) -> bool:
    """True when the lookup tables exist and no analyst label arrived since they were built."""
    tables = {r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    built = cur.execute("SELECT value FROM case_meta WHERE key = 'analyst_labels'").fetchone()
    return {"case_history", "case_entities"} <= tables and built is not None and built[0] == _analyst_labels(cur)


def _case_history(cur, flags: list[str], since: datetime | None) -> None:
    """Each customer's transactions with score and flags, sorted by customer; from `since` on only, when given."""
    flag_sql = "".join(f", f.{c}" for c in flags)
    feature_join = "LEFT JOIN features f USING (transaction_id)" if flags else ""
    select = f"""SELECT t.customer_id, t.transaction_id, t.ts, t.amount, t.merchant_id, t.category, t.channel,
                        t.country, t.device_id, s.score{flag_sql}
                 FROM transactions t LEFT JOIN scores s USING (transaction_id) {feature_join}
                 WHERE t.customer_id IS NOT NULL"""
    if since is None:
        cur.execute(f"CREATE OR REPLACE TABLE case_history AS {select} ORDER BY t.customer_id, t.ts")
        return
    cur.execute("DELETE FROM case_history WHERE ts >= $since", {"since": since})
    cur.execute(f"INSERT INTO case_history {select} AND t.ts >= $since ORDER BY t.customer_id, t.ts",
                {"since": since})


def _case_entities(cur, cols: set[str], since: datetime | None) -> None:
    """Per shared value (device, IP, card, email): customers, transactions, frauds. When `since` is given only the
    values of rows added since the last count (loaded past its load-id mark, or stored live) from `since` on are
    recounted; when the per-kind totals then disagree with the transactions, everything is recounted."""
    def parts(where: str, touched: bool = False) -> str:
        return " UNION ALL ".join(f"SELECT '{kind}' AS kind, {col} AS value, customer_id, transaction_id "
                                  f"FROM transactions WHERE {col} IS NOT NULL {where}"
                                  + (f" AND {col} IN (SELECT value FROM _ent WHERE kind = '{kind}')" if touched else "")
                                  for col, kind in LINK_KINDS.items() if col in cols)
    if not parts(""):
        return
    # per value and customer first: two plain group-bys cost less than count(DISTINCT); only transactions with a
    # fraud label row can resolve to fraud, so their labels are all the fraud count needs
    counts = """SELECT kind, value, count(customer_id) AS customers, sum(n)::BIGINT AS transactions,
                       sum(f)::BIGINT AS fraud
                FROM (SELECT e.kind, e.value, e.customer_id, count(*) AS n, count(*) FILTER (l.label) AS f
                      FROM ({rows}) e LEFT JOIN ({labels}) l USING (transaction_id) GROUP BY 1, 2, 3)
                GROUP BY 1, 2 ORDER BY 1, 2"""
    cur.execute("CREATE OR REPLACE TEMP TABLE _elab AS SELECT * FROM labels WHERE transaction_id IN "
                "(SELECT transaction_id FROM labels WHERE is_fraud)")
    mark = cur.execute("SELECT value FROM case_meta WHERE key = ?", [ENTITIES_MARK]).fetchone()
    if since is not None and mark is not None:
        fresh = "AND ts >= $since AND (ingest_id > $mark OR ingest_id IS NULL)"  # rows the counts lack
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _ent AS SELECT DISTINCT kind, value FROM ({parts(fresh)})",
                    {"since": since, "mark": int(mark[0])})
        cur.execute("DELETE FROM case_entities e USING _ent n WHERE e.kind = n.kind AND e.value = n.value")
        cur.execute("INSERT INTO case_entities "
                    + counts.format(rows=parts("", touched=True), labels=resolved_sql(None, "_elab")))
        cur.execute("DROP TABLE _ent")
    if since is None or mark is None or not _entity_totals_match(cur, cols):
        cur.execute("CREATE OR REPLACE TABLE case_entities AS "
                    + counts.format(rows=parts(""), labels=resolved_sql(None, "_elab")))
    mark_entities_counted(cur)
    cur.execute("DROP TABLE _elab")


def mark_entities_counted(cur) -> None:
    """Note that the entity counts include every loaded row: the next partial count starts past this load id."""
    cur.execute("INSERT OR REPLACE INTO case_meta SELECT ?, coalesce(max(ingest_id), 0)::VARCHAR FROM transactions",
                [ENTITIES_MARK])


def _entity_totals_match(cur, cols: set[str]) -> bool:
    """True when each kind's counted transactions equal the transactions carrying a value of it."""
    counted = dict(cur.execute("SELECT kind, sum(transactions) FROM case_entities GROUP BY 1").fetchall())
    have = cur.execute("SELECT " + ", ".join(f"count({col})" for col in LINK_KINDS if col in cols)
                       + " FROM transactions").fetchone()
    kinds = [kind for col, kind in LINK_KINDS.items() if col in cols]
    return all(int(counted.get(kind) or 0) == int(n) for kind, n in zip(kinds, have))
