"""`python -m fraudlab users …`: accounts for admins (the command line acts as the operating-system user)."""
from __future__ import annotations

import getpass
import sys

from fraudlab.auth import users
from fraudlab.auth.actors import ROLES, cli_actor
from fraudlab.errors import FraudlabError
from fraudlab.workspace import Workspace


def add_users(sub) -> None:
    """Register the `users` command group."""
    p = sub.add_parser("users", help="accounts: add, list, disable, set-role, reset-password")
    p.add_argument("--workspace", default=None, help="workspace file (default: FRAUDLAB_WORKSPACE)")
    group = p.add_subparsers(dest="users_command", required=True)
    add = group.add_parser("add", help="create an account (the first one must be an admin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=sorted(ROLES))
    add.add_argument("--password-stdin", action="store_true", help="read the password twice from standard input")
    add.add_argument("--oidc-only", action="store_true", help="no password: the person logs in with OpenID Connect")
    add.set_defaults(func=_add)
    group.add_parser("list", help="every account, its role and state").set_defaults(func=_list)
    disable = group.add_parser("disable", help="disable an account (kept for the audit trail)")
    disable.add_argument("name")
    disable.set_defaults(func=_disable)
    role = group.add_parser("set-role", help="change an account's role")
    role.add_argument("name")
    role.add_argument("role", choices=sorted(ROLES))
    role.set_defaults(func=_set_role)
    reset = group.add_parser("reset-password", help="set a new password and lift a lock-out")
    reset.add_argument("name")
    reset.add_argument("--password-stdin", action="store_true")
    reset.set_defaults(func=_reset)


def _password(from_stdin: bool) -> str:
    """The new password, typed twice (from standard input for scripts, else a hidden prompt); never echoed."""
    if from_stdin:
        lines = sys.stdin.read().splitlines()
        first, second = (lines + ["", ""])[:2]
    else:
        first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
    if first != second:
        raise FraudlabError("the two passwords differ; nothing was changed")
    return first


def _add(args) -> int:
    password = None if args.oidc_only else _password(args.password_stdin)
    users.add_user(Workspace(args.workspace), cli_actor(), args.name, args.role, password)
    print(f"added {args.name} as {args.role}")
    return 0


def _list(args) -> int:
    rows = users.list_users(Workspace(args.workspace))
    if not rows:
        print("no accounts yet: the app runs as a demo session while it holds only the bundled sample")
    for row in rows:
        state = "disabled" if not row.active else ("locked" if row.locked else "active")
        print(f"{row.name:<24} {row.role:<16} {state}")
    return 0


def _disable(args) -> int:
    users.disable_user(Workspace(args.workspace), cli_actor(), args.name)
    print(f"disabled {args.name}")
    return 0


def _set_role(args) -> int:
    users.set_role(Workspace(args.workspace), cli_actor(), args.name, args.role)
    print(f"{args.name} is now {args.role}")
    return 0


def _reset(args) -> int:
    users.reset_password(Workspace(args.workspace), cli_actor(), args.name, _password(args.password_stdin))
    print(f"new password set for {args.name}")
    return 0
