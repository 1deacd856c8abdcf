"""Decisions: append-only, conflicts reported to the second analyst, analyst labels through fraudlab.labels."""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from fraudlab.cases.build import DECISIONS, DecisionResult
from fraudlab.errors import DecisionConflict, FraudlabError
from fraudlab.labels import record_analyst_labels
from fraudlab.workspace import Workspace, utcnow


def newest_of(cur, case_id: str) -> tuple | None:
    return cur.execute("SELECT decision_id, decision, analyst, decided_at FROM decisions WHERE case_id = ? "
                       "ORDER BY decision_id DESC LIMIT 1", [case_id]).fetchone()


def _validate(decision: str, analyst: str) -> None:
    if decision not in DECISIONS:
        raise FraudlabError(f"unknown decision {decision!r}: choose one of {', '.join(DECISIONS)}")
    if not str(analyst or "").strip():
        raise FraudlabError("a decision needs the analyst's name (type it in the sidebar)")


def _record(cur, case_id: str, decision: str, analyst: str, note: str, now: datetime) -> tuple[int, tuple | None]:
    previous = newest_of(cur, case_id)
    decision_id = cur.execute("SELECT nextval('decision_seq')").fetchone()[0]
    cur.execute("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                [decision_id, case_id, analyst, decision, note, now, previous[0] if previous else None])
    if decision != "escalate":
        record_analyst_labels(cur, [case_id], decision == "fraud")
    cur.execute("UPDATE case_assignments SET locked_by = NULL, locked_until = NULL WHERE case_id = ?", [case_id])
    return int(decision_id), previous


def decide(ws: Workspace, case_id: str, decision: str, analyst: str, note: str = "",
           expected_previous: int | None = None) -> DecisionResult:
    """Append a decision (and an analyst label); if someone decided since `expected_previous`, report the conflict."""
    _validate(decision, analyst)
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
