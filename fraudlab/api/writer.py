"""The live scorer's background writer: answers go out once an event is logged; DuckDB gets them in groups.

Guarantee ("zero lost"): an event is answered only after its record (row, answer, features, score) was appended to
the live log beside the workspace (``<workspace>.live.<n>.jsonl`` segments) and the file was flushed and fsync'ed, so a
crash after the answer loses nothing: the next :class:`fraudlab.api.LiveScoring` on the workspace replays every
logged event whose transaction_id is not in `api_events` yet (:func:`fraudlab.api.store.replay`). Each commit starts a
new segment and, once it committed, deletes the segments before it (every event in them is in DuckDB). In between,
the writer thread commits whatever is waiting in one `Workspace.write` every INTERVAL_S (alerts reach the queue
within about that), and retries of the same ids are answered from memory until their commit (then from
`api_events`). A server shutting down commits what waits (``close``); what it cannot commit stays logged.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

INTERVAL_S = 0.2  # a waiting event reaches DuckDB (and an alert the queue) about this long after its answer. A
# commit costs ~60-120 ms at 10M rows whatever its size (~75 commits per 20 s at 200/s; ~20 at 1 s, but two 200/s
# runs at 1 s, P99 255 / 308 ms, showed no gain). A batch load flushes the writers first (pipeline.after_load).
RETRY_S = 2.0  # after a failed commit (a long batch job holding the file, an error), try again this much later
LOG = logging.getLogger("fraudlab.api")
WRITERS: "weakref.WeakSet[LiveWriter]" = weakref.WeakSet()


def flush_all(timeout_s: float = 60.0) -> bool:
    """Wait until every live writer of this process committed what it answered (tests, jobs that read it)."""
    return all(writer.flush(timeout_s) for writer in list(WRITERS))


@dataclass
class Batch:
    """One decided micro-batch waiting for its commit: its jobs, rows as stored, features, threshold, late ids."""

    jobs: list
    new: pa.Table
    frame: pd.DataFrame | dict  # feature rows (a dict of columns from the NumPy path: framed by the writer)
    threshold: float
    late: list[str]


def flush_workspace(workspace: Path, timeout_s: float = 60.0) -> bool:
    """Wait until this process's live writers of one workspace committed what they answered (a load, before its
    features); writers of other workspaces are not waited for."""
    log = log_path(workspace)
    return all(writer.flush(timeout_s) for writer in list(WRITERS) if writer.path == log)


def log_path(workspace: Path) -> Path:
    """The stem of the append-only log of answered events beside a workspace file (segments add `.<n>.jsonl`)."""
    return workspace.with_name(workspace.name + ".live")


def segments(stem: Path) -> list[Path]:
    """The log's segment files, oldest first."""
    found = stem.parent.glob(stem.name + ".*.jsonl")
    return sorted(found, key=lambda p: int(p.name[len(stem.name) + 1:-len(".jsonl")]))


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _nothing() -> None:
    return None


def record(job, features: dict, threshold: float) -> str:
    """One logged event as a JSON line (enough to store it again after a crash)."""
    return json.dumps({"row": job.row, "extra": job.extra, "key_name": job.key_name, "answer": job.answer,
                       "received_at": job.received_at,
                       "score": job.score, "features": features, "threshold": threshold},
                      default=_json_default) + "\n"


