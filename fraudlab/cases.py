"""Case queue, decisions, assignment and locks: where analysts spend their day.

A case is a scored transaction at or above the alert threshold (or one that was ever decided); case_id is the
transaction_id. The `cases` table is a small materialised view rebuilt when the scores change, so the queue
pages through thousands of alerts instead of millions of scored rows. Decisions are append-only: the current
state of a case is its newest decision, two analysts deciding at once both keep theirs, and the second learns
that someone else decided first.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from fraudlab.errors import DecisionConflict, FraudlabError
from fraudlab.privacy import mask_cards
from fraudlab.workspace import Workspace, utcnow

DECISIONS = ("fraud", "legitimate", "escalate")
STATUSES = ("open", "fraud", "legitimate", "escalated")
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
QUEUE_COLUMNS = ("case_id", "ts", "amount", "score", "expected_loss", "status", "assignee", "reason_family",
                 "top_reason", "customer_id", "card_id", "merchant_id", "category", "channel", "country", "scorer",
                 "model_id", "decided_by", "decided_at", "age_hours", "sla_breached")


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


def reason_family(feature: str | None) -> str:
    """The family of a feature named in a reason ("velocity", "shared identifier", …), for filtering."""
    if not feature:
        return "other"
    for prefix, family in REASON_FAMILIES.items():
        if feature.startswith(prefix):
            return family
    return "other"


# ------------------------------------------------------------------------------------------ tables

def ensure_tables(ws: Workspace) -> None:
    """Create the assignment / lock table and the case-queue metadata if missing."""
    if ws.has_table("case_assignments") and ws.has_table("case_meta"):
        return
    with ws.write() as cur:
        cur.execute("""CREATE TABLE IF NOT EXISTS case_assignments (case_id VARCHAR PRIMARY KEY, assignee VARCHAR,
                       assigned_at TIMESTAMP, locked_by VARCHAR, locked_until TIMESTAMP)""")
        cur.execute("CREATE TABLE IF NOT EXISTS case_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")


def _scores_fingerprint(ws: Workspace, threshold: float) -> str:
    row = ws.df("SELECT count(*) AS n, max(scored_at) AS last FROM scores").iloc[0]
    segmented = ws.scalar("SELECT max(assigned_at) FROM customer_segments") if ws.has_table("customer_segments") else None
    return f"{row['n']}|{row['last']}|{threshold:.6f}|{segmented}"


def refresh_cases(ws: Workspace, threshold: float | None = None, force: bool = False) -> int:
    """Rebuild the `cases` table when scores (or the threshold) changed; returns the number of cases."""
    from fraudlab.model import decision_threshold

    ensure_tables(ws)
    threshold = decision_threshold(ws) if threshold is None else threshold
    fingerprint = _scores_fingerprint(ws, threshold)
    if not force and ws.has_table("cases") and \
            ws.scalar("SELECT value FROM case_meta WHERE key = 'fingerprint'") == fingerprint:
        return ws.count("cases")
    segments = ws.has_table("customer_segments")
    seg_select = "seg.segment_name AS segment" if segments else "NULL::VARCHAR AS segment"
    seg_join = ("LEFT JOIN (SELECT customer_id, any_value(segment_name) AS segment_name FROM customer_segments "
                "GROUP BY 1) seg USING (customer_id)") if segments else ""
    cols = set(ws.columns("transactions"))
    feature_cols = set(ws.columns("features")) if ws.has_table("features") else set()
    flags = [c for c in ("c_new_device", "c_new_country") if c in feature_cols]
    with ws.write() as cur:
        cur.execute(f"""CREATE OR REPLACE TABLE cases AS
            SELECT t.transaction_id AS case_id, t.* EXCLUDE (transaction_id), s.score, s.scorer, s.model_id,
                   s.scored_at AS raised_at, s.score * t.amount AS expected_loss, s.reasons,
                   json_extract_string(s.reasons, '$[0].feature') AS top_reason, {seg_select}
            FROM scores s JOIN transactions t USING (transaction_id) {seg_join}
            WHERE s.score >= $threshold OR s.transaction_id IN (SELECT case_id FROM decisions)""",
                    {"threshold": threshold})
        cur.execute("ALTER TABLE cases ADD COLUMN reason_family VARCHAR")
        cur.execute("UPDATE cases SET reason_family = 'other'")
        for prefix, family in REASON_FAMILIES.items():
            cur.execute("UPDATE cases SET reason_family = $f WHERE starts_with(top_reason, $p) "
                        "AND reason_family = 'other'", {"f": family, "p": prefix})
        cur.execute("CREATE INDEX IF NOT EXISTS cases_id ON cases (case_id)")
        # lookup tables sorted by their key, so a case page reads a few row groups instead of scanning millions
        if "customer_id" in cols:
            flag_sql = "".join(f", f.{c}" for c in flags)
            feature_join = "LEFT JOIN features f USING (transaction_id)" if flags else ""
            cur.execute(f"""CREATE OR REPLACE TABLE case_history AS
                SELECT t.customer_id, t.transaction_id, t.ts, t.amount, t.merchant_id, t.category, t.channel,
                       t.country, t.device_id, s.score{flag_sql}
                FROM transactions t LEFT JOIN scores s USING (transaction_id) {feature_join}
                WHERE t.customer_id IS NOT NULL ORDER BY t.customer_id, t.ts""")
            parts = [f"SELECT '{kind}' AS kind, {col} AS value, customer_id, is_fraud FROM transactions "
                     f"WHERE {col} IS NOT NULL" for col, kind in LINK_KINDS.items()]
            cur.execute(f"""CREATE OR REPLACE TABLE case_entities AS
                SELECT kind, value, count(DISTINCT customer_id) AS customers, count(*) AS transactions,
                       count(*) FILTER (is_fraud) AS fraud
                FROM ({' UNION ALL '.join(parts)}) GROUP BY 1, 2 ORDER BY 1, 2""")
        cur.execute("INSERT OR REPLACE INTO case_meta VALUES ('fingerprint', ?), ('threshold', ?)",
                    [fingerprint, str(threshold)])
    return ws.count("cases")


# ------------------------------------------------------------------------------------------ queue

_STATE_SQL = """
WITH newest AS (
    SELECT case_id, arg_max(decision, decision_id) AS decision, arg_max(analyst, decision_id) AS decided_by,
           max(decided_at) AS decided_at
    FROM decisions GROUP BY case_id
)
SELECT c.*, CASE WHEN n.decision IS NULL THEN 'open' WHEN n.decision = 'escalate' THEN 'escalated'
                 ELSE n.decision END AS status,
       n.decided_by, n.decided_at, a.assignee, a.locked_by, a.locked_until,
       (epoch($now) - epoch(c.raised_at)) / 3600 AS age_hours
