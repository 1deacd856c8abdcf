"""Who acts: an authenticated identity and its role, carried into every library action and every audit row."""
from __future__ import annotations

import getpass
from dataclasses import dataclass

ROLES: dict[str, str] = {
    "analyst": "Works and decides cases",
    "reviewer": "Reviews escalations, bulk decisions, reopens cases",
    "manager": "Dashboards, assignment, SLA and QA; no decisions on cases",
    "data_scientist": "Features, training, drift; promotes only through the guard",
    "admin": "Users, settings, guard overrides, data loading",
}

# How the identity was proven. "system" is the app's own start-up work; "demo" the marked demo session.
SOURCES = ("password", "oidc", "cli", "api", "demo", "system")


@dataclass(frozen=True)
class Actor:
    """A proven identity acting in fraudlab: a name, one role, and how it logged in."""

    name: str
    role: str
    via: str = "password"

    def __post_init__(self) -> None:
        if not str(self.name or "").strip():
            raise ValueError("an actor needs a name")
        if self.role not in ROLES and self.role != "system":
            raise ValueError(f"unknown role {self.role!r}: choose one of {', '.join(ROLES)}")
        if self.via not in SOURCES:
            raise ValueError(f"unknown login source {self.via!r}")

    @property
    def label(self) -> str:
        """How the actor is shown: name and role in plain words."""
        return f"{self.name} ({role_label(self.role)})"


def role_label(role: str) -> str:
    """A role in plain words (data_scientist → Data scientist)."""
    return role.replace("_", " ").capitalize()


SYSTEM = Actor("system", "system", via="system")
DEMO = Actor("demo", "admin", via="demo")


def cli_actor() -> Actor:
    """The operating-system user running a command: whoever can run it can open the workspace file anyway."""
    return Actor(getpass.getuser() or "operator", "admin", via="cli")
