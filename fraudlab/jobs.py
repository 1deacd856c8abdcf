"""Job control: a long job can be cancelled from another thread, and none runs (or holds the write lock) past a cap.

A job (a load, a feature build, a training, a scoring, or a whole pipeline step) runs inside
``with control.running():`` — or :func:`job`, which starts one with the default cap unless a job is already running in
this thread's context, so nested steps share the outer job. While it runs:

* every DuckDB cursor the workspace hands out (the write transaction's and reads') is attached to it, so
  :meth:`JobControl.cancel` — from any thread, or from the cap's timer — interrupts the query that is running
  (``DuckDBPyConnection.interrupt()``); the write transaction then rolls back and the write lock is released;
* long work calls :func:`checkpoint` between steps (the ingest, feature, training and scoring progress callbacks,
  and each XGBoost boosting round), which raises once the job is cancelled or past its cap.

Either way the job ends with :class:`JobCancelled`, whose message says what was rolled back and what had already been
committed by earlier steps of the same job. The cap is FRAUDLAB_JOB_CAP_SECONDS (default 1800 s; 0 turns it off).
"""
from __future__ import annotations

import contextvars
import functools
import inspect
import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import duckdb

from fraudlab.errors import FraudlabError

CAP_ENV = "FRAUDLAB_JOB_CAP_SECONDS"
DEFAULT_CAP_SECONDS = 1800.0
JOB_NICE = 10  # a job thread's nice value in a server: it gets the cores the live answers leave
LIVE_RECENT_S = 60.0  # a job starting this soon after a live event leaves the live path a core (see yielding_to_live)
Progress = Callable[[float, str], None]
T = TypeVar("T")

_current: contextvars.ContextVar[JobControl | None] = contextvars.ContextVar("fraudlab_job", default=None)
_one_thread: contextvars.ContextVar[bool] = contextvars.ContextVar("fraudlab_job_one_thread", default=False)
_live_seen = [float("-inf")]  # monotonic time of the newest live event decided in this process


class JobCancelled(FraudlabError):
    """A job was cancelled or ran past its time cap; the write in progress was rolled back."""

    def __init__(self, message: str, *, job: str, why: str, rolled_back: tuple[str, ...],
                 kept: tuple[str, ...], step: str = "") -> None:
        super().__init__(message)
        self.job, self.why, self.rolled_back, self.kept, self.step = job, why, rolled_back, kept, step


def lower_thread_priority(nice: int = JOB_NICE) -> bool:
    """Lower the CPU priority of the calling thread only (Linux keeps a nice value per thread, and threads it starts,
    such as XGBoost's OpenMP team, inherit it), so live answers of the same process go first while a long job runs;
    False where that is not possible (another system, or no permission)."""
    if not sys.platform.startswith("linux"):  # elsewhere PRIO_PROCESS of a thread id would name another process
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))
    except OSError:
        return False
    return True


def note_live_event() -> None:
    """Record that the live scorer of this process just decided an event (jobs then leave it a core)."""
    _live_seen[0] = time.monotonic()


def live_recently(within_s: float = LIVE_RECENT_S) -> bool:
    """Whether this process decided a live event within the last `within_s` seconds."""
    return time.monotonic() - _live_seen[0] <= within_s


def job_threads(default: int) -> int:
    """How many threads a job's model work may use here: 1 inside :func:`yielding_to_live`, else `default`."""
    return 1 if _one_thread.get() else default


@contextmanager
def yielding_to_live(con: duckdb.DuckDBPyConnection) -> Iterator[bool]:
    """While the block runs, if live events were decided recently, the job leaves the live path a core: DuckDB works
    on one thread (the caller's, so a job thread's lower priority covers its queries too) and XGBoost on one
    (:func:`job_threads`); restored afterwards. Yields whether it did."""
    if not live_recently():
        yield False
        return
    previous = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    con.execute("SET threads = 1")
    token = _one_thread.set(True)
    try:
        yield True
    finally:
        _one_thread.reset(token)
        con.execute(f"SET threads = {previous:d}")


