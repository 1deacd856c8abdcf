"""Background write jobs of the server: one at a time on a worker thread, each recorded in the `jobs` table.

The server (`streamlit run app.py`) owns the workspace file, so the command line and API clients hand it their
write jobs (ingest, features, train, score, drift; see fraudlab.job_kinds) instead of failing on DuckDB's lock.
A job runs as the identity that submitted it, inside a :class:`fraudlab.jobs.JobControl` (cancel, time cap,
progress checkpoints). Its row keeps status (queued → running → done / failed / cancelled), progress 0..1, the
last progress message, times, the result summary and the error, so a restarted server knows what happened: a job
it finds 'running' or 'queued' from before failed because the server stopped.

This module is the only writer of `jobs`. Its writes are single autocommit statements on their own cursor, not
`Workspace.write()`: a job holds the workspace's write lock for the length of its own transaction, and submitting,
cancelling or reporting progress must never wait behind it (nor bump the version pages cache on).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from fraudlab.auth.actors import Actor, role_label
from fraudlab.auth.permissions import refuse, require
from fraudlab.errors import FraudlabError
from fraudlab.job_kinds import check_args, job_kind, run_kind
from fraudlab.jobs import JobCancelled, JobControl, checked, lower_thread_priority, yielding_to_live
from fraudlab.workspace import Workspace, utcnow

LOG = logging.getLogger("fraudlab.jobs")
STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = frozenset({"done", "failed", "cancelled"})
PROGRESS_EVERY_S = 0.5  # at most two progress writes a second
CONFLICT_TRIES = 5  # an update of a job row that met another one on the same row is run again (after 10-40 ms)

SQL_INSERT = ("INSERT INTO jobs (job_id, kind, args, who, role, via, status, progress, message, submitted_at) "
              "VALUES (nextval('job_seq'), ?, ?, ?, ?, ?, 'queued', 0, 'waiting for earlier jobs', ?) RETURNING job_id")
SQL_START = ("UPDATE jobs SET status = 'running', started_at = ?, message = 'started' "
             "WHERE job_id = ? AND status = 'queued' RETURNING job_id")
SQL_PROGRESS = "UPDATE jobs SET progress = ?, message = ? WHERE job_id = ? AND status = 'running'"
SQL_END = "UPDATE jobs SET status = ?, progress = ?, message = ?, ended_at = ?, result = ?, error = ? WHERE job_id = ?"
SQL_CANCEL_QUEUED = ("UPDATE jobs SET status = 'cancelled', message = ?, ended_at = ? "
                     "WHERE job_id = ? AND status = 'queued' RETURNING job_id")
SQL_RECOVER = ("UPDATE jobs SET status = 'failed', ended_at = ?, error = 'server stopped', "
               "message = CASE status WHEN 'running' THEN 'failed: server stopped while it ran' "
               "ELSE 'failed: server stopped before it started' END WHERE status IN ('running', 'queued')")
SQL_ONE = "SELECT * FROM jobs WHERE job_id = ?"
SQL_RECENT = "SELECT * FROM jobs ORDER BY job_id DESC LIMIT ?"


class JobNotFound(FraudlabError):
    """No job has that id."""


@dataclass(frozen=True)
class JobRecord:
    """One row of `jobs`: who asked for what, where it stands, how it ended."""

    job_id: int
    kind: str
    args: dict
    who: str
    role: str
    via: str
    status: str
    progress: float
    message: str
    submitted_at: pd.Timestamp | None
    started_at: pd.Timestamp | None
    ended_at: pd.Timestamp | None
    result: dict | None
    error: str | None

    @property
    def finished(self) -> bool:
        """True once done, failed or cancelled."""
        return self.status in FINISHED

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-safe values (times as ISO text), what the API returns."""
        out = dict(self.__dict__)
        for name in ("submitted_at", "started_at", "ended_at"):
            out[name] = None if out[name] is None else out[name].isoformat()
        return out


