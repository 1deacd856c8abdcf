"""Built-in accounts: argon2 password hashes (never the password), lock-out after repeated failures."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fraudlab.auth.actors import ROLES, Actor
from fraudlab.auth.permissions import refuse, require
from fraudlab.errors import FraudlabError
from fraudlab.workspace import Workspace, utcnow

MAX_FAILURES = 5
LOCKOUT_MINUTES = 15
MIN_PASSWORD = 10
_HASHER = PasswordHasher()


class LoginFailed(FraudlabError):
    """Wrong name or password, a disabled or locked account: one message that does not say which."""


@dataclass(frozen=True)
class UserRow:
    """One account as listed: never the hash."""

    name: str
    role: str
    active: bool
    locked: bool


def has_accounts(ws: Workspace) -> bool:
    """Whether any account exists (after the first one, login is required)."""
    return bool(ws.scalar("SELECT count(*) FROM users"))


def _check_new(name: str, role: str, password: str | None) -> None:
    if not str(name or "").strip() or len(name) > 64 or any(c.isspace() for c in name):
        raise FraudlabError("a user name is 1–64 characters without spaces")
    if role not in ROLES:
        raise FraudlabError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise FraudlabError(f"a password needs at least {MIN_PASSWORD} characters")


def add_user(ws: Workspace, actor: Actor | None, name: str, role: str, password: str | None) -> None:
    """Create an account (password None: OpenID Connect only). The very first account may be made by anyone who can
    reach this function and must be an admin; later ones need the admin role."""
    _check_new(name, role, password)
    first = not has_accounts(ws)
    if first and role != "admin":
        raise FraudlabError("the first account must be an admin (--role admin)")
    if not first:
        require(ws, actor, "manage_users", name)
    who = actor if isinstance(actor, Actor) and actor.via != "demo" else Actor(name, "admin", via="password")
    hashed = _HASHER.hash(password) if password is not None else None
    with ws.write("user_added", who, {"user": name, "role": role}) as cur:
        if cur.execute("SELECT count(*) FROM users WHERE name = ?", [name]).fetchone()[0]:
            raise FraudlabError(f"a user named {name!r} exists already")
        cur.execute("INSERT INTO users VALUES (?, ?, ?, true, 0, NULL, ?, ?)",
                    [name, role, hashed, utcnow(), who.name])


def authenticate(ws: Workspace, name: str, password: str) -> Actor:
    """The account's Actor when the password matches; counts failures, locks after MAX_FAILURES, audits both."""
    row = ws.df("SELECT role, password_hash, active, failed_logins, locked_until FROM users WHERE name = ?", [name])
    now = utcnow()
    ok = False
    if not row.empty and row["password_hash"].iloc[0]:
        try:
            ok = _HASHER.verify(row["password_hash"].iloc[0], password or "")
        except (VerificationError, InvalidHashError):
            ok = False
    locked = not row.empty and pd.notna(row["locked_until"].iloc[0]) and row["locked_until"].iloc[0] > now
    if ok and bool(row["active"].iloc[0]) and not locked:
        actor = Actor(name, row["role"].iloc[0], via="password")
        with ws.write("login", actor, {}, bump=False) as cur:
            cur.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE name = ?", [name])
        return actor
    _fail(ws, name, now, row)
    raise LoginFailed("Wrong user name or password, or the account is locked or disabled. "
                      f"After {MAX_FAILURES} failures an account is locked for {LOCKOUT_MINUTES} minutes.")


def _fail(ws: Workspace, name: str, now, row: pd.DataFrame) -> None:
    from fraudlab.auth.actors import SYSTEM

    with ws.write("login_failed", SYSTEM, {"user": name[:64]}, bump=False) as cur:
        if row.empty:
            return
        failures = int(row["failed_logins"].iloc[0] or 0) + 1
        until = now + timedelta(minutes=LOCKOUT_MINUTES) if failures >= MAX_FAILURES else None
        cur.execute("UPDATE users SET failed_logins = ?, locked_until = coalesce(?, locked_until) WHERE name = ?",
                    [0 if until else failures, until, name])


def list_users(ws: Workspace) -> list[UserRow]:
    """Every account, name order, without hashes."""
    rows = ws.df("SELECT name, role, active, coalesce(locked_until > ?, false) AS locked FROM users ORDER BY name",
                 [utcnow()])
    return [UserRow(r.name, r.role, bool(r.active), bool(r.locked)) for r in rows.itertuples()]


def user_role(ws: Workspace, name: str) -> str | None:
    """The role of an active account (None when unknown or disabled): OpenID Connect users' roles come from here."""
    return ws.scalar("SELECT role FROM users WHERE name = ? AND active", [name])


def _update(ws: Workspace, actor: Actor, name: str, action: str, sql: str, params: list, details: dict) -> None:
    require(ws, actor, "manage_users", name)
    with ws.write(action, actor, {"user": name, **details}) as cur:
        if not cur.execute("SELECT count(*) FROM users WHERE name = ?", [name]).fetchone()[0]:
            raise FraudlabError(f"no user named {name!r}")
        cur.execute(sql, params + [name])


def set_role(ws: Workspace, actor: Actor, name: str, role: str) -> None:
    """Change an account's role; nobody changes their own (four eyes)."""
    _check_new(name, role, None)
    if isinstance(actor, Actor) and actor.name == name:
        refuse(ws, actor, "manage_users", "You cannot change your own role: ask another admin.", name)
    _update(ws, actor, name, "user_role_set", "UPDATE users SET role = ? WHERE name = ?", [role], {"role": role})


def disable_user(ws: Workspace, actor: Actor, name: str) -> None:
    """Disable an account (kept for the audit trail); nobody disables themselves."""
    if isinstance(actor, Actor) and actor.name == name:
        refuse(ws, actor, "manage_users", "You cannot disable your own account: ask another admin.", name)
    _update(ws, actor, name, "user_disabled", "UPDATE users SET active = false WHERE name = ?", [], {})


def reset_password(ws: Workspace, actor: Actor, name: str, password: str) -> None:
    """Set a new password and lift a lock-out."""
    _check_new(name, "admin", password)
    _update(ws, actor, name, "user_password_reset",
            "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE name = ?",
            [_HASHER.hash(password)], {})
