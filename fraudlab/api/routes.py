"""Starlette routes of the API: `GET /api/v1/health`, `POST /api/v1/score`, and the background jobs of
fraudlab.api.job_routes; JSON errors a client can act on.

| status | when |
|---|---|
| 400 | the body is not one JSON object, or a field is missing or unreadable (`error.field` names it) |
| 401 | no valid `Authorization: Bearer KEY` (not needed in the demo session) |
| 409 | the transaction_id belongs to a transaction loaded in batch |
| 413 | the body is larger than MAX_BODY_BYTES |
| 503 | the workspace cannot be opened or has no features yet |
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Callable

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fraudlab.api.answering import score_async
from fraudlab.api.events import BadEvent
from fraudlab.api.job_routes import LOOPBACK_HOSTS, build_job_routes
from fraudlab.api.keys import is_demo, key_name
from fraudlab.api.service import MAX_BATCH, RECHECK_S, LiveScoring, NotReady
from fraudlab.api.store import Conflict
from fraudlab.errors import FraudlabError, WorkspaceError
from fraudlab.workspace import Workspace

MAX_BODY_BYTES = 64 * 1024
SCORING_THREADS = 3 * MAX_BATCH  # threads for the key checks that need a query (answers are awaited without one)
LOG = logging.getLogger("fraudlab.api")
SWITCH_INTERVAL_S = 0.0005  # a thread waiting for the GIL waits at most this (Python's default: 5 ms)
_SERVICES: dict[tuple, LiveScoring] = {}  # (id of the workspace, options) -> its live scorer
_SERVICES_LOCK = threading.Lock()
MAX_SERVICES = 8  # live scorers kept; past it the oldest is closed (a server keeps one per workspace and options)
_SERVING = {"freeze_heap": False}  # set by serving_interpreter (server processes, not tests or notebooks)


def serving_interpreter() -> None:
    """Tune this process for answering while batch jobs run in its threads: the live path releases the GIL at every
    DuckDB and XGBoost call, and with Python's default switch interval each re-acquire may wait 5 ms behind a busy
    job thread (dozens of times per batch). And once the live history is warm, the objects alive then (modules,
    models, the history) leave the garbage collector's generations (gc.freeze): each full collection walked all of
    them, a pause of every thread of ~100 ms under load at 10M rows. Called by the server entry points only."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    _SERVING["freeze_heap"] = True


def live_service(ws: Workspace, budget_ms: float | None = None, recheck_s: float | None = None) -> LiveScoring:
    """The live scorer of the open workspace `ws` with these options: one per workspace and options, shared by the
    routes and the server's start (which calls this so the history warms before the first event); made on first
    use, when it starts warming its history in the background."""
    options = {k: v for k, v in (("budget_ms", budget_ms), ("recheck_s", recheck_s)) if v is not None}
    key = (id(ws), tuple(sorted(options.items())))
    evicted: list[LiveScoring] = []
    with _SERVICES_LOCK:
        found = _SERVICES.get(key)
        if found is None or found.ws is not ws or found.stopping:
            if found is not None:
                evicted.append(found)
            found = _SERVICES[key] = LiveScoring(ws, **options)
            found.start_warm(freeze_heap=_SERVING["freeze_heap"])
            for old in [k for k, s in _SERVICES.items() if s.ws.closed or s.stopping]:  # their workspace is gone
                evicted.append(_SERVICES.pop(old))
            while len(_SERVICES) > MAX_SERVICES:  # scorers of workspaces closed long ago (tests open many)
                evicted.append(_SERVICES.pop(next(iter(_SERVICES))))
    for svc in evicted:
        close_in_background(svc)
    return found


def close_in_background(svc: LiveScoring) -> None:
    """Close a live scorer dropped from the shared ones on a short-lived daemon thread: its threads end and it lets
    go of its workspace, without the request that dropped it waiting for its joins (up to minutes at 10M rows)."""
    if svc.closed:
        return

    def close() -> None:
        try:
            svc.close()
        except Exception as exc:  # noqa: BLE001 - nobody waits for it: logged
            LOG.warning("live scoring: closing a dropped scorer failed: %s", exc, exc_info=True)

    threading.Thread(target=close, name="fraudlab-live-close", daemon=True).start()


def error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    """A JSON error answer: {"error": {"code", "message", "field"?}}."""
    body = {"code": code, "message": message} | ({"field": field} if field else {})
    return JSONResponse({"error": body}, status_code=status)