class LiveWriter:
    """Logs each decided batch durably, then commits waiting batches in groups from its own thread."""

    def __init__(self, path: Path, store: Callable[[list[Batch]], None], interval_s: float = INTERVAL_S, *,
                 durability: str = "disk") -> None:
        self.path = path
        self.durability = durability  # 'disk': answers wait for the fsync; 'process': only for the write
        self.store = store
        self.interval_s = interval_s
        self.commit_lock = threading.Lock()  # held while a group commits (and by whoever must see no commit running)
        self._lock = threading.Condition()
        self._pending: list[Batch] = []
        self._answers: dict[str, dict] = {}
        self.unwritten = 0  # event rows answered but not committed
        self._written = 0  # batches written to the log
        self._synced = 0  # batches the log holds durably (fsync'ed)
        self._sync_lock = threading.Lock()
        self._sync_waiting: list[tuple[int, Callable[[], None]]] = []  # (seq, callback) for sync_later
        self._sync_wake = threading.Condition()
        self._syncer: threading.Thread | None = None
        self.fsync_ms: deque[float] = deque(maxlen=2_000)  # the newest fsyncs of the log before answers (health)
        self.error: str | None = None
        self._stop = False  # set by close(): the threads end (what waits is committed by close itself)
        self._halt = threading.Event()  # the same, for the writer thread's waits between commits
        self._close_lock = threading.Lock()
        self._closed = False
        existing = segments(path)
        self._segment = 1 + (int(existing[-1].name[len(path.name) + 1:-len(".jsonl")]) if existing else 0)
        self._log = self._open()
        self._thread = threading.Thread(target=self._run, name="fraudlab-live-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        WRITERS.add(self)

    def _open(self):
        return open(self.path.with_name(f"{self.path.name}.{self._segment}.jsonl"), "a", encoding="utf-8")

    def submit(self, batch: Batch, lines: list[str]) -> int:
        """Log a decided batch (one line per event, written, not yet fsync'ed) and queue it for the next commit;
        returns its sequence number for :meth:`sync` (which must return before the batch is answered)."""
        with self._lock:
            self._log.write("".join(lines))
            self._log.flush()
            self._written += 1
            self._pending.append(batch)
            self.unwritten += len(batch.jobs)
            for job in batch.jobs:
                self._answers[job.row["transaction_id"]] = job.answer
            self._lock.notify()
            return self._written

    @property
    def written(self) -> int:
        """The sequence number of the last batch written to the log."""
        return self._written

    def fsync_summary(self) -> list[float] | None:
        """P50, P99 and max of the newest fsyncs an answer waited for (None before the first)."""
        times = sorted(self.fsync_ms)
        if not times:
            return None
        return [round(times[len(times) // 2], 2), round(times[min(len(times) - 1, int(0.99 * len(times)))], 2),
                round(times[-1], 2)]

    def sync(self, seq: int) -> None:
        """Return once batch `seq` is durable: one fsync covers every batch written before it (group fsync, run
        outside the scoring lock so the next batch is decided meanwhile)."""
        with self._sync_lock:
            if self._synced >= seq:
                return
            with self._lock:
                upto, log = self._written, self._log
            began = time.perf_counter()
            try:
                os.fsync(log.fileno())
            except ValueError:  # the segment was closed meanwhile: closing it fsync'ed it (see commit)
                pass
            self.fsync_ms.append(1000 * (time.perf_counter() - began))
            self._synced = max(self._synced, upto)

    def durable(self, seq: int) -> None:
        """Return once batch `seq` is as durable as answers wait for (see :meth:`when_durable`)."""
        if self.durability == "process":
            self.sync_later(seq, _nothing)
        else:
            self.sync(seq)

    def when_durable(self, seq: int, callback: Callable[[], None]) -> None:
        """Call `callback` once batch `seq` is as durable as answers wait for: after its fsync (durability 'disk',
        :meth:`sync_later`), or now, the fsync following on the syncer thread (durability 'process': the batch is in
        the log's file already, so a crash of this process loses nothing; a crash of the machine may lose what the
        disk had not stored yet). Any other value waits for the fsync: a mistyped mode never weakens durability."""
        if self.durability != "process":
            self.sync_later(seq, callback)
            return
        self.durable(seq)
        callback()

    def sync_later(self, seq: int, callback: Callable[[], None]) -> None:
        """Call `callback` from the syncer thread once batch `seq` is durable (one fsync for everything waiting then):
        the async route's answers wait for their fsync without holding a thread each. `callback` must not raise.
        Once the writer is closing (no syncer waits any more), synced and called from the caller's thread."""
        with self._sync_wake:
            stopped = self._stop
            if not stopped:
                if self._syncer is None:
                    self._syncer = threading.Thread(target=self._sync_loop, name="fraudlab-live-syncer", daemon=True)
                    self._syncer.start()
                self._sync_waiting.append((seq, callback))
                self._sync_wake.notify()
        if stopped:
            self.sync(seq)
            callback()

    def _sync_loop(self) -> None:
        while True:
            with self._sync_wake:
                while not self._sync_waiting and not self._stop:
                    self._sync_wake.wait()
                waiting, self._sync_waiting = self._sync_waiting, []
            if not waiting:
                return
            self.sync(max(seq for seq, _ in waiting))
            for _seq, callback in waiting:
                callback()

    def answer(self, transaction_id: str) -> dict | None:
        """The answer of an event still waiting for its commit (None once committed: `api_events` has it)."""
        with self._lock:
            return self._answers.get(transaction_id)

    def pending_rows(self) -> list[pa.Table]:
        """Rows of the batches not committed yet (call holding `commit_lock`: then none is half-way)."""
        with self._lock:
            return [b.new for b in self._pending]

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._stop:
                    self._lock.wait()
                if self._stop:  # close() commits what waits, then closes the log: no commit from here after it
                    return
            if self._halt.wait(self.interval_s):  # let a group gather
                return
            if not self.commit() and self._halt.wait(RETRY_S):
                return

    def commit(self) -> bool:
        """Commit every waiting batch in one write; False (and kept for the next try) when it failed."""
        with self.commit_lock:
            with self._sync_lock:  # no sync() meanwhile: the segment it would fsync is being swapped
                with self._lock:  # held only to swap segments: the scoring path logs its next batch meanwhile
                    group = list(self._pending)
                    if not group:
                        return True
                    if self._log.closed:  # the writer was closed: what waits stays in the log (replayed)
                        return False
                    old, upto = self._log, self._written
                    done_upto = self._segment
                    self._segment += 1
                    self._log = self._open()
                os.fsync(old.fileno())  # what the group holds is in this segment and the ones before it
                old.close()
                self._synced = max(self._synced, upto)  # a closed segment is durable: sync() may then skip it
            try:
                self.store(group)
            except Exception as exc:  # noqa: BLE001 - kept and retried; the log still holds every event
                self.error = f"{type(exc).__name__}: {exc}"
                closed = "closed" in str(exc).lower()  # the workspace was closed first: the log keeps them
                LOG.warning("live writer: the commit failed (kept in the live log%s): %s",
                            "" if closed else f", tried again in {RETRY_S:.0f} s", exc, exc_info=not closed)
                return False
            self.error = None
            with self._lock:
                del self._pending[:len(group)]
                self.unwritten -= sum(len(b.jobs) for b in group)
                for batch in group:
                    for job in batch.jobs:
                        self._answers.pop(job.row["transaction_id"], None)
            for segment in segments(self.path):  # every event in these is in DuckDB now
                if int(segment.name[len(self.path.name) + 1:-len(".jsonl")]) <= done_upto:
                    segment.unlink(missing_ok=True)
        return True

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait until everything answered is committed (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            if not self.commit():
                return False
        return False

    def close(self) -> None:
        """Stop the threads, commit what waits (what cannot be stays in the log, replayed on the next start), close
        the log once no commit or fsync runs (a second caller waits for the first one's close)."""
        with self._close_lock:
            if self._closed:
                return
            with self._lock:
                self._stop = True
                self._lock.notify()
            self._halt.set()
            with self._sync_wake:  # the syncer answers what waits, then ends
                self._sync_wake.notify()
            self._thread.join(timeout=5)  # it ends after the commit it is in, if any
            if self._syncer is not None:
                self._syncer.join(timeout=5)
            self.flush(10.0)
            with self.commit_lock, self._sync_lock, self._lock:  # a thread still in a commit or fsync: after it
                self._log.close()
                self._closed = True
            for segment in segments(self.path):
                if segment.stat().st_size == 0:
                    segment.unlink(missing_ok=True)
            atexit.unregister(self.close)
            WRITERS.discard(self)  # what it could not commit waits in its log for the next start, not for flush_all()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No commit runs inside (one running is waited for)."""
        with self.commit_lock:
            yield


def logged(stem: Path) -> list[dict]:
    """The events in a log's segments, oldest first (a torn last line, from a crash mid-write, is skipped: its event
    was never answered)."""
    out = []
    for segment in segments(stem):
        with open(segment, encoding="utf-8") as handle:
            for line in handle:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    return out
