"""How the command line finds the server that owns a workspace and hands it a job over loopback HTTP.

At start the server writes `<workspace>.server.json` beside the workspace file (pid, port, a random token; mode
0600, removed at exit): only a local user who can read the workspace's folder can read it, and the token proves
exactly that. `python -m fraudlab ingest|features|train|score|drift` looks for the file, checks that the pid is alive
and that the server answers its health route, then submits the job with the token and follows it to the end.
"""
from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fraudlab.errors import FraudlabError

LOOPBACK = "127.0.0.1"
USER_HEADER = "X-Fraudlab-User"


class HandOffRefused(FraudlabError):
    """The running server refused the job (401 / 403): the message says why and what to do."""


@dataclass(frozen=True)
class ServerInfo:
    """The server that owns a workspace: its process, its loopback port and the token local users present."""

    pid: int
    port: int
    token: str

    @property
    def url(self) -> str:
        """Base URL on the loopback interface."""
        return f"http://{LOOPBACK}:{self.port}"


def server_file(workspace: str | Path) -> Path:
    """Where the server of this workspace file announces itself: `<workspace>.server.json` beside it."""
    path = Path(workspace)
    return path.with_name(path.name + ".server.json")


def write_server_file(workspace: str | Path, port: int) -> ServerInfo:
    """Announce this process as the workspace's server (readable by its owner only); returns what was written."""
    info = ServerInfo(os.getpid(), int(port), secrets.token_urlsafe(32))
    target = server_file(workspace)
    temp = target.with_name(f".{target.name}.{info.pid}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"pid": info.pid, "port": info.port, "token": info.token}, fh)
    os.chmod(temp, 0o600)
    os.replace(temp, target)  # readers never see half a file
    return info


def remove_server_file(workspace: str | Path, info: ServerInfo) -> None:
    """Remove the announcement if it is still ours (a newer server's file is left alone)."""
    found = read_server_file(workspace, check_pid=False)
    if found is not None and found.token == info.token:
        server_file(workspace).unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id is running (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_server_file(workspace: str | Path, check_pid: bool = True) -> ServerInfo | None:
    """The announced server, or None: no file, a file this user cannot read or parse, or (checked) a dead pid."""
    try:
        raw = json.loads(server_file(workspace).read_text(encoding="utf-8"))
        info = ServerInfo(int(raw["pid"]), int(raw["port"]), str(raw["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if not check_pid or pid_alive(info.pid) else None


def live_server(workspace: str | Path, timeout: float = 15.0) -> ServerInfo | None:
    """The server owning this workspace if it is announced, alive and answers its health route; else None.

    Any HTTP answer counts (a 503 while its workspace has no model yet is still the server that holds the file).
    """
    info = read_server_file(workspace)
    if info is None:
        return None
    try:
        with urllib.request.urlopen(f"{info.url}/api/v1/health", timeout=timeout):
            return info
    except urllib.error.HTTPError:
        return info
    except (OSError, ValueError):
        return None


def _call(info: ServerInfo, method: str, path: str, user: str, body: dict | None = None,
          timeout: float = 30.0) -> dict[str, Any]:
    """One JSON request to the server with the token; 401/403 raise HandOffRefused, other errors FraudlabError."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{info.url}{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {info.token}", USER_HEADER: user, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        message = _error_message(exc)
        if exc.code in (401, 403):
            raise HandOffRefused(f"the server running this workspace (pid {info.pid}, port {info.port}) refused the "
                                 f"job: {message}") from exc
        raise FraudlabError(f"the server running this workspace answered {exc.code}: {message}") from exc
    except OSError as exc:
        raise FraudlabError(f"lost contact with the server running this workspace (port {info.port}): {exc}") from exc


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read() or b"{}")["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return exc.reason or "no details"


def submit(info: ServerInfo, kind: str, args: dict, user: str) -> dict[str, Any]:
    """Hand a job to the server as the local user `user`; returns its record (job_id, status, ...)."""
    return _call(info, "POST", "/api/v1/jobs", user, {"kind": kind, "args": args})


def status(info: ServerInfo, job_id: int, user: str) -> dict[str, Any]:
    """The job's current record."""
    return _call(info, "GET", f"/api/v1/jobs/{int(job_id)}", user)


def cancel(info: ServerInfo, job_id: int, user: str) -> dict[str, Any]:
    """Ask the server to cancel the job."""
    return _call(info, "POST", f"/api/v1/jobs/{int(job_id)}/cancel", user, {})


def follow(info: ServerInfo, job_id: int, user: str, on_progress: Callable[[dict], None] | None = None,
           poll_seconds: float = 0.5) -> dict[str, Any]:
    """Poll the job until it has finished, calling `on_progress` with each record; returns the final record."""
    while True:
        record = status(info, job_id, user)
        if on_progress is not None:
            on_progress(record)
        if record["status"] in ("done", "failed", "cancelled"):
            return record
        time.sleep(poll_seconds)
