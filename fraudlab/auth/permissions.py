"""What each role may do, checked inside the library (a hidden button is not the control), refusals audited."""
from __future__ import annotations

from fraudlab.auth.actors import ROLES, Actor, role_label
from fraudlab.errors import FraudlabError
from fraudlab.workspace import Workspace

ALL = frozenset(ROLES)
CASEWORK = frozenset({"analyst", "reviewer", "admin"})

# action → roles allowed. "system" (the app's own start-up) may only bring the workspace up to date.
ACTIONS: dict[str, frozenset[str]] = {
    "decide": CASEWORK,
    "decide_escalated": frozenset({"reviewer", "admin"}),
    "bulk_decide": frozenset({"reviewer", "admin"}),
    "reopen": frozenset({"reviewer", "admin"}),
    "comment": ALL,
    "take_case": CASEWORK,
    "assign": frozenset({"manager", "admin"}),
    "qa_review": frozenset({"manager", "admin"}),
    "resegment": frozenset({"manager", "data_scientist", "admin", "system"}),
    "train": frozenset({"data_scientist", "admin"}),
    "promote": frozenset({"data_scientist", "admin"}),
    "rollback": frozenset({"data_scientist", "admin"}),
    "guard_override": frozenset({"admin"}),
    "edit_features": frozenset({"data_scientist", "admin"}),
    "run_drift": frozenset({"data_scientist", "admin", "system"}),
    "load_data": frozenset({"admin"}),
    "clear_data": frozenset({"admin"}),
    "manage_users": frozenset({"admin"}),
    "manage_api_keys": frozenset({"admin"}),
    "refresh": frozenset({"admin", "system"}),
}

# Actions a demo session (bundled sample, no accounts) may not take: they need a real first admin.
DEMO_REFUSED = frozenset({"load_data", "clear_data", "manage_users", "manage_api_keys"})

# page (file stem under pages/) → roles that see it.
PAGES: dict[str, frozenset[str]] = {
    "home": ALL,
    "queue": ALL,
    "case": ALL,
    "customer": ALL,
    "rings": ALL,
    "team": frozenset({"reviewer", "manager", "admin"}),
    "segments": frozenset({"manager", "data_scientist", "admin"}),
    "drift": frozenset({"data_scientist", "manager", "admin"}),
    "models": ALL,  # analysts read what drives the score; only data scientists and admins act there
    "feature_lab": frozenset({"data_scientist", "admin"}),
    "data": frozenset({"admin"}),
    "audit": frozenset({"admin", "manager"}),
    "users": frozenset({"admin"}),
    "jobs": frozenset({"data_scientist", "admin"}),  # the roles that run write jobs (fraudlab.job_kinds)
}


class NotAllowed(FraudlabError, PermissionError):
    """The acting identity's role does not allow this action; nothing was changed."""


def can(actor: Actor | None, action: str) -> bool:
    """Whether the actor's role allows the action (unknown actions are allowed to nobody)."""
    if not isinstance(actor, Actor):
        return False
    if actor.via == "demo" and action in DEMO_REFUSED:
        return False
    return actor.role in ACTIONS.get(action, frozenset())


def can_see(actor: Actor | None, page: str) -> bool:
    """Whether the actor's role sees a page."""
    return isinstance(actor, Actor) and actor.role in PAGES.get(page, frozenset())


def require(ws: Workspace, actor: Actor | None, action: str, subject: str = "") -> Actor:
    """Return the actor if its role allows the action; otherwise audit the refusal and raise NotAllowed."""
    if can(actor, action):
        return actor
    if not isinstance(actor, Actor):
        raise NotAllowed(f"'{action}' needs a logged-in user; nothing was changed")
    refuse(ws, actor, action, _why(actor, action), subject)


def refuse(ws: Workspace, actor: Actor, action: str, message: str, subject: str = "") -> None:
    """Audit a refused action and raise NotAllowed with the message (nothing else is written)."""
    with ws.write("refused", actor, {"action": action, "subject": subject, "why": message}, bump=False):
        pass
    raise NotAllowed(message)


def _why(actor: Actor, action: str) -> str:
    if actor.via == "demo" and action in DEMO_REFUSED:
        return ("This is a demo session on the bundled sample: create the first admin account "
                "(python -m fraudlab users add NAME --role admin) and log in to do this.")
    allowed = ", ".join(role_label(r) for r in sorted(ACTIONS.get(action, ())) if r != "system") or "nobody"
    return (f"{actor.name} is logged in as {role_label(actor.role)}, which cannot {action.replace('_', ' ')}; "
            f"allowed: {allowed}. Nothing was changed.")
