"""People and permissions: who acts (actors), what each role may do (permissions), accounts (users), logins
(session). Import the submodules directly; this package re-exports only the identity type."""
from fraudlab.auth.actors import DEMO, ROLES, SYSTEM, Actor, cli_actor, role_label

__all__ = ["Actor", "DEMO", "ROLES", "SYSTEM", "cli_actor", "role_label"]
