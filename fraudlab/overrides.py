"""Guard overrides under four eyes: one admin asks with a written reason, a different admin approves or rejects."""
from __future__ import annotations

import pandas as pd

from fraudlab.auth.actors import Actor
from fraudlab.auth.permissions import refuse, require
from fraudlab.errors import FraudlabError
from fraudlab.promotion import make_champion
from fraudlab.registry import get_model
from fraudlab.workspace import Workspace, utcnow


def pending_overrides(ws: Workspace) -> pd.DataFrame:
    """Override requests waiting for a second admin, oldest first."""
    return ws.df("SELECT request_id, model_id, reason, requested_by, requested_at FROM override_requests "
                 "WHERE status = 'pending' ORDER BY request_id")


def _pending(ws: Workspace, request_id: int) -> tuple[str, str, str]:
    row = ws.df("SELECT model_id, reason, requested_by FROM override_requests WHERE request_id = ? "
                "AND status = 'pending'", [int(request_id)])
    if row.empty:
        raise FraudlabError(f"no pending override request {request_id}")
    return row["model_id"].iloc[0], row["reason"].iloc[0], row["requested_by"].iloc[0]


def _check_second(ws: Workspace, actor: Actor, request_id: int, requested_by: str) -> None:
    if actor.name == requested_by:
        refuse(ws, actor, "guard_override", "A guard override needs a second admin: you asked for this one, so "
               "another admin must approve it.", str(request_id))


def approve_override(ws: Workspace, actor: Actor, request_id: int) -> str:
    """A second admin approves: the model becomes champion with the written reason. Returns the model id."""
    require(ws, actor, "guard_override", str(request_id))
    model_id, reason, requested_by = _pending(ws, request_id)
    _check_second(ws, actor, request_id, requested_by)
    get_model(ws, model_id)
    _close(ws, actor, request_id, "approved")
    make_champion(ws, model_id, actor, {"model_id": model_id, "request_id": int(request_id),
                                        "requested_by": requested_by},
                  f"guard overridden: {reason} (asked by {requested_by}, approved by {actor.name})")
    return model_id


def reject_override(ws: Workspace, actor: Actor, request_id: int) -> None:
    """A second admin rejects the override request; the champion stays."""
    require(ws, actor, "guard_override", str(request_id))
    _, _, requested_by = _pending(ws, request_id)
    _check_second(ws, actor, request_id, requested_by)
    _close(ws, actor, request_id, "rejected")


def _close(ws: Workspace, actor: Actor, request_id: int, status: str) -> None:
    with ws.write(f"override_{status}", actor, {"request_id": int(request_id)}) as cur:
        cur.execute("UPDATE override_requests SET status = ?, decided_by = ?, decided_at = ? WHERE request_id = ?",
                    [status, actor.name, utcnow(), int(request_id)])