FROM cases c LEFT JOIN newest n USING (case_id) LEFT JOIN case_assignments a USING (case_id)
"""


def _where(f: QueueFilter) -> tuple[str, dict]:
    clauses, params = [], {}
    simple = (("ts >= $start", "start", f.start), ("ts <= $end", "end", f.end),
              ("score >= $min_score", "min_score", f.min_score), ("score <= $max_score", "max_score", f.max_score),
              ("amount >= $min_amount", "min_amount", f.min_amount),
              ("amount <= $max_amount", "max_amount", f.max_amount), ("assignee = $assignee", "assignee", f.assignee))
    for clause, name, value in simple:
        if value is not None:
            clauses.append(clause)
            params[name] = value
    lists = (("status", "statuses", f.statuses), ("reason_family", "families", f.reason_families),
             ("segment", "segments", f.segments), ("country", "countries", f.countries),
             ("channel", "channels", f.channels))
    for column, name, values in lists:
        if values:
            clauses.append(f"list_contains(${name}, {column})")
            params[name] = list(values)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


SORTS = {"score": "score DESC", "expected_loss": "expected_loss DESC", "age": "ts ASC", "amount": "amount DESC"}


def queue(ws: Workspace, filters: QueueFilter = QueueFilter(), sort: str = "score", limit: int = PAGE_SIZE,
          offset: int = 0) -> tuple[pd.DataFrame, int]:
    """One page of the case queue (ranked, filtered) and the total number of matching cases."""
    refresh_cases(ws)
    where, params = _where(filters)
    params.update(now=utcnow(), limit=int(limit), offset=int(offset))
    order = SORTS.get(sort, SORTS["score"])
    base = f"SELECT * FROM ({_STATE_SQL}) q{where}"
    page = ws.df(f"""SELECT *, age_hours > {SLA_HOURS} AND status IN ('open', 'escalated') AS sla_breached
                     FROM ({base}) ORDER BY {order}, case_id LIMIT $limit OFFSET $offset""", params)
    total = int(ws.scalar(f"SELECT count(*) FROM ({base})", {k: v for k, v in params.items()
                                                              if k not in ("limit", "offset")}))
    return page, total


def assignment_stamp(ws: Workspace) -> str:
    """Changes whenever a case is taken, locked or assigned (locks do not bump the workspace version)."""
    ensure_tables(ws)
    row = ws.df("SELECT count(*) AS n, max(assigned_at) AS a, max(locked_until) AS l FROM case_assignments").iloc[0]
    return f"{row['n']}|{row['a']}|{row['l']}"


def queue_options(ws: Workspace) -> dict[str, list]:
    """Values the queue filters can offer (countries, channels, reason families, segments, assignees)."""
    refresh_cases(ws)
    def values(col: str, table: str = "cases") -> list:
        return [v for v in ws.df(f"SELECT DISTINCT {col} AS v FROM {table} WHERE {col} IS NOT NULL ORDER BY 1")["v"]]
    return {"countries": values("country"), "channels": values("channel"), "reason_families": values("reason_family"),
            "segments": values("segment"), "assignees": values("assignee", "case_assignments")}


def alert_budget(ws: Workspace) -> dict:
    """Alerts per day in the queue against the champion's daily alert budget."""
    from fraudlab.registry import champion

    refresh_cases(ws)
    stats = ws.df("""SELECT count(*) AS cases, count(DISTINCT CAST(ts AS DATE)) AS days,
                            max(CAST(ts AS DATE)) AS last_day FROM cases""").iloc[0]
    current = champion(ws)
    budget = (current or {}).get("metrics", {}).get("alert_budget_per_day")
    days = max(int(stats["days"] or 0), 1)
    return {"cases": int(stats["cases"]), "per_day": int(stats["cases"]) / days, "budget_per_day": budget,
            "threshold": float(ws.scalar("SELECT value FROM case_meta WHERE key = 'threshold'") or 0.5)}


