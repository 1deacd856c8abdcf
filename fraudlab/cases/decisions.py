"""Decisions: append-only, conflicts reported to the second analyst, analyst labels through fraudlab.labels."""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from fraudlab.auth.actors import Actor
from fraudlab.auth.permissions import refuse, require
from fraudlab.cases.build import CLOSE_REASONS, DECISIONS, DecisionResult
from fraudlab.errors import DecisionConflict, FraudlabError
from fraudlab.labels import record_analyst_labels
from fraudlab.workspace import Workspace, utcnow


def _subject(cur, subject_id: str) -> tuple[str, list[str]]:
    """(case id, alerts covered) for a case id (all its alerts), an alert (that alert, inside its case) or any
    other transaction (itself)."""
    rows = cur.execute("SELECT case_id, alert_id FROM alerts WHERE case_id = ? OR alert_id = ?",
                       [subject_id, subject_id]).fetchall()
    if not rows:
        if not cur.execute("SELECT count(*) FROM transactions WHERE transaction_id = ?", [subject_id]).fetchone()[0]:
            raise FraudlabError(f"no transaction {subject_id!r} in this workspace")
        return subject_id, [subject_id]
    case_ids = {case for case, _ in rows}
    if subject_id in case_ids:
        return subject_id, sorted(alert for case, alert in rows if case == subject_id)
    return rows[0][0], [subject_id]


def newest_of(cur, case_id: str, alerts: list[str] | None = None) -> tuple | None:
    """The newest decision on the case or on any of the given alerts: (id, decision, analyst, time)."""
    return cur.execute("""SELECT decision_id, decision, analyst, decided_at FROM decisions
                          WHERE case_id = $case OR decision_id IN (SELECT decision_id FROM decision_alerts
                                                                    WHERE list_contains($alerts, alert_id))
                          ORDER BY decision_id DESC LIMIT 1""",
                       {"case": case_id, "alerts": list(alerts or [])}).fetchone()


def _validate(decision: str, note: str = "", close_reason: str | None = None) -> None:
    if decision not in DECISIONS:
        raise FraudlabError(f"unknown decision {decision!r}: choose one of {', '.join(DECISIONS)}")
    if decision == "reopen" and not str(note or "").strip():
        raise FraudlabError("reopening a case needs a reason in the note")
    allowed = CLOSE_REASONS.get(decision, ())
    if close_reason is not None and close_reason not in allowed:
        choices = ", ".join(allowed) if allowed else "none for this decision"
        raise FraudlabError(f"unknown close reason {close_reason!r} for '{decision}': choose one of {choices}")


