"""The audit trail as people read it: who did what, in which role, filtered by person and action."""
from __future__ import annotations

import pandas as pd

from fraudlab.auth.actors import role_label
from fraudlab.workspace import Workspace


def audit_choices(ws: Workspace) -> tuple[list[str], list[str]]:
    """The people and the actions that appear in the audit trail (for the filters)."""
    people = ws.df("SELECT DISTINCT who FROM audit WHERE who IS NOT NULL ORDER BY 1")["who"].tolist()
    actions = ws.df("SELECT DISTINCT action FROM audit WHERE action IS NOT NULL ORDER BY 1")["action"].tolist()
    return people, actions


def audit_trail(ws: Workspace, people: list[str] | None = None, actions: list[str] | None = None,
                limit: int = 1000) -> pd.DataFrame:
    """Newest audit rows first, optionally only these people and actions: when, who, role (in words), how they
    logged in, action, details."""
    trail = ws.df("""SELECT logged_at, who, coalesce(role, '') AS role, coalesce(via, '') AS login, action, details
                    FROM audit
                    WHERE (len($people) = 0 OR list_contains($people, who))
                      AND (len($actions) = 0 OR list_contains($actions, action))
                    ORDER BY audit_id DESC LIMIT $limit""",
                 {"people": list(people or []), "actions": list(actions or []), "limit": int(limit)})
    trail["role"] = trail["role"].map(lambda r: role_label(r) if r else "")
    return trail
