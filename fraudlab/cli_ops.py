"""Operator commands that run beside the app (`serve`, `watch FOLDER`, `api-keys`): thin wrappers that print."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from fraudlab.auth.actors import cli_actor
from fraudlab.workspace import Workspace


def add_watch(sub) -> None:
    """Register `watch FOLDER`."""
    from fraudlab.incremental.watch import add_arguments

    add_arguments(sub.add_parser("watch", help="load files as they land in a folder, each once, incrementally"),
                  _watch)


def _watch(args) -> int:
    from fraudlab import handoff
    from fraudlab.config import load_config
    from fraudlab.incremental.watch import run_watch

    server = handoff.live_server(Path(args.workspace) if args.workspace else load_config().workspace_path)
    if server is None:
        return run_watch(Workspace(args.workspace), args, show=print)
    print(f"the app's server (pid {server.pid}) owns this workspace: each file is loaded there as a job", flush=True)
    return run_watch(None, args, show=print, loader=server_loader(server, args.late_horizon_hours))


def server_loader(server, late_horizon_hours: float | None):
    """A watch loader that hands each file to the app's server as an ingest job (with refresh) and waits for it."""
    from fraudlab import handoff
    from fraudlab.errors import FraudlabError

    user = cli_actor().name

    def load(path: Path) -> tuple[str, str, list[str]]:
        job = handoff.submit(server, "ingest", {"path": str(path.resolve()), "refresh": True,
                                                "late_horizon_hours": late_horizon_hours}, user)
        record = handoff.follow(server, job["job_id"], user)
        if record["status"] != "done":
            raise FraudlabError(f"job {record['job_id']} {record['status']}: {record.get('error') or record['message']}")
        summary = record["result"]  # the job's summary, with its printed lines
        status = "loaded" if summary.get("status") == "ok" else "skipped"
        return status, f"{summary.get('message', '')} (job {record['job_id']})", list(summary.get("steps") or [])

    return load


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


def add_serve(sub) -> None:
    """Register `serve`: the UI and the HTTP API in one process, the workspace's one writer."""
    p = sub.add_parser("serve", help="run the app and its HTTP API in one process (what `streamlit run app.py` does)")
    p.add_argument("--workspace", default=None, help="workspace file (default: FRAUDLAB_WORKSPACE or data/)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="localhost", help="interface to listen on (a network address needs logins)")
    p.set_defaults(func=_serve)


def serve_command(args) -> tuple[list[str], dict[str, str]]:
    """The `streamlit run app.py` command line and environment `serve` runs."""
    app = Path(__file__).resolve().parents[1] / "app.py"
    env = dict(os.environ)
    if args.workspace:
        env["FRAUDLAB_WORKSPACE"] = str(Path(args.workspace).resolve())
    return ([sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
             "--server.address", args.address, "--server.headless", "true",
             "--browser.gatherUsageStats", "false"], env)


def _serve(args) -> int:
    command, env = serve_command(args)
    print(f"fraudlab: serving {env.get('FRAUDLAB_WORKSPACE', 'the default workspace')} at "
          f"http://{args.address}:{args.port} (UI) and http://{args.address}:{args.port}/api/v1 (API); Ctrl-C stops")
    sys.stdout.flush()
    os.execve(command[0], command, env)  # streamlit takes this process over: signals reach it directly
    return 0  # not reached