class TooLarge(Exception):
    """The request body passed the size limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused past `limit` bytes whether or not the client declared its length."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def bearer(request: Request) -> str | None:
    """The key of an `Authorization: Bearer KEY` header, if any."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


class KeyCache:
    """Answers of the key check, kept `ttl_s` seconds (a revoked key stops working within that)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._seen: dict[str | None, tuple[float, bool, str | None]] = {}
        self._lock = threading.Lock()

    def peek(self, key: str | None) -> tuple[bool, str | None] | None:
        """(allowed, key name) when `key` was checked within the ttl, else None (call :meth:`check`)."""
        with self._lock:
            hit = self._seen.get(key)
        return hit[1:] if hit is not None and time.monotonic() - hit[0] < self.ttl_s else None

    def check(self, ws: Workspace, key: str | None) -> tuple[bool, str | None]:
        """(allowed, key name) for a request carrying `key` (None: no key)."""
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1], hit[2]
        name = key_name(ws, key)
        allowed = name is not None or is_demo(ws)
        with self._lock:
            if len(self._seen) > 1_000:
                self._seen.clear()
            self._seen[key] = (now, allowed, name)
        return allowed, name


def build_routes(get_workspace: Callable[[], Workspace], max_body: int = MAX_BODY_BYTES,
                 budget_ms: float | None = None, recheck_s: float | None = None,
                 server_token: Callable[[], str | None] = lambda: None,
                 local_hosts: frozenset[str] = LOOPBACK_HOSTS) -> list[Route]:
    """The API's routes over the server's open workspace (`get_workspace` returns that one object each call).

    `budget_ms`: per model step of the scoring chain; `recheck_s`: how often the feature set, models and keys are
    checked for changes (0: every request); `server_token` returns the local token of `<workspace>.server.json`,
    accepted for jobs from `local_hosts` only.
    """
    keys = KeyCache(RECHECK_S if recheck_s is None else recheck_s)
    scoring_threads = anyio.CapacityLimiter(SCORING_THREADS)  # the shared pool's 40 would cap a batch near 40

    def service() -> LiveScoring:
        return live_service(get_workspace(), budget_ms, recheck_s)

    def authorise(request: Request, svc: LiveScoring) -> tuple[bool, str | None]:
        return keys.check(svc.ws, bearer(request))

    async def health(request: Request) -> JSONResponse:
        try:
            status = await run_in_threadpool(lambda: service().status())
        except WorkspaceError as exc:
            return error(503, "workspace_unavailable", str(exc))
        return JSONResponse({"status": "ok", **status})

    async def score(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, max_body)
        except TooLarge:
            return error(413, "too_large", f"the body is larger than {max_body:,} bytes: send one transaction")
        try:
            payload = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            return error(400, "bad_json", "the body is not JSON: send one transaction as a JSON object", "body")

        def admit() -> tuple[LiveScoring, bool, str | None]:
            svc = service()
            return (svc, *authorise(request, svc))

        try:
            known = keys.peek(bearer(request))  # (allowed, name) of a key checked within its ttl: no query
            if known is None:  # a query (and the scorer made, the first time): off the event loop
                svc, allowed, name = await anyio.to_thread.run_sync(admit, limiter=scoring_threads)
            else:
                svc, (allowed, name) = service(), known
            if not allowed:
                return error(401, "unauthorised", "send a valid key as 'Authorization: Bearer KEY' "
                                                  "(create one with `python -m fraudlab api-keys create NAME`)")
            return JSONResponse(await score_async(svc, payload, name))  # no thread waits for the decider
        except BadEvent as exc:
            return error(400, "bad_field", str(exc), exc.field)
        except Conflict as exc:
            return error(409, "conflict", str(exc), "transaction_id")
        except (NotReady, WorkspaceError) as exc:
            return error(503, "not_ready", str(exc))
        except FraudlabError as exc:
            LOG.warning("live scoring refused an event: %s", exc)
            return error(422, "unprocessable", str(exc))
        except Exception:  # noqa: BLE001 - a client gets JSON, the log gets the traceback
            LOG.exception("live scoring failed")
            return error(500, "internal", "the event could not be scored; the server log has the details")

    return [Route("/api/v1/health", health, methods=["GET"]), Route("/api/v1/score", score, methods=["POST"]),
            *build_job_routes(get_workspace, server_token, local_hosts)]