# ------------------------------------------------------------------------------------------ decisions

def _newest(cur, case_id: str) -> tuple | None:
    return cur.execute("SELECT decision_id, decision, analyst, decided_at FROM decisions WHERE case_id = ? "
                       "ORDER BY decision_id DESC LIMIT 1", [case_id]).fetchone()


def _validate(decision: str, analyst: str) -> None:
    if decision not in DECISIONS:
        raise FraudlabError(f"unknown decision {decision!r}: choose one of {', '.join(DECISIONS)}")
    if not str(analyst or "").strip():
        raise FraudlabError("a decision needs the analyst's name (type it in the sidebar)")


def _record(cur, case_id: str, decision: str, analyst: str, note: str, now: datetime) -> tuple[int, tuple | None]:
    previous = _newest(cur, case_id)
    decision_id = cur.execute("SELECT nextval('decision_seq')").fetchone()[0]
    cur.execute("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                [decision_id, case_id, analyst, decision, note, now, previous[0] if previous else None])
    if decision != "escalate":
        cur.execute("INSERT INTO labels VALUES (?, ?, ?, 'analyst')", [case_id, decision == "fraud", now])
    cur.execute("UPDATE case_assignments SET locked_by = NULL, locked_until = NULL WHERE case_id = ?", [case_id])
    return int(decision_id), previous


def decide(ws: Workspace, case_id: str, decision: str, analyst: str, note: str = "",
           expected_previous: int | None = None) -> DecisionResult:
    """Append a decision (and an analyst label); if someone decided since `expected_previous`, report the conflict."""
    _validate(decision, analyst)
    ensure_tables(ws)
    with ws.write("decision", analyst, {"case_id": case_id, "decision": decision, "note": note}) as cur:
        if not cur.execute("SELECT count(*) FROM transactions WHERE transaction_id = ?", [case_id]).fetchone()[0]:
            raise FraudlabError(f"no transaction {case_id!r} in this workspace")
        decision_id, previous = _record(cur, case_id, decision, analyst, note, utcnow())
    conflict = None
    previous_id = previous[0] if previous else None
    if previous is not None and previous_id != expected_previous and previous[2] != analyst:
        conflict = {"decision_id": previous_id, "decision": previous[1], "analyst": previous[2],
                    "decided_at": previous[3]}
    return DecisionResult(decision_id, case_id, decision, analyst, previous_id, conflict)


def decide_many(ws: Workspace, case_ids: list[str], decision: str, analyst: str, note: str = "") -> list[DecisionResult]:
    """The same decision on several cases in one transaction (bulk actions, whole rings)."""
    _validate(decision, analyst)
    ensure_tables(ws)
    ids = list(dict.fromkeys(case_ids))
    results = []
    with ws.write("bulk_decision", analyst, {"cases": len(ids), "decision": decision, "note": note}) as cur:
        now = utcnow()
        for case_id in ids:
            decision_id, previous = _record(cur, case_id, decision, analyst, note, now)
            results.append(DecisionResult(decision_id, case_id, decision, analyst, previous[0] if previous else None))
    return results


def require_no_conflict(result: DecisionResult) -> DecisionResult:
    """Raise DecisionConflict (the decision is already stored) when someone else decided first."""
    if result.conflict:
        c = result.conflict
        raise DecisionConflict(f"{c['analyst']} decided '{c['decision']}' on {result.case_id} at {c['decided_at']} "
                               f"before you; both decisions are kept, yours is the newest")
    return result


def current_decisions(ws: Workspace, case_ids: list[str]) -> pd.DataFrame:
    """Newest decision per case (case_id, decision, analyst, decided_at, decision_id)."""
    return ws.df("""SELECT case_id, arg_max(decision, decision_id) AS decision, arg_max(analyst, decision_id) AS analyst,
                           max(decided_at) AS decided_at, max(decision_id) AS decision_id
                    FROM decisions WHERE case_id IN (SELECT unnest($ids)) GROUP BY case_id""", {"ids": list(case_ids)})


def decision_history(ws: Workspace, case_id: str) -> pd.DataFrame:
    """Every decision on a case, newest first."""
    return ws.df("SELECT decision_id, analyst, decision, note, decided_at, previous_decision_id FROM decisions "
                 "WHERE case_id = ? ORDER BY decision_id DESC", [case_id])


# ------------------------------------------------------------------------------------------ team work

def take_case(ws: Workspace, case_id: str, analyst: str, minutes: int = LOCK_MINUTES) -> datetime:
    """Assign a case to the analyst and lock it for `minutes`; raise CaseLocked if someone else holds it."""
    ensure_tables(ws)
    now = utcnow()
    with ws.write("case_taken", analyst, {"case_id": case_id}, bump=False) as cur:
        row = cur.execute("SELECT locked_by, locked_until FROM case_assignments WHERE case_id = ?", [case_id]).fetchone()
        if row and row[0] and row[0] != analyst and row[1] and row[1] > now:
            raise CaseLocked(f"{row[0]} is working on case {case_id} until {row[1]:%H:%M} UTC")
        until = now + timedelta(minutes=minutes)
        cur.execute("INSERT OR REPLACE INTO case_assignments VALUES (?, ?, ?, ?, ?)",
                    [case_id, analyst, now, analyst, until])
    return until


def release_case(ws: Workspace, case_id: str, analyst: str) -> None:
    """Drop the analyst's lock on a case (the assignment stays)."""
    ensure_tables(ws)
    with ws.write(bump=False) as cur:
        cur.execute("UPDATE case_assignments SET locked_by = NULL, locked_until = NULL "
                    "WHERE case_id = ? AND locked_by = ?", [case_id, analyst])


def lock_holder(ws: Workspace, case_id: str) -> tuple[str, datetime] | None:
    """Who holds a live lock on the case, and until when (None when free)."""
    ensure_tables(ws)
    row = ws.df("SELECT locked_by, locked_until FROM case_assignments WHERE case_id = ? AND locked_until > ?",
                [case_id, utcnow()])
    return None if row.empty or row["locked_by"].iloc[0] is None else (row["locked_by"].iloc[0],
                                                                        row["locked_until"].iloc[0].to_pydatetime())


def next_case(ws: Workspace, analyst: str, filters: QueueFilter = QueueFilter()) -> str | None:
    """Take the highest-scored open case that is free (or already the analyst's); None when the queue is empty."""
    refresh_cases(ws)
    where, params = _where(filters)
    params.update(now=utcnow(), me=analyst)
    extra = ("status IN ('open', 'escalated') AND (assignee IS NULL OR assignee = $me) "
             "AND (locked_by IS NULL OR locked_by = $me OR locked_until <= $now)")
    where = (where + " AND " + extra) if where else " WHERE " + extra
    for case_id in ws.df(f"SELECT case_id FROM ({_STATE_SQL}) q{where} ORDER BY score DESC LIMIT 5",
                         params)["case_id"]:
        try:
            take_case(ws, case_id, analyst)
            return case_id
        except CaseLocked:
            continue
    return None


def assign_round_robin(ws: Workspace, analysts: list[str], cap: int = 20, who: str = "system") -> pd.DataFrame:
    """Give open, unassigned cases to the analysts in turn, highest score first, up to `cap` open cases each."""
    refresh_cases(ws)
    analysts = [a for a in dict.fromkeys(a.strip() for a in analysts) if a]
    if not analysts:
        raise FraudlabError("name at least one analyst to assign cases to")
    load = ws.df(f"SELECT assignee, count(*) AS n FROM ({_STATE_SQL}) q WHERE status IN ('open', 'escalated') "
                 "AND assignee IS NOT NULL GROUP BY 1", {"now": utcnow()})
    room = {a: cap - int(load.loc[load["assignee"] == a, "n"].sum()) for a in analysts}
    free = ws.df(f"SELECT case_id FROM ({_STATE_SQL}) q WHERE status = 'open' AND assignee IS NULL "
                 "ORDER BY score DESC LIMIT $n", {"now": utcnow(), "n": max(sum(max(r, 0) for r in room.values()), 0)})
    plan, turn = [], 0
    for case_id in free["case_id"]:
        for _ in range(len(analysts)):
            analyst = analysts[turn % len(analysts)]
            turn += 1
            if room[analyst] > 0:
                room[analyst] -= 1
                plan.append((case_id, analyst))
                break
    if plan:
        with ws.write("cases_assigned", who, {"cases": len(plan), "analysts": analysts, "cap": cap}) as cur:
            now = utcnow()
            for case_id, analyst in plan:
                cur.execute("INSERT OR REPLACE INTO case_assignments VALUES (?, ?, ?, NULL, NULL)",
                            [case_id, analyst, now])
    return pd.DataFrame(plan, columns=["case_id", "assignee"])


# ------------------------------------------------------------------------------------------ case detail

def case_detail(ws: Workspace, case_id: str, history_rows: int = 200) -> CaseDetail:
    """The case with its state, the customer's history, linked entities, similar decided cases and decisions."""
    refresh_cases(ws)
    frame = ws.df(f"SELECT * FROM ({_STATE_SQL}) q WHERE case_id = $id", {"id": case_id, "now": utcnow()})
    if frame.empty:
        tx = ws.df("SELECT t.*, s.score, s.scorer, s.model_id, s.reasons FROM transactions t "
                   "LEFT JOIN scores s USING (transaction_id) WHERE t.transaction_id = ?", [case_id])
        if tx.empty:
            raise FraudlabError(f"no transaction {case_id!r} in this workspace")
        frame = tx.rename(columns={"transaction_id": "case_id"}).assign(status="not an alert")
    case = frame.iloc[0]
    reasons = pd.DataFrame(json.loads(case["reasons"])) if isinstance(case.get("reasons"), str) else pd.DataFrame()
    return CaseDetail(case, customer_history(ws, case, history_rows), linked_entities(ws, case),
                      similar_cases(ws, case), decision_history(ws, case_id), reasons)


def customer_history(ws: Workspace, case: pd.Series, rows: int = 200) -> pd.DataFrame:
    """The customer's transactions around the case, with first-seen device / country flags and scores."""
    if not isinstance(case.get("customer_id"), str) or not ws.has_table("case_history"):
        return pd.DataFrame()
    return ws.df("""SELECT *, transaction_id = $id AS is_case FROM case_history WHERE customer_id = $cust
                    ORDER BY abs(epoch(ts) - epoch($ts::TIMESTAMP)) LIMIT $n""",
                 {"id": case["case_id"], "cust": case["customer_id"], "ts": case["ts"], "n": rows}
                 ).sort_values("ts", ignore_index=True)


LINK_KINDS = {"device_id": "device", "ip": "IP address", "card_id": "card", "email": "email"}


def linked_entities(ws: Workspace, case: pd.Series) -> pd.DataFrame:
    """Identifiers of the case shared with other customers, with their labelled and decided fraud."""
    keys = {LINK_KINDS[col]: case.get(col) for col in LINK_KINDS if isinstance(case.get(col), str)}
    if not keys or not ws.has_table("case_entities"):
        return pd.DataFrame(columns=["kind", "value", "other_customers", "transactions", "fraud", "decided_fraud"])
    found = ws.df("""SELECT kind, value, customers - 1 AS other_customers, transactions, fraud FROM case_entities
                     WHERE (kind = 'device' AND value = $device) OR (kind = 'IP address' AND value = $ip)
                        OR (kind = 'card' AND value = $card) OR (kind = 'email' AND value = $email)""",
                  {"device": keys.get("device"), "ip": keys.get("IP address"), "card": keys.get("card"),
                   "email": keys.get("email")})
    decided = ws.df("""SELECT c.device_id, c.ip, c.card_id, c.email FROM cases c
                       JOIN (SELECT case_id, arg_max(decision, decision_id) AS decision FROM decisions GROUP BY 1) d
                       USING (case_id) WHERE d.decision = 'fraud'""")
    column = {v: k for k, v in LINK_KINDS.items()}
    found["decided_fraud"] = [int((decided[column[k]] == v).sum()) for k, v in zip(found["kind"], found["value"])]
    cards = found["kind"] == "card"
    found.loc[cards, "value"] = mask_cards(found.loc[cards, "value"])
    return found.sort_values("other_customers", ascending=False, ignore_index=True)


def similar_cases(ws: Workspace, case: pd.Series, n: int = 5) -> pd.DataFrame:
    """Decided cases with the same leading reason and the closest score, and how they were decided."""
    return ws.df("""SELECT c.case_id, c.ts, c.amount, c.score, c.top_reason, d.decision, d.analyst, d.decided_at
                    FROM cases c JOIN (SELECT case_id, arg_max(decision, decision_id) AS decision,
                                              arg_max(analyst, decision_id) AS analyst, max(decided_at) AS decided_at
                                       FROM decisions GROUP BY case_id) d USING (case_id)
                    WHERE c.case_id <> $id AND (c.reason_family = $family OR $family IS NULL)
                    ORDER BY abs(c.score - $score) LIMIT $n""",
                 {"id": case["case_id"], "family": case.get("reason_family"), "score": float(case.get("score") or 0),
                  "n": n})
