"""`python -m fraudlab <command>`: each library module that offers a command registers it here."""
from __future__ import annotations

import argparse
import importlib
import sys

from fraudlab.errors import FraudlabError

COMMAND_MODULES = ("generate", "ingest", "features", "model", "scoring", "drift", "bench")


def build_parser() -> argparse.ArgumentParser:
    """Parser with a subcommand for every module that defines register_cli(subparsers)."""
    parser = argparse.ArgumentParser(prog="python -m fraudlab", description="fraudlab command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"fraudlab.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fraudlab.{name}":
                continue
            raise
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a FraudlabError prints its message and exits 2."""
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except FraudlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)
