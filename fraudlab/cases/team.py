"""Team work: taking and releasing cases, locks, the next case, round-robin assignment."""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from fraudlab.auth.actors import Actor
from fraudlab.auth.permissions import require
from fraudlab.cases.build import LOCK_MINUTES, CaseLocked, QueueFilter
from fraudlab.cases.queue import STATE_SQL, where_of
from fraudlab.errors import FraudlabError
from fraudlab.workspace import Workspace, utcnow


def take_case(ws: Workspace, case_id: str, actor: Actor | None, minutes: int = LOCK_MINUTES) -> datetime:
    """Assign a case to the analyst and lock it for `minutes`; raise CaseLocked if someone else holds it."""
    require(ws, actor, "take_case", case_id)
    analyst, now = actor.name, utcnow()
    with ws.write("case_taken", actor, {"case_id": case_id}, bump=False) as cur:
        row = cur.execute("SELECT locked_by, locked_until FROM case_assignments WHERE case_id = ?", [case_id]).fetchone()
        if row and row[0] and row[0] != analyst and row[1] and row[1] > now:
            raise CaseLocked(f"{row[0]} is working on case {case_id} until {row[1]:%H:%M} UTC")
        until = now + timedelta(minutes=minutes)
        cur.execute("INSERT OR REPLACE INTO case_assignments VALUES (?, ?, ?, ?, ?)",
                    [case_id, analyst, now, analyst, until])
    return until


def release_case(ws: Workspace, case_id: str, actor: Actor | None) -> None:
    """Drop the actor's own lock on a case (the assignment stays)."""
    if not isinstance(actor, Actor):
        return
    with ws.write(bump=False) as cur:
        cur.execute("UPDATE case_assignments SET locked_by = NULL, locked_until = NULL "
                    "WHERE case_id = ? AND locked_by = ?", [case_id, actor.name])


def lock_holder(ws: Workspace, case_id: str) -> tuple[str, datetime] | None:
    """Who holds a live lock on the case, and until when (None when free)."""
    row = ws.df("SELECT locked_by, locked_until FROM case_assignments WHERE case_id = ? AND locked_until > ?",
                [case_id, utcnow()])
    return None if row.empty or row["locked_by"].iloc[0] is None else (row["locked_by"].iloc[0],
                                                                        row["locked_until"].iloc[0].to_pydatetime())


def next_case(ws: Workspace, actor: Actor | None, filters: QueueFilter = QueueFilter()) -> str | None:
    """Take the highest-scored open case that is free (or already the analyst's); None when the queue is empty."""
    require(ws, actor, "take_case")
    where, params = where_of(filters)
    params.update(now=utcnow(), me=actor.name)
    extra = ("status IN ('open', 'escalated') AND (assignee IS NULL OR assignee = $me) "
             "AND (locked_by IS NULL OR locked_by = $me OR locked_until <= $now)")
    where = (where + " AND " + extra) if where else " WHERE " + extra
    for case_id in ws.df(f"SELECT case_id FROM ({STATE_SQL}) q{where} ORDER BY score DESC LIMIT 5",
                         params)["case_id"]:
        try:
            take_case(ws, case_id, actor)
            return case_id
        except CaseLocked:
            continue
    return None


def assign_round_robin(ws: Workspace, analysts: list[str], cap: int = 20, who: Actor | None = None) -> pd.DataFrame:
    """Give open, unassigned cases to the analysts in turn, highest score first, up to `cap` open cases each."""
    require(ws, who, "assign")
    analysts = [a for a in dict.fromkeys(a.strip() for a in analysts) if a]
    if not analysts:
        raise FraudlabError("name at least one analyst to assign cases to")
    load = ws.df(f"SELECT assignee, count(*) AS n FROM ({STATE_SQL}) q WHERE status IN ('open', 'escalated') "
                 "AND assignee IS NOT NULL GROUP BY 1", {"now": utcnow()})
    room = {a: cap - int(load.loc[load["assignee"] == a, "n"].sum()) for a in analysts}
    free = ws.df(f"SELECT case_id FROM ({STATE_SQL}) q WHERE status = 'open' AND assignee IS NULL "
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