def _execute(ws: Workspace, sql: str, params: list) -> list[tuple]:
    """One autocommit statement on its own cursor (never waits for the workspace's write lock); run again when it met
    a concurrent update of the same job row (a cancel while the worker starts the job): the other one committed."""
    for attempt in range(CONFLICT_TRIES):
        cur = ws.cursor()
        try:
            return cur.execute(sql, params).fetchall()
        except duckdb.TransactionException as exc:
            if "conflict" not in str(exc).lower() or attempt == CONFLICT_TRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
        finally:
            cur.close()
    raise AssertionError("unreachable")


def _time(value: Any) -> pd.Timestamp | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value)


def _record(row: dict) -> JobRecord:
    return JobRecord(int(row["job_id"]), row["kind"], json.loads(row["args"] or "{}"), row["who"], row["role"],
                     row["via"], row["status"], float(row["progress"] or 0.0), row["message"] or "",
                     _time(row["submitted_at"]), _time(row["started_at"]), _time(row["ended_at"]),
                     json.loads(row["result"]) if row["result"] else None, row["error"])


def get_job(ws: Workspace, job_id: int) -> JobRecord:
    """The job with this id (JobNotFound when there is none)."""
    rows = ws.arrow(SQL_ONE, [int(job_id)]).to_pylist()
    if not rows:
        raise JobNotFound(f"no job {job_id}")
    return _record(rows[0])


def recent_jobs(ws: Workspace, limit: int = 200) -> pd.DataFrame:
    """The newest jobs first, with their duration in seconds (so far, for a running one) and who in plain words."""
    jobs = ws.df(SQL_RECENT, [int(limit)])
    end = jobs["ended_at"].astype("datetime64[us]").fillna(pd.Timestamp(utcnow()))
    jobs["seconds"] = (end - jobs["started_at"].astype("datetime64[us]")).dt.total_seconds()
    how = {"cli": ", command line", "api": ", API key"}
    jobs["who_label"] = [f"{name} ({role_label(role)}{how.get(via, '')})"
                         for name, role, via in zip(jobs["who"], jobs["role"], jobs["via"])]
    return jobs


def mark_stopped(ws: Workspace) -> int:
    """Jobs left 'running' or 'queued' by a server that stopped become 'failed: server stopped'; returns how many."""
    return len(_execute(ws, SQL_RECOVER + " RETURNING job_id", [utcnow()]))


def can_cancel(who: Actor | None, job: JobRecord) -> bool:
    """The job's owner (same name) or an admin may cancel it."""
    return isinstance(who, Actor) and (who.name == job.who or who.role == "admin")