def default_cap() -> float:
    """The time cap of a job in seconds, from FRAUDLAB_JOB_CAP_SECONDS (default 1800; 0 or less: no cap)."""
    raw = os.environ.get(CAP_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_CAP_SECONDS
    except ValueError:
        value = DEFAULT_CAP_SECONDS
    return value if value > 0 else 0.0


class JobControl:
    """Cancel flag, time cap and the DuckDB cursors of one running job; :meth:`cancel` is safe from any thread."""

    def __init__(self, name: str = "job", cap_seconds: float | None = None) -> None:
        self.name = name
        self.cap_seconds = default_cap() if cap_seconds is None else max(float(cap_seconds), 0.0)
        self._lock = threading.Lock()
        self._cursors: set[Any] = set()
        self._why: str | None = None
        self._started = time.monotonic()
        self._ended: float | None = None
        self._done = threading.Event()
        self._done.set()  # not running
        self.committed: list[str] = []
        self.rolled_back: list[str] = []

    @property
    def elapsed(self) -> float:
        """Seconds the job has run (until it ended, once it has)."""
        return (self._ended or time.monotonic()) - self._started

    @property
    def cancelled(self) -> bool:
        """True once cancelled or past the cap."""
        if self._why is None and self.cap_seconds and self.elapsed > self.cap_seconds:
            self._over_cap()
        return self._why is not None

    def cancel(self, why: str = "was cancelled") -> None:
        """Stop the job: flag it and interrupt the DuckDB query it is running (callable from another thread).

        Until the job has ended, its attached cursors are interrupted again every 50 ms, so a query started just
        after the flag was set (before the job's next checkpoint) is stopped too.
        """
        with self._lock:
            first = self._why is None
            if first:
                self._why = why
        self._interrupt_all()
        if first and not self._done.is_set():
            threading.Thread(target=self._keep_interrupting, daemon=True, name=f"cancel {self.name}").start()

    def _interrupt_all(self) -> None:
        with self._lock:
            cursors = list(self._cursors)
        for cur in cursors:
            try:
                cur.interrupt()
            except Exception:  # noqa: BLE001 — a cursor closed meanwhile has nothing to interrupt
                pass

    def _keep_interrupting(self) -> None:
        while not self._done.wait(0.05):
            self._interrupt_all()

    def _over_cap(self) -> None:
        self.cancel(f"ran past its cap of {self.cap_seconds:g} s ({CAP_ENV})")

    def check(self, step: str = "") -> None:
        """Raise :class:`JobCancelled` if the job was cancelled or is past its cap."""
        if self.cancelled:
            raise self.error(step)

    def error(self, step: str = "") -> JobCancelled:
        """The JobCancelled for this job: why, when, what was rolled back and what earlier steps kept."""
        rolled, kept = tuple(self.rolled_back), tuple(self.committed)
        where = f" while {step}" if step else ""
        message = (f"{self.name} {self._why or 'was cancelled'}{where}, after {self.elapsed:.1f} s. "
                   + (f"Rolled back: {'; '.join(rolled)}. " if rolled else "Nothing was being written. ")
                   + (f"Kept from earlier steps: {'; '.join(kept)}." if kept else
                      "Nothing was kept: the workspace is as it was before. Run it again to do it once."))
        return JobCancelled(message, job=self.name, why=self._why or "was cancelled", rolled_back=rolled, kept=kept,
                            step=step)

    @contextmanager
    def attached(self, cursor: Any) -> Iterator[None]:
        """Make a DuckDB cursor interruptible by this job while the block runs."""
        with self._lock:
            self._cursors.add(cursor)
        try:
            yield
        finally:
            with self._lock:
                self._cursors.discard(cursor)

    @contextmanager
    def running(self) -> Iterator[JobControl]:
        """Run the block as this job: current in this context, capped by a timer; a cancellation surfaces as
        JobCancelled even when the interrupted code raised another error."""
        self._started, self._ended = time.monotonic(), None
        self._done.clear()
        timer = None
        if self.cap_seconds:
            timer = threading.Timer(self.cap_seconds, self._over_cap)
            timer.daemon = True
            timer.start()
        token = _current.set(self)
        try:
            yield self
        except JobCancelled:
            raise
        except BaseException as exc:
            if self._why is not None and isinstance(exc, Exception):
                raise self.error() from exc
            raise
        finally:
            self._ended = time.monotonic()
            self._done.set()
            _current.reset(token)
            if timer is not None:
                timer.cancel()


def current_job() -> JobControl | None:
    """The job running in this context, if any."""
    return _current.get()


@contextmanager
def job(name: str, cap_seconds: float | None = None) -> Iterator[JobControl]:
    """Run the block as a job: inside a running job it is a step of that job, else a new job with the cap."""
    running = current_job()
    if running is not None:
        yield running
        return
    with JobControl(name, cap_seconds).running() as control:
        yield control


def checkpoint(step: str = "") -> None:
    """Between steps of long work: raise JobCancelled if the current job was cancelled or is past its cap."""
    control = current_job()
    if control is not None:
        control.check(step)


def checked(progress: Progress | None) -> Progress:
    """A progress callback that first checks the current job (so every progress report is a cancellation point)."""
    def report(fraction: float, message: str) -> None:
        checkpoint(message)
        if progress is not None:
            progress(fraction, message)
    return report


@contextmanager
def attached(cursor: Any) -> Iterator[None]:
    """Attach a cursor to the current job (if any) while the block runs."""
    control = current_job()
    if control is None:
        yield
        return
    with control.attached(cursor):
        yield


def write_label(action: str | None, details: dict | None) -> str:
    """How a workspace write is named in a cancelled job's message: its action and source."""
    source = (details or {}).get("source")
    name = action.replace("_", " ") if action else "a write"
    return f"{name} of {source}" if source else name


def rolled_back(cur: duckdb.DuckDBPyConnection, label: str, exc: BaseException) -> JobCancelled | None:
    """Roll a failed write back (an interrupted statement may have ended the transaction already) and note it in
    the current job; return the JobCancelled to raise instead of `exc` when the job was stopped."""
    try:
        cur.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass
    control = current_job()
    if control is None:
        return None
    control.rolled_back.append(label)
    if isinstance(exc, JobCancelled):  # raised at a checkpoint inside this write: say what the rollback undid
        return control.error(exc.step)
    if control.cancelled and isinstance(exc, Exception):
        return control.error(label)
    return None


def committed(label: str | None) -> None:
    """Note a committed write (with an action) in the current job, for the message if a later step is stopped."""
    control = current_job()
    if control is not None and label is not None:
        control.committed.append(label)


def as_job(name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: the function runs as a job (or a step of the running one), and its `progress` callback, if it
    takes one, becomes a cancellation point."""
    def wrap(func: Callable[..., T]) -> Callable[..., T]:
        signature = inspect.signature(func)
        takes_progress = "progress" in signature.parameters

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> T:
            if takes_progress:
                bound = signature.bind(*args, **kwargs)
                bound.arguments["progress"] = checked(bound.arguments.get("progress"))
                args, kwargs = bound.args, bound.kwargs
            with job(name):
                return func(*args, **kwargs)
        return run
    return wrap