def _record(cur, subject_id: str, decision: str, analyst: str, note: str, now: datetime,
            close_reason: str | None = None, alerts: list[str] | None = None) -> tuple[int, tuple | None, str]:
    case_id, covered = _subject(cur, subject_id)
    if alerts is not None:
        outside = sorted(set(alerts) - set(covered))
        if outside:
            raise FraudlabError(f"alert(s) {', '.join(outside)} are not part of case {case_id}")
        covered = list(alerts)
    previous = newest_of(cur, case_id, covered)
    decision_id = cur.execute("SELECT nextval('decision_seq')").fetchone()[0]
    cur.execute("INSERT INTO decisions (decision_id, case_id, analyst, decision, note, decided_at, "
                "previous_decision_id, close_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [decision_id, case_id, analyst, decision, note, now, previous[0] if previous else None, close_reason])
    cur.execute("INSERT INTO decision_alerts SELECT $d, unnest($alerts)", {"d": decision_id, "alerts": covered})
    if decision in ("fraud", "legitimate"):
        record_analyst_labels(cur, covered, decision == "fraud")
    cur.execute("UPDATE case_assignments SET locked_by = NULL, locked_until = NULL WHERE case_id = ?", [case_id])
    return int(decision_id), previous, case_id


def decide(ws: Workspace, case_id: str, decision: str, actor: Actor | None, note: str = "",
           expected_previous: int | None = None, close_reason: str | None = None,
           alerts: list[str] | None = None) -> DecisionResult:
    """Decide a case: every alert in it is labelled (or only `alerts`, to override one inside the case); a
    transaction id that is no case decides that transaction. Append-only; if someone decided since
    `expected_previous`, the result names the conflict and both decisions are kept. Escalated cases are decided
    by a reviewer other than the person who escalated them (four eyes)."""
    _validate(decision, note, close_reason)
    _allowed(ws, actor, [case_id], decision)
    analyst = actor.name
    with ws.write("decision", actor, {"case_id": case_id, "decision": decision, "note": note,
                                        "close_reason": close_reason, "alerts": alerts}) as cur:
        decision_id, previous, case = _record(cur, case_id, decision, analyst, note, utcnow(), close_reason, alerts)
    conflict = None
    previous_id = previous[0] if previous else None
    if previous is not None and previous_id != expected_previous and previous[2] != analyst:
        conflict = {"decision_id": previous_id, "decision": previous[1], "analyst": previous[2],
                    "decided_at": previous[3]}
    return DecisionResult(decision_id, case, decision, analyst, previous_id, conflict)


def decide_many(ws: Workspace, case_ids: list[str], decision: str, actor: Actor | None, note: str = "",
                close_reason: str | None = None) -> list[DecisionResult]:
    """The same decision on several cases (or alerts, or transactions) in one transaction: bulk actions, rings
    (reviewers and admins)."""
    _validate(decision, note, close_reason)
    ids = list(dict.fromkeys(case_ids))
    require(ws, actor, "bulk_decide", f"{len(ids)} cases")
    _allowed(ws, actor, ids, decision)
    return _write_many(ws, actor, ids, decision, note, close_reason)


def escalate_for_qa(ws: Workspace, case_ids: list[str], actor: Actor | None, note: str) -> list[DecisionResult]:
    """QA: escalate sampled closed cases so a reviewer decides them again (managers; no decision of their own)."""
    ids = list(dict.fromkeys(case_ids))
    require(ws, actor, "qa_review", f"{len(ids)} cases")
    return _write_many(ws, actor, ids, "escalate", note, None)


def _write_many(ws: Workspace, actor: Actor, ids: list[str], decision: str, note: str,
                close_reason: str | None) -> list[DecisionResult]:
    analyst = actor.name
    results = []
    with ws.write("bulk_decision", actor, {"cases": len(ids), "decision": decision, "note": note,
                                             "close_reason": close_reason}) as cur:
        now = utcnow()
        for case_id in ids:
            decision_id, previous, case = _record(cur, case_id, decision, analyst, note, now, close_reason)
            results.append(DecisionResult(decision_id, case, decision, analyst, previous[0] if previous else None))
    return results


def _allowed(ws: Workspace, actor: Actor | None, subjects: list[str], decision: str) -> None:
    """Refuse (audited) what the actor's role may not decide: reopening, escalated cases, one's own escalation."""
    require(ws, actor, "reopen" if decision == "reopen" else "decide", subjects[0] if subjects else "")
    escalated = ws.df("""SELECT d.case_id, d.analyst FROM decisions d JOIN decision_alerts da USING (decision_id)
                         WHERE list_contains($ids, d.case_id) OR list_contains($ids, da.alert_id)
                         QUALIFY row_number() OVER (PARTITION BY d.case_id ORDER BY d.decision_id DESC) = 1
                            AND d.decision = 'escalate'""", {"ids": list(subjects)})
    if escalated.empty:
        return
    require(ws, actor, "decide_escalated", escalated["case_id"].iloc[0])
    own = escalated[escalated["analyst"] == actor.name]
    if not own.empty:
        refuse(ws, actor, "decide_escalated", f"You escalated case {own['case_id'].iloc[0]}: someone else must "
               "review it (four eyes). Nothing was changed.", own["case_id"].iloc[0])


def require_no_conflict(result: DecisionResult) -> DecisionResult:
    """Raise DecisionConflict (the decision is already stored) when someone else decided first."""
    if result.conflict:
        c = result.conflict
        raise DecisionConflict(f"{c['analyst']} decided '{c['decision']}' on {result.case_id} at {c['decided_at']} "
                               f"before you; both decisions are kept, yours is the newest")
    return result


def current_decisions(ws: Workspace, alert_ids: list[str]) -> pd.DataFrame:
    """Newest decision covering each alert (or transaction) id: case_id (the id asked), decision, analyst,
    decided_at, decision_id. A case id is its first alert's id, so asking for cases works too."""
    return ws.df("""SELECT da.alert_id AS case_id, arg_max(d.decision, d.decision_id) AS decision,
                           arg_max(d.analyst, d.decision_id) AS analyst, max(d.decided_at) AS decided_at,
                           max(d.decision_id) AS decision_id
                    FROM decision_alerts da JOIN decisions d USING (decision_id)
                    WHERE list_contains($ids, da.alert_id) GROUP BY da.alert_id""", {"ids": list(alert_ids)})


def decision_history(ws: Workspace, case_id: str) -> pd.DataFrame:
    """Every decision on a case or any of its alerts, newest first, with how many alerts each covered."""
    return ws.df("""SELECT d.decision_id, d.analyst, d.decision, d.close_reason, d.note, d.decided_at,
                           count(da.alert_id) AS alerts, d.previous_decision_id
                    FROM decisions d LEFT JOIN decision_alerts da USING (decision_id)
                    WHERE d.case_id = $id OR d.decision_id IN (
                        SELECT decision_id FROM decision_alerts WHERE alert_id = $id
                           OR alert_id IN (SELECT alert_id FROM alerts WHERE case_id = $id))
                    GROUP BY ALL ORDER BY d.decision_id DESC""", {"id": case_id})


def add_comment(ws: Workspace, case_id: str, actor: Actor | None, body: str) -> int:
    """Append a comment to a case's thread (comments are never edited or deleted); returns its id."""
    require(ws, actor, "comment", case_id)
    if not str(body or "").strip():
        raise FraudlabError("the comment is empty")
    with ws.write("case_comment", actor, {"case_id": case_id}) as cur:
        comment_id = int(cur.execute("SELECT nextval('comment_seq')").fetchone()[0])
        cur.execute("INSERT INTO case_comments VALUES (?, ?, ?, ?, ?)",
                    [comment_id, case_id, actor.name, body, utcnow()])
    return comment_id


def case_comments(ws: Workspace, case_id: str) -> pd.DataFrame:
    """A case's comment thread, oldest first."""
    return ws.df("SELECT author, body, created_at FROM case_comments WHERE case_id = ? ORDER BY comment_id",
                 [case_id])
