"""Benchmark what logins and roles cost: one password check (argon2, once per session), the per-page identity work
(login mode + page filter), and the role check inside a library action — against the targets of 200 ms and 1 ms.

    python benchmarks/bench_auth.py [--repeat 2000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import measure, report

from fraudlab.auth import users
from fraudlab.auth.actors import Actor
from fraudlab.auth.permissions import PAGES, can, can_see, require
from fraudlab.auth.session import AuthSettings, login_mode
from fraudlab.workspace import Workspace

PASSWORD = "benchmark password"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ws = Workspace(Path(folder) / "auth.duckdb")
        users.add_user(ws, None, "root", "admin", PASSWORD)
        analyst = Actor("al", "analyst")
        logins = 20
        login, _ = measure("password login (argon2 verify + audit row)", logins,
                        lambda: [users.authenticate(ws, "root", PASSWORD) for _ in range(logins)])
        login.note = f"{login.seconds / logins * 1000:.1f} ms a login (target < 200 ms)"

        def per_page() -> None:
            for _ in range(args.repeat):
                login_mode(ws, oidc=False, settings=AuthSettings())
                [can_see(analyst, page) for page in PAGES]
        page, _ = measure("per page: login mode + page filter", args.repeat, per_page)
        page.note = f"{page.seconds / args.repeat * 1000:.2f} ms a page load"

        def checks() -> None:
            for _ in range(args.repeat):
                require(ws, analyst, "decide")
        check, _ = measure("role check inside an action (require)", args.repeat, checks)
        check.note = f"{check.seconds / args.repeat * 1e6:.1f} µs an action (target < 1 ms)"
        began = time.perf_counter()
        pure = sum(can(analyst, "decide") for _ in range(args.repeat * 10))
        assert pure == args.repeat * 10
        check.note += f"; pure can(): {(time.perf_counter() - began) / (args.repeat * 10) * 1e6:.2f} µs"
        ws.close()
    report([login, page, check], title="logins and roles")


if __name__ == "__main__":
    main()
