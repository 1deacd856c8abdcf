"""`python -m fraudlab watch …` (and other operator commands that run beside the app): thin wrappers that print."""
from __future__ import annotations

from fraudlab.workspace import Workspace


def add_watch(sub) -> None:
    """Register `watch FOLDER`."""
    from fraudlab.incremental.watch import add_arguments

    add_arguments(sub.add_parser("watch", help="load files as they land in a folder, each once, incrementally"),
                  _watch)


def _watch(args) -> int:
    from fraudlab.incremental.watch import run_watch

    return run_watch(Workspace(args.workspace), args, show=print)
