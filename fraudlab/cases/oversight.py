"""The manager's view of the team: decisions per analyst and day, time to decision, SLA breaches, agreement of
analysts' decisions with labels that arrived later, and a random quality-assurance sample for second review."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fraudlab.auth.actors import Actor
from fraudlab.cases.build import SLA_HOURS
from fraudlab.cases.decisions import escalate_for_qa
from fraudlab.cases.queue import STATE_SQL
from fraudlab.workspace import Workspace, utcnow

QA_NOTE = "quality-assurance sample: second review"


@dataclass(frozen=True)
class TeamReport:
    """What a manager reads about the team's work."""

    per_day: pd.DataFrame       # day, analyst, decisions, alerts
    per_analyst: pd.DataFrame   # analyst, decisions, cases, median / p90 hours to decision, late, agreement
    open_over_sla: int
    open_cases: int


# A case's first decision against its first alert; "late" when it came after the SLA.
_FIRST_DECISIONS = """
SELECT d.case_id, arg_min(d.analyst, d.decision_id) AS analyst, min(d.decided_at) AS decided_at,
       (epoch(min(d.decided_at)) - epoch(any_value(c.raised_at))) / 3600 AS hours
FROM decisions d JOIN cases c USING (case_id) WHERE d.decision <> 'reopen' GROUP BY d.case_id
"""

# Analysts' fraud / legitimate calls on alerts that the source data labelled too (a chargeback, a confirmation).
_AGREEMENT = """
SELECT d.analyst, count(*) AS checked, count(*) FILTER ((d.decision = 'fraud') = l.is_fraud) AS agreed
FROM decisions d JOIN decision_alerts da USING (decision_id)
JOIN labels l ON l.transaction_id = da.alert_id AND l.source = 'data'
WHERE d.decision IN ('fraud', 'legitimate') GROUP BY d.analyst
"""


def team_report(ws: Workspace) -> TeamReport:
    """Decisions per analyst per day, time to decision, SLA breaches and agreement with later labels."""
    per_day = ws.df("""SELECT CAST(d.decided_at AS DATE) AS day, d.analyst, count(DISTINCT d.decision_id) AS decisions,
                              count(da.alert_id) AS alerts
                       FROM decisions d LEFT JOIN decision_alerts da USING (decision_id)
                       GROUP BY ALL ORDER BY day DESC, decisions DESC""")
    per_analyst = ws.df(f"""
        WITH first AS ({_FIRST_DECISIONS}), agreement AS ({_AGREEMENT}),
        made AS (SELECT analyst, count(*) AS decisions FROM decisions GROUP BY analyst)
        SELECT m.analyst, m.decisions, count(f.case_id) AS cases_first_decided,
               median(f.hours) AS median_hours_to_decision, quantile_cont(f.hours, 0.9) AS p90_hours_to_decision,
               count(*) FILTER (f.hours > {SLA_HOURS}) AS decided_after_sla,
               any_value(a.checked) AS checked_against_labels,
               any_value(a.agreed) / nullif(any_value(a.checked), 0) AS agreement_with_labels
        FROM made m LEFT JOIN first f USING (analyst) LEFT JOIN agreement a USING (analyst)
        GROUP BY m.analyst, m.decisions ORDER BY m.decisions DESC""")
    state = ws.df(f"""SELECT count(*) FILTER (status IN ('open', 'escalated')) AS open_cases,
                             count(*) FILTER (status IN ('open', 'escalated') AND age_hours > {SLA_HOURS}) AS late
                      FROM ({STATE_SQL}) q""", {"now": utcnow()}).iloc[0]
    return TeamReport(per_day, per_analyst, int(state["late"] or 0), int(state["open_cases"] or 0))


def qa_sample(ws: Workspace, n: int = 10, seed: int = 0) -> pd.DataFrame:
    """A random sample of closed cases (fraud or legitimate), the same for the same seed and workspace state."""
    return ws.df(f"""SELECT case_id, customer_id, alerts, score, amount, status, decided_by, decided_at
                     FROM ({STATE_SQL}) q WHERE status IN ('fraud', 'legitimate')
                     ORDER BY hash(case_id || $seed) LIMIT $n""", {"now": utcnow(), "seed": str(seed), "n": int(n)})


def send_for_review(ws: Workspace, case_ids: list[str], actor: Actor | None) -> int:
    """Escalate sampled closed cases so a reviewer decides them again (audited); returns how many were sent."""
    return len(escalate_for_qa(ws, case_ids, actor, QA_NOTE))
