"""The case records and the materialised `cases` table: rebuilt by the pipeline when scores, threshold or segments change."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from fraudlab.cases.entities import count_entities, update_entities
from fraudlab.cases.partial import (
    BASIS,
    BUILT,
    changed_rows,
    drop_changed,
    history_select,
    mark_built,
    update_alerts,
    update_history,
)
from fraudlab.errors import FraudlabError
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
# longer gap. Alerts without a customer are cases of their own. `{source}`: the alerts without their case ids.
GROUP_ALERTS_SQL = """
CREATE OR REPLACE TABLE alerts AS
WITH gaps AS (
    SELECT *, CASE WHEN customer_id IS NULL THEN 1
                   WHEN epoch(ts) - epoch(lag(ts) OVER (PARTITION BY customer_id ORDER BY ts, alert_id)) <= $gap
                   THEN 0 ELSE 1 END AS starts
    FROM {source}
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

    `changed_since` (from the incremental pipeline: the earliest row that is new or rescored) replaces only what the
    rows scored since the last build touch: their alerts and history rows, the entity counts of the rows loaded since
    (see cases.partial and cases.entities); the small cases table is regrouped whole. Each part falls back to its
    whole rebuild when its marks are missing or its totals disagree. Without it everything is rebuilt.
    """
    from fraudlab.model import decision_threshold
    threshold = decision_threshold(ws) if threshold is None else threshold
    window_hours = float(window_hours if window_hours is not None else CASE_WINDOW_HOURS)
    fingerprint = _scores_fingerprint(ws, threshold) + f"|{window_hours:g}"
    if not force and ws.has_table("cases") and \
            ws.scalar("SELECT value FROM case_meta WHERE key = 'fingerprint'") == fingerprint:
        return ws.count("cases")
    segments = ws.count("customer_segments") > 0
    basis = f"{threshold!r}|{window_hours!r}|{fingerprint.split('|')[3]}"
    cols = set(ws.columns("transactions"))
    feature_cols = set(ws.columns("features")) if ws.has_table("features") else set()
    flags = [c for c in ("c_new_device", "c_new_country") if c in feature_cols]
    params = {"threshold": threshold}
    with ws.write() as cur:
        changed, earliest = changed_rows(cur, changed_since) if changed_since is not None else (False, None)
        paths = {"alerts": changed and _basis(cur) == basis and
                 update_alerts(cur, alerts_select(segments, "_delta", "_drows"), params | _family_params())}
        if not paths["alerts"]:
            cur.execute(f"CREATE OR REPLACE TABLE alerts AS {alerts_select(segments)}", params | _family_params())
        source = "(SELECT * EXCLUDE (case_id) FROM alerts)" if paths["alerts"] else "alerts"
        cur.execute(GROUP_ALERTS_SQL.format(source=source), {"gap": window_hours * 3_600})
        cur.execute(CASES_SQL)
        cur.execute("CREATE INDEX IF NOT EXISTS cases_id ON cases (case_id)")
        cur.execute("CREATE INDEX IF NOT EXISTS alerts_case ON alerts (case_id)")
        # lookup tables sorted by their key, so a case page reads a few row groups instead of scanning millions
        if "customer_id" in cols:
            paths["history"] = changed and update_history(cur, flags, earliest)
            if not paths["history"]:
                _case_history(cur, flags)
            paths["entities"] = changed and update_entities(cur, cols, changed_since)
            if not paths["entities"]:
                count_entities(cur, cols)
        drop_changed(cur)
        mark_built(cur, basis, " ".join(f"{k}={'partial' if v else 'whole'}" for k, v in paths.items()))
        cur.execute("INSERT OR REPLACE INTO case_meta VALUES ('fingerprint', ?), ('threshold', ?)",
                    [fingerprint, str(threshold)])
    return ws.count("cases")


def last_build(ws: Workspace) -> dict[str, str]:
    """How the last refresh built each part of the queue: {"alerts": "partial" or "whole", "history": …}."""
    found = ws.scalar("SELECT value FROM case_meta WHERE key = ?", [BUILT])
    return dict(part.split("=") for part in (found or "").split())


def _basis(cur) -> str | None:
    found = cur.execute("SELECT value FROM case_meta WHERE key = ?", [BASIS]).fetchone()
    return None if found is None else found[0]


def _family_params() -> dict:
    return {f"p{i}": prefix for i, prefix in enumerate(REASON_FAMILIES)} | \
        {f"f{i}": family for i, family in enumerate(REASON_FAMILIES.values())}


def alerts_select(segments: bool, scores: str = "scores", transactions: str = "transactions") -> str:
    """SQL of the alert rows (without their case ids) from `scores` and `transactions`, or temp tables holding some of
    their rows; parameters $threshold and those of :func:`_family_params`."""
    seg_select = "seg.segment_name AS segment" if segments else "NULL::VARCHAR AS segment"
    seg_join = ("LEFT JOIN (SELECT customer_id, any_value(segment_name) AS segment_name FROM customer_segments "
                "GROUP BY 1) seg USING (customer_id)") if segments else ""
    family = " ".join(f"WHEN starts_with(top_reason, $p{i}) THEN $f{i}" for i in range(len(REASON_FAMILIES)))
    return f"""SELECT *, CASE {family} ELSE 'other' END AS reason_family FROM (
        SELECT t.transaction_id AS alert_id, t.* EXCLUDE (transaction_id), s.score, s.scorer, s.model_id,
               s.scored_at AS raised_at, s.score * t.amount AS expected_loss, s.reasons,
               json_extract_string(s.reasons, '$[0].feature') AS top_reason, {seg_select}
        FROM (SELECT * FROM {scores} WHERE score >= $threshold
              OR transaction_id IN (SELECT alert_id FROM decision_alerts)) s  -- filtered before the join: 4x faster
        JOIN {transactions} t USING (transaction_id) {seg_join})"""


def _case_history(cur, flags: list[str]) -> None:
    """Each customer's transactions with score and flags, sorted by customer."""
    cur.execute(f"CREATE OR REPLACE TABLE case_history AS {history_select(flags)} ORDER BY t.customer_id, t.ts")
