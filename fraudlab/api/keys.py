"""API keys, one per integration: only their sha256 is stored; the key itself is shown once, when created.

The demo session needs none: while no key was ever created and the workspace holds nothing but the bundled sample
(plus events posted to the API), requests are answered without one. Anything else needs `Authorization: Bearer KEY`.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import pandas as pd

from fraudlab.auth.actors import Actor
from fraudlab.auth.permissions import require
from fraudlab.auth.session import login_mode
from fraudlab.errors import FraudlabError
from fraudlab.workspace import Workspace, utcnow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def key_hash(key: str) -> str:
    """The sha256 (hex) of a key: all the workspace keeps of it."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(ws: Workspace, name: str, who: Actor | None) -> str:
    """A fresh key for integration `name` (returned once, stored only as its hash); a live name is refused."""
    require(ws, who, "manage_api_keys", name)
    if not NAME.match(name or ""):
        raise FraudlabError("a key name is 1-63 letters, digits, '.', '_' or '-', e.g. 'checkout-service'")
    key = secrets.token_urlsafe(32)
    with ws.write("api_key_created", who, {"name": name}, bump=False) as cur:
        row = cur.execute("SELECT revoked_at FROM api_keys WHERE name = ?", [name]).fetchone()
        if row is not None and row[0] is None:
            raise FraudlabError(f"an API key named {name!r} exists: revoke it first or choose another name")
        cur.execute("INSERT OR REPLACE INTO api_keys VALUES (?, ?, ?, ?, NULL)", [name, key_hash(key), utcnow(), who.name])
    return key


def revoke_key(ws: Workspace, name: str, who: Actor | None) -> None:
    """Revoke a key by name (its requests get 401 from now on)."""
    require(ws, who, "manage_api_keys", name)
    with ws.write("api_key_revoked", who, {"name": name}, bump=False) as cur:
        found = cur.execute("UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                            [utcnow(), name]).fetchone()[0]
        if not found:
            raise FraudlabError(f"no live API key named {name!r}")


def list_keys(ws: Workspace) -> pd.DataFrame:
    """Every key's name, who created it and when, and when it was revoked (never the key or its hash)."""
    return ws.df("SELECT name, created_at, created_by, revoked_at FROM api_keys ORDER BY created_at")


def key_name(ws: Workspace, key: str | None) -> str | None:
    """The name of the live key `key`, or None."""
    if not key:
        return None
    digest = key_hash(key)
    rows = ws.df("SELECT name, key_sha256 FROM api_keys WHERE revoked_at IS NULL")
    for name, stored in zip(rows["name"], rows["key_sha256"]):
        if hmac.compare_digest(str(stored), digest):
            return str(name)
    return None


def is_demo(ws: Workspace) -> bool:
    """True in the demo session (no account, no API key ever created, only the bundled sample): then no key is
    needed."""
    return not ws.scalar("SELECT count(*) FROM api_keys") and login_mode(ws, oidc=False) == "demo"


def key_command(ws: Workspace, action: str, name: str | None, who: Actor | None) -> list[str]:
    """What `python -m fraudlab api-keys ACTION [NAME]` does, as the lines it prints."""
    if action == "list":
        keys = list_keys(ws)
        return [f"{r.name:<24} created {r.created_at:%Y-%m-%d %H:%M} by {r.created_by}"
                + (f", revoked {r.revoked_at:%Y-%m-%d %H:%M}" if not pd.isna(r.revoked_at) else "")
                for r in keys.itertuples()] or ["no API keys yet (the demo session needs none)"]
    if not name:
        raise FraudlabError(f"api-keys {action} needs a NAME")
    if action == "create":
        return [create_key(ws, name, who), f"(the key for {name!r}, shown once: only its sha256 is stored; "
                                           "send it as 'Authorization: Bearer KEY')"]
    if action == "revoke":
        revoke_key(ws, name, who)
        return [f"revoked the API key {name!r}"]
    raise FraudlabError(f"unknown api-keys action {action!r}: create, list or revoke")
