"""How people log in: demo session, built-in accounts or OpenID Connect; session time-out; roles from claims."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from fraudlab.auth.actors import ROLES, Actor
from fraudlab.auth.users import has_accounts, user_role
from fraudlab.config import SAMPLE_PATH
from fraudlab.workspace import Workspace, file_sha256


@dataclass(frozen=True)
class AuthSettings:
    """Login settings from the environment: FRAUDLAB_AUTH=required, FRAUDLAB_SESSION_MINUTES, FRAUDLAB_ROLE_CLAIM."""

    required: bool = False
    session_minutes: int = 60
    role_claim: str = "fraudlab_role"


def auth_settings() -> AuthSettings:
    """Read the login settings (read per call: tests and operators change the environment)."""
    minutes = os.environ.get("FRAUDLAB_SESSION_MINUTES", "60")
    return AuthSettings(
        required=os.environ.get("FRAUDLAB_AUTH", "").strip().lower() == "required",
        session_minutes=max(int(minutes), 1) if minutes.strip().isdigit() else 60,
        role_claim=os.environ.get("FRAUDLAB_ROLE_CLAIM", "fraudlab_role").strip() or "fraudlab_role",
    )


@lru_cache(maxsize=1)
def _sample_sha() -> str:
    return file_sha256(SAMPLE_PATH)


def holds_only_sample(ws: Workspace) -> bool:
    """Whether everything loaded so far is the bundled sample (or nothing at all)."""
    return not ws.scalar("SELECT count(*) FROM ingests WHERE rows_loaded > 0 AND sha256 IS DISTINCT FROM ?",
                         [_sample_sha()])


def login_mode(ws: Workspace, oidc: bool, settings: AuthSettings | None = None) -> str:
    """'demo' (bundled sample, no accounts, login not required), 'setup' (create the first admin) or 'login'."""
    settings = settings or auth_settings()
    if oidc or has_accounts(ws):
        return "login"
    if settings.required or not holds_only_sample(ws):
        return "setup"
    return "demo"


def expired(last_seen: datetime | None, now: datetime, settings: AuthSettings | None = None) -> bool:
    """Whether a session idle since last_seen has timed out."""
    settings = settings or auth_settings()
    return last_seen is not None and now - last_seen > timedelta(minutes=settings.session_minutes)


def oidc_actor(ws: Workspace, claims: dict, settings: AuthSettings | None = None) -> Actor | None:
    """The Actor of an OpenID Connect login: role from the configured claim, else from the users table; None when
    the identity has no fraudlab role (it may not act)."""
    settings = settings or auth_settings()
    name = str(claims.get("email") or claims.get("preferred_username") or claims.get("sub") or "").strip()
    if not name:
        return None
    claimed = claims.get(settings.role_claim)
    candidates = claimed if isinstance(claimed, list) else [claimed]
    role = next((str(c) for c in candidates if str(c) in ROLES), None) or user_role(ws, name)
    return Actor(name, role, via="oidc") if role else None


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def network_refusal(address: str | None, mode: str) -> str | None:
    """Why the app refuses to serve (None when fine): a network address without login is refused."""
    if mode == "demo" and (address or "") not in LOOPBACK:
        return ("This server listens on a network address, but no login is configured. Create the first admin "
                "(python -m fraudlab users add NAME --role admin) or configure OpenID Connect, or bind to "
                "127.0.0.1 (the project's .streamlit/config.toml does).")
    return None