class JobRunner:
    """Runs the workspace's write jobs one at a time, oldest first, on one worker thread."""

    def __init__(self, ws: Workspace, cap_seconds: float | None = None) -> None:
        self.ws = ws
        self.cap_seconds = cap_seconds
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._controls: dict[int, JobControl] = {}
        self._lock = threading.Lock()
        self.recovered = mark_stopped(ws)
        self._thread = threading.Thread(target=self._work, daemon=True, name=f"fraudlab jobs {ws.path.name}")
        self._thread.start()

    def submit(self, kind: str, args: dict | None, who: Actor) -> JobRecord:
        """Queue a job as `who` (its role is checked now, before it waits); return its record."""
        spec = job_kind(kind)
        args = check_args(spec, args)
        require(self.ws, who, spec.action, kind)
        (job_id,), = _execute(self.ws, SQL_INSERT, [spec.name, json.dumps(args, default=str), who.name, who.role,
                                                     who.via, utcnow()])
        self._queue.put(int(job_id))
        return get_job(self.ws, job_id)

    def cancel(self, job_id: int, who: Actor) -> JobRecord:
        """Cancel a queued or running job (its owner or an admin); a finished job is left as it ended."""
        job = get_job(self.ws, job_id)
        if not can_cancel(who, job):
            refuse(self.ws, who, "cancel_job", f"{who.name} cannot cancel job {job_id} of {job.who}: only its owner "
                                                f"or an admin can. Nothing was changed.", str(job_id))
        why = f"was cancelled by {who.name}"
        if not _execute(self.ws, SQL_CANCEL_QUEUED, [why, utcnow(), int(job_id)]):
            with self._lock:
                control = self._controls.get(int(job_id))
            if control is not None:
                control.cancel(why)
        return get_job(self.ws, job_id)

    def wait(self, job_id: int, timeout: float = 60.0) -> JobRecord:
        """Block until the job has finished (for tests and scripts); returns its record."""
        deadline = time.monotonic() + timeout
        while True:
            job = get_job(self.ws, job_id)
            if job.finished or time.monotonic() > deadline:
                return job
            time.sleep(0.05)

    def stop(self) -> None:
        """Cancel the running job and end the worker once it has (queued jobs stay queued: the next start fails
        them as stopped)."""
        with self._lock:
            controls = list(self._controls.values())
        for control in controls:
            control.cancel("was stopped with the server")
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _work(self) -> None:
        lower_thread_priority()  # this thread only runs jobs: live scoring in the same server answers first
        while (job_id := self._queue.get()) is not None:
            self._run(job_id)

    def _run(self, job_id: int) -> None:
        job = get_job(self.ws, job_id)
        control = JobControl(f"{job.kind} job {job_id}", self.cap_seconds)
        with self._lock:
            self._controls[job_id] = control
        try:
            if not _execute(self.ws, SQL_START, [utcnow(), job_id]):
                return  # cancelled while it waited
            status, progress, message, result, error = self._execute_job(job, control)
            _execute(self.ws, SQL_END, [status, progress, message, utcnow(),
                                        None if result is None else json.dumps(result, default=str), error, job_id])
        finally:
            with self._lock:
                self._controls.pop(job_id, None)

    def _execute_job(self, job: JobRecord, control: JobControl) -> tuple[str, float, str, dict | None, str | None]:
        """Run one job; (status, progress, message, result, error) for its row."""
        reporter = _Reporter(self.ws, job.job_id)
        who = Actor(job.who, job.role, job.via)
        cur = self.ws.cursor()
        try:
            with yielding_to_live(cur), control.running():  # live answers in this server keep a core
                done = run_kind(self.ws, job.kind, job.args, who, checked(reporter))
        except JobCancelled as exc:
            return "cancelled", reporter.fraction, f"cancelled after {control.elapsed:.1f} s", None, str(exc)
        except FraudlabError as exc:
            return "failed", reporter.fraction, "failed", None, str(exc)
        except Exception as exc:  # noqa: BLE001 — a worker records any failure on the job's row; the log has the trace
            LOG.exception("job %s (%s) failed", job.job_id, job.kind)
            return "failed", reporter.fraction, "failed", None, f"{type(exc).__name__}: {exc}"
        finally:
            cur.close()
        last = done.lines[0] if done.lines else "done"
        return "done", 1.0, f"done in {control.elapsed:.1f} s: {last}"[:500], {"lines": list(done.lines),
                                                                               **done.summary}, None


class _Reporter:
    """A progress callback that keeps the newest fraction and writes it to the job's row, at most twice a second."""

    def __init__(self, ws: Workspace, job_id: int) -> None:
        self.ws, self.job_id = ws, job_id
        self.fraction, self._written = 0.0, 0.0

    def __call__(self, fraction: float, message: str) -> None:
        self.fraction = min(max(float(fraction), 0.0), 1.0)
        now = time.monotonic()
        if now - self._written >= PROGRESS_EVERY_S:
            self._written = now
            _execute(self.ws, SQL_PROGRESS, [self.fraction, str(message)[:500], self.job_id])


_runners: dict[int, JobRunner] = {}
_runners_lock = threading.Lock()


def runner_for(ws: Workspace) -> JobRunner:
    """The one job runner of this open workspace in this process (started, and stale jobs failed, on first use)."""
    with _runners_lock:
        found = _runners.get(id(ws))
        if found is None or found.ws is not ws:
            found = _runners[id(ws)] = JobRunner(ws)
        return found


def stop_runner(ws: Workspace) -> None:
    """Stop this workspace's job runner, if it has one."""
    with _runners_lock:
        found = _runners.pop(id(ws), None)
    if found is not None and found.ws is ws:
        found.stop()
