"""Operator commands that run beside the app (`watch FOLDER`, `api-keys`): thin wrappers that print."""
from __future__ import annotations

from fraudlab.auth.actors import cli_actor
from fraudlab.workspace import Workspace


def add_watch(sub) -> None:
    """Register `watch FOLDER`."""
    from fraudlab.incremental.watch import add_arguments

    add_arguments(sub.add_parser("watch", help="load files as they land in a folder, each once, incrementally"),
                  _watch)


def _watch(args) -> int:
    from fraudlab.incremental.watch import run_watch

    return run_watch(Workspace(args.workspace), args, show=print)


def add_api_keys(sub) -> None:
    """Register `api-keys create NAME | list | revoke NAME`."""
    p = sub.add_parser("api-keys", help="HTTP API keys: create NAME (prints the key once), list, revoke NAME")
    p.add_argument("action", choices=("create", "list", "revoke"))
    p.add_argument("name", nargs="?", default=None)
    p.add_argument("--workspace", default=None, help="workspace file (default: FRAUDLAB_WORKSPACE)")
    p.set_defaults(func=_api_keys)


def _api_keys(args) -> int:
    from fraudlab.api.keys import key_command

    print("\n".join(key_command(Workspace(args.workspace), args.action, args.name, who=cli_actor())))
    return 0
