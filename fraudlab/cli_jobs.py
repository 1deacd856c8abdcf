"""How the command line runs a write job: handed to the app's server when one owns the workspace, else here."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from fraudlab import handoff
from fraudlab.auth.actors import cli_actor
from fraudlab.config import load_config
from fraudlab.errors import WorkspaceError
from fraudlab.workspace import Workspace


def _for_server(job_args: dict) -> dict:
    """The job's file paths as the server must read them: absolute, not from our folder (a glob stays a glob)."""
    return {name: os.path.abspath(os.path.expanduser(value)) if name in ("path", "html") and value else value
            for name, value in job_args.items()}


def run_job(kind: str, job_args: dict, workspace: str | None = None) -> int:
    """Run a write job: handed to the server that owns the workspace if one runs, else directly here."""
    path = Path(workspace) if workspace else load_config().workspace_path
    server = handoff.live_server(path)
    if server is not None:
        return _hand_off(server, kind, job_args)
    from fraudlab.job_kinds import run_kind

    result = run_kind(_open_directly(path), kind, job_args, cli_actor())
    print("\n".join(result.lines))
    return 0


def _open_directly(path: Path) -> Workspace:
    """The workspace opened by this process; when another holds it, say which and what to do."""
    try:
        return Workspace(path)
    except WorkspaceError as exc:
        if "lock" not in str(exc).lower():
            raise
        raise WorkspaceError(f"{exc}\nAnother program holds this workspace. If it is the app's server, run this "
                             f"command as a user who can read {handoff.server_file(path)} (the server then runs the "
                             f"job); otherwise wait until that program has finished.") from exc


def _hand_off(server: handoff.ServerInfo, kind: str, job_args: dict) -> int:
    """Submit the job to the running server, show its progress on one line, print its summary as a direct run."""
    user = cli_actor().name
    job = handoff.submit(server, kind, _for_server(job_args), user)
    print(f"the app's server (pid {server.pid}) owns this workspace: {kind} runs there as job {job['job_id']}",
          file=sys.stderr, flush=True)
    line = _ProgressLine()
    try:
        record = handoff.follow(server, job["job_id"], user, line.show)
    except KeyboardInterrupt:
        line.end()
        handoff.cancel(server, job["job_id"], user)
        print(f"asked the server to cancel job {job['job_id']}", file=sys.stderr)
        return 130
    line.end()
    if record["status"] != "done":
        print(f"error: job {record['job_id']} {record['status']}: {record.get('error') or record['message']}",
              file=sys.stderr)
        return 2
    print("\n".join(record["result"]["lines"]))
    return 0


class _ProgressLine:
    """One text line on stderr showing a job's progress: rewritten in place on a terminal, a line per change else."""

    def __init__(self) -> None:
        self.tty, self.last = sys.stderr.isatty(), ""

    def show(self, record: dict) -> None:
        text = f"[{record['progress']:>4.0%}] {record['status']}: {record['message']}"[:120]
        if text == self.last:
            return
        self.last = text
        print(f"\r{text:<120}" if self.tty else text, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.tty and self.last:
            print(file=sys.stderr)
