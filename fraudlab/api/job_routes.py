"""Starlette routes of background jobs: `POST /api/v1/jobs`, `GET /api/v1/jobs/{id}`, `POST /api/v1/jobs/{id}/cancel`.

Who may call them: an API key (`Authorization: Bearer KEY`; the job runs as the integration, role "system", which
may run drift) or the server's local token from `<workspace>.server.json` sent from the loopback interface (the job
runs as the local operating-system user named in `X-Fraudlab-User`, like a command run directly: see
fraudlab.auth.actors.cli_actor). The role is then checked in the library, as for any other action.

| status | when |
|---|---|
| 201 | the job was queued; the body is its record |
| 400 | the body is not a JSON object, the kind is unknown or an argument is missing |
| 401 | no valid key or token |
| 403 | the role may not run this kind of job, or may not cancel this job |
| 404 | no such job |
"""
from __future__ import annotations

import hmac
import json
import re
from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fraudlab.api.keys import key_name
from fraudlab.auth.actors import Actor
from fraudlab.auth.permissions import NotAllowed
from fraudlab.errors import FraudlabError, WorkspaceError
from fraudlab.handoff import USER_HEADER
from fraudlab.jobs_queue import JobNotFound, JobRunner, get_job, runner_for
from fraudlab.workspace import Workspace

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})
USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MAX_JOB_BODY = 16 * 1024


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def job_actor(request: Request, ws: Workspace, token: str | None, local_hosts: frozenset[str]) -> Actor | None:
    """Who sends this request: the local operator (server token from loopback) or an API key's integration."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        return None
    client = request.client.host if request.client else ""
    if token and client in local_hosts and hmac.compare_digest(secret.encode(), token.encode()):
        user = request.headers.get(USER_HEADER, "").strip()
        return Actor(user if USER_NAME.match(user) else "operator", "admin", via="cli")
    name = key_name(ws, secret)
    return Actor(f"api:{name}", "system", via="api") if name else None


def build_job_routes(get_workspace: Callable[[], Workspace], server_token: Callable[[], str | None] = lambda: None,
                     local_hosts: frozenset[str] = LOOPBACK_HOSTS) -> list[Route]:
    """The job routes over the server's open workspace and its one job runner."""

    def guarded(request: Request, work: Callable[[JobRunner, Actor], JSONResponse]) -> JSONResponse:
        try:
            ws = get_workspace()
            who = job_actor(request, ws, server_token(), local_hosts)
            if who is None:
                return _error(401, "unauthorised", "send an API key or the server's local token as "
                                                   "'Authorization: Bearer ...'")
            return work(runner_for(ws), who)
        except NotAllowed as exc:
            return _error(403, "forbidden", str(exc))
        except JobNotFound as exc:
            return _error(404, "not_found", str(exc))
        except WorkspaceError as exc:
            return _error(503, "workspace_unavailable", str(exc))
        except FraudlabError as exc:
            return _error(400, "bad_request", str(exc))

    async def submit(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_JOB_BODY:
            return _error(413, "too_large", f"a job request is at most {MAX_JOB_BODY:,} bytes")
        try:
            payload = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            return _error(400, "bad_json", 'send a JSON object: {"kind": "drift", "args": {}}')

        def work(runner: JobRunner, who: Actor) -> JSONResponse:
            record = runner.submit(payload.get("kind"), payload.get("args"), who)
            return JSONResponse(record.to_json(), status_code=201)
        return await run_in_threadpool(guarded, request, work)

    def visible(runner: JobRunner, who: Actor, job_id: int) -> JSONResponse:
        job = get_job(runner.ws, job_id)
        if who.via == "api" and job.who != who.name:  # an integration sees its own jobs only
            raise JobNotFound(f"no job {job_id}")
        return JSONResponse(job.to_json())

    async def show(request: Request) -> JSONResponse:
        job_id = request.path_params["job_id"]
        return await run_in_threadpool(guarded, request, lambda runner, who: visible(runner, who, job_id))

    async def cancel(request: Request) -> JSONResponse:
        job_id = request.path_params["job_id"]
        return await run_in_threadpool(guarded, request,
                                       lambda runner, who: JSONResponse(runner.cancel(job_id, who).to_json()))

    return [Route("/api/v1/jobs", submit, methods=["POST"]),
            Route("/api/v1/jobs/{job_id:int}", show, methods=["GET"]),
            Route("/api/v1/jobs/{job_id:int}/cancel", cancel, methods=["POST"])]
