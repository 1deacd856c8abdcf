"""Live scoring of one posted transaction: features, the fallback chain, the answer, and everything stored.

One :class:`LiveScoring` per open workspace (the server's); its lock makes live events of the same process follow
one another, so each sees the ones before it. The decision is made by :class:`fraudlab.scoring.Scorer`'s chain
champion -> previous champion -> rules within a per-step budget, on point-in-time features equal to the batch build's:

- built-in features only (the usual case): computed in NumPy over the in-memory per-key history
  (:mod:`fraudlab.api.online`); the answer goes out once the batch is in that history and fsync'ed to the
  workspace's live log, and the background writer (:mod:`fraudlab.api.writer`) commits waiting batches to DuckDB in
  groups (every ~0.2 s; alerts reach the queue then; the answer's `case_id` is null, the stored answer a retry gets
  names the case). A crash loses nothing answered: the log is replayed on the next start.
- with user-defined (Feature lab) features active: the batch SQL over the history the windows reach
  (:mod:`fraudlab.api.live`), and one `Workspace.write` before the answer (:func:`fraudlab.api.store.store`).
"""
from __future__ import annotations

import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass

import numpy as np

from fraudlab.api.events import parse_event
from fraudlab.api.history import HistoryCache
from fraudlab.api.live import LivePlan, arrow_rows, compute, features_stamp, live_plan, typed_rows
from fraudlab.api.online import OnlineHistory, features, records, supported
from fraudlab.api.predict import answer_of, model_files, score_rows, warm
from fraudlab.api.store import Job, first_copies, repair, replay, store, store_group
from fraudlab.api.upkeep import HistoryUpkeep
from fraudlab.api.writer import Batch, LiveWriter, log_path, record
from fraudlab.config import load_config
from fraudlab.errors import FraudlabError
from fraudlab.jobs import note_live_event
from fraudlab.registry import models_stamp
from fraudlab.scoring import Scorer
from fraudlab.workspace import Workspace, utcnow

SCORE_BUDGET_MS = 50.0  # per model step of the chain; past it the next step answers
MAX_BATCH = 64  # events decided together at most
MODEL_THREADS = 2  # XGBoost's own TreeSHAP (models too deep for fraudlab.treeshap's tables) splits a batch by row
RECHECK_S = 1.0  # a changed feature set, registry or model file is noticed within this
REFRESHED = frozenset({"types", "plan", "models", "features_table", "online"})  # re-checked by the refresher thread
PAGES_BEHIND_S = 10.0  # events that do not alert move the pages' cache key at most this often (counts catch up)


_SCORERS: "weakref.WeakSet[LiveScoring]" = weakref.WeakSet()


def stop_live(ws: Workspace | None = None) -> None:
    """Stop the live scorers over `ws` (every one when None): what waits is decided and committed, their threads end.
    Call before the workspace closes (server shutdown), so no re-check queries a closed workspace."""
    for scorer in list(_SCORERS):
        if ws is None or scorer.ws is ws:
            scorer.close()


class NotReady(FraudlabError):
    """The workspace has no features yet, or they were built from other settings (HTTP 503)."""


@dataclass
class _Models:
    key: tuple
    scorer: Scorer
    threshold: float


class LiveScoring(HistoryUpkeep):
    """Scores posted transactions against one open workspace (plans and models loaded once, reloaded on change)."""

    def __init__(self, ws: Workspace, budget_ms: float = SCORE_BUDGET_MS, recheck_s: float = RECHECK_S,
                 online: bool = True, durability: str | None = None) -> None:
        self.ws = ws
        self.durability = durability or load_config().live_durability  # what an answer waits for (config.py)
        self.online = online  # keep the history in memory (fraudlab.api.history) instead of a query per batch
        self._history: HistoryCache | None = None  # the SQL path's (user-defined features active)
        self._online: OnlineHistory | None = None  # the NumPy path's
        self._writer: LiveWriter | None = None
        self._labels_stamp: tuple | None = None
        self.stage_ms: Counter = Counter()  # time spent per stage of the NumPy path, over `stage_ms["batches"]`
        self.budget_ms = budget_ms
        self.recheck_s = recheck_s  # how long a check that nothing changed (plan, models, columns) holds
        self._lock = threading.Lock()  # one batch at a time: each sees every event stored before it
        self._queue = threading.Condition()  # guards `_pending`; the decider thread waits on it
        self._pending: list[Job] = []
        self._decider: threading.Thread | None = None
        self._refresher: threading.Thread | None = None  # re-checks plan, models, columns, history off the path
        self._warming: threading.Thread | None = None  # the background warm (start_warm)
        self._warm_span: list | None = None  # its [start, end] (monotonic; end None while it runs)
        self._freeze_heap = False  # gc.freeze() after each warm (servers: see routes.serving_interpreter)
        self._stopping = False
        self._stop = threading.Event()
        self._close_lock = threading.Lock()
        self._closed = False
        _SCORERS.add(self)
        self._plan: LivePlan | None = None
        self._models: _Models | None = None
        self._types: dict[str, str] | None = None
        self._checked: dict[str, float] = {}
        self._bumped = -1e18

    def _tick(self, stage: str, began: float) -> float:
        """Add the time since `began` to a stage's total; returns now."""
        now = time.perf_counter()
        self.stage_ms[stage] += 1000 * (now - began)
        return now

    def _due(self, what: str) -> bool:
        """True when `what` should be checked against the workspace again (at most every `recheck_s` seconds; while
        the refresher thread runs, the checks it makes are skipped on the scoring path)."""
        if what in REFRESHED and self._refresher is not None and threading.current_thread() is not self._refresher:
            return False
        now = time.monotonic()
        if now - self._checked.get(what, -1e18) < self.recheck_s:
            return False
        self._checked[what] = now
        return True

    def _bump(self, alerts: bool) -> bool:
        """Whether this write moves the pages' cache key: always for alerts (the queue must show them), else at most
        every PAGES_BEHIND_S, so counts on the pages catch up without every event emptying their caches."""
        now = time.monotonic()
        if alerts or now - self._bumped >= PAGES_BEHIND_S:
            self._bumped = now
            return True
        return False

    # ------------------------------------------------------------------------------------------ cached state

    def column_types(self) -> dict[str, str]:
        """Column -> SQL type of `transactions` (re-read every `recheck_s`: a load may add columns)."""
        if self._types is None or self._due("types"):
            rows = self.ws.df("SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_name = 'transactions' ORDER BY ordinal_position")
            self._types = dict(zip(rows["column_name"], rows["data_type"]))
        return self._types

    def plan(self) -> LivePlan:
        """The live feature plan, rebuilt when the feature set changed."""
        if self._plan is not None and not self._due("plan"):
            return self._plan
        if not self.ws.has_table("features") or not self.ws.count("feature_meta"):
            raise NotReady("features are not built yet: open the app once (it prepares the workspace) or run "
                           "`python -m fraudlab features`")
        stamp = features_stamp(self.ws)
        if self._plan is None or self._plan.stamp != stamp:
            try:
                self._plan = live_plan(self.ws)
            except FraudlabError as exc:
                raise NotReady(str(exc)) from exc
        return self._plan

    def models(self) -> _Models:
        """The chain's models, reloaded when the registry changes or a model file is removed or replaced."""
        if self._models is not None and not self._due("models"):
            return self._models
        key = (models_stamp(self.ws), model_files(self.ws))
        if self._models is None or self._models.key != key:
            scorer = warm(Scorer(self.ws, budget_ms=self.budget_ms, threads=MODEL_THREADS))  # usually the refresher
            threshold = next((r.alert_threshold for s, r, _b in scorer.steps if s == "model"), 0.5)
            self._models = _Models(key, scorer, threshold)
        return self._models

    def status(self) -> dict:
        """What the health route reports: transactions, the scorer that would answer, why models are passed over,
        whether the online history is warming (events posted meanwhile wait for it)."""
        models = self.models()
        usable = [(s, r.model_id) for s, r, b in models.scorer.steps if b is not None]
        unwritten = 0 if self._writer is None else self._writer.unwritten
        return {"transactions": self.ws.count("transactions") + unwritten, "unwritten": unwritten,
                "scorer": usable[0][0] if usable else "rules",
                "model_id": usable[0][1] if usable else None, "alert_threshold": models.threshold,
                "model_problems": models.scorer.load_errors, "budget_ms": self.budget_ms,
                "stage_ms_per_batch": {k: round(v / max(self.stage_ms["batches"], 1), 3)
                                       for k, v in self.stage_ms.items() if k not in ("batches", "events", "warms")},
                "warms": self.stage_ms["warms"],
                "batches": self.stage_ms["batches"], "events": self.stage_ms["events"],
                "durability": self.durability,
                "fsync_ms_p50_p99_max": None if self._writer is None else self._writer.fsync_summary(),
                "writer_error": None if self._writer is None else self._writer.error, **self.history_state()}

    # ------------------------------------------------------------------------------------------ scoring

    def score(self, payload: object, key_name: str | None = None) -> dict:
        """Decide one posted transaction and store it; a retry of the same transaction_id gets the stored answer.

        Events that arrive while others are being decided wait, then are decided together (one features query, one
        write): under load the per-event cost falls instead of the queue growing.
        """
        ready = threading.Event()
        job = self.submit(payload, key_name, on_ready=lambda _job: ready.set())
        ready.wait()  # each request waits for its own event, never for the lock (no convoy behind other batches)
        if job.error is not None:
            raise job.error
        if job.logged:  # durable before it is answered (outside the lock: the next batch is decided meanwhile)
            self._writer.durable(job.logged)
        return job.answer

    def submit(self, payload: object, key_name: str | None = None, on_ready=None) -> Job:
        """Queue one posted transaction for the decider; returns its job, for which the decider's thread calls
        `on_ready(job)` once it is decided: answered when `job.logged` is durable
        (:meth:`LiveWriter.sync`). The async route's way (:mod:`fraudlab.api.answering`): no thread per request."""
        job = Job(*parse_event(payload, self.column_types()), key_name, time.perf_counter(), received_at=utcnow(),
                  on_ready=on_ready)
        with self._queue:
            if self._stopping:
                raise NotReady("the live scorer is shutting down")
            self._pending.append(job)
            if self._decider is None:
                self._decider = threading.Thread(target=self._decide_loop, name="fraudlab-live-decider", daemon=True)
                self._decider.start()
                if self.recheck_s > 0:
                    self._refresher = threading.Thread(target=self._refresh_loop, name="fraudlab-live-refresher",
                                                       daemon=True)
                    self._refresher.start()
            self._queue.notify()
        return job

    def _decide_loop(self) -> None:
        """The decider thread: the oldest MAX_BATCH waiting events, decided together, then the next ones."""
        while True:
            with self._queue:
                while not self._pending and not self._stopping:
                    self._queue.wait()
                if not self._pending:
                    return
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                with self._lock:
                    self._run(batch)
            finally:
                for job in batch:
                    if not job.done:  # only when _run itself was interrupted
                        job.error, job.done = job.error or FraudlabError("not decided"), True
                    if job.on_ready is not None:
                        job.on_ready(job)

    def _refresh(self) -> None:
        """Re-check column types, the feature plan, the models and (under the scoring lock) the online history."""
        self.column_types()
        try:
            plan = self.plan()
        except NotReady:
            self._plan = None  # the scoring path checks again and answers 503
            return
        self.models()
        if self._online is not None:
            with self._lock:
                if self._online is not None:
                    self._online_history(plan)

    def _run(self, batch: list[Job]) -> None:
        """Decide and store a batch; every job ends with an answer or an error."""
        try:
            began = time.perf_counter()
            fresh = self._triage(batch)
            self._tick("triage", began)
            if fresh:
                self._decide(fresh)
        except Exception as exc:  # noqa: BLE001 - handed to each waiting request, raised there
            for job in batch:
                if not job.done:
                    job.answer, job.error, job.done = None, exc, True
        for job in batch:  # a repeated id inside the batch: the answer its first copy got
            if not job.done and job.first is not None and job.first.answer is not None:
                job.answer, job.done, job.logged = {**job.first.answer, "replayed": True}, True, job.first.logged
            elif not job.done:
                job.error, job.done = job.first.error if job.first else FraudlabError("not decided"), True

    def _triage(self, batch: list[Job]) -> list[Job]:
        """Answer retries from the stored answers, refuse ids loaded in batch; the rest, oldest event first."""
        ids = [job.row["transaction_id"] for job in batch]
        if self._writer is not None:  # answers waiting for their commit are read first (dropped only after it)
            for job in batch:
                waiting = self._writer.answer(job.row["transaction_id"])
                if waiting is not None:  # durable once what the log holds now is (its original may still sync)
                    job.answer, job.done, job.logged = {**waiting, "replayed": True}, True, self._writer.written
        if (self._plan is None or self._due("features_table")) and not self.ws.has_table("features"):
            self.plan()  # nothing built yet: answers 503 with what to do
        if self._online is not None and not self._online.maybe_known(ids):  # (held: as of the last freshness check)
            return sorted(first_copies(batch, {}, set()), key=lambda j: j.row["ts"])  # no id held: no query
        cur = self.ws.cursor()
        try:  # one statement: the answers stored for these ids, and which of them a batch load brought
            found = cur.execute("SELECT transaction_id, answer FROM api_events WHERE transaction_id IN (SELECT unnest($i)) "
                                "UNION ALL SELECT transaction_id, NULL FROM features "
                                "WHERE transaction_id IN (SELECT unnest($i))", {"i": ids}).fetchall()
        finally:
            cur.close()
        answers = {tid: answer for tid, answer in found if answer is not None}
        loaded = {tid for tid, answer in found if answer is None and tid not in answers}
        return sorted(first_copies(batch, answers, loaded), key=lambda j: j.row["ts"])

    def _decide(self, jobs: list[Job]) -> None:
        note_live_event()  # a job starting soon leaves this path a core (fraudlab.jobs.yielding_to_live)
        types, plan, models = self.column_types(), self.plan(), self.models()
        if self.online and not plan.definitions and supported(plan.plan):
            self._decide_fast(jobs, types, plan, models)
            return
        if self._writer is not None:  # the SQL path reads DuckDB: everything answered before must be in it
            self._writer.flush()
        self._online = None  # it would miss this path's rows (ids, keys): warmed again if the NumPy path returns
        rows = [j.row for j in jobs]
        cur = self.ws.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            new = typed_rows(cur, rows, types)
            reach = self._reach(cur, rows, plan)
            labels = None if reach is None else self._history.fraud_labels(cur, self._due("labels"))
            frame = compute(cur, plan, rows, new, reach, labels)
        finally:
            cur.close()
        features_at = time.perf_counter()
        result = score_rows(models.scorer, frame)  # exact TreeSHAP for every event (reasons in every answer)
        values = frame.to_dict("records")
        for i, job in enumerate(jobs):
            job.answer = answer_of(job, result, i, values[i], models.threshold, features_at, len(jobs))
        late = self._late(rows, plan)  # before this batch joins the history: stored rows later than an event
        store(self.ws, jobs, new, frame, models.threshold, self._bump)
        if self._history is not None:
            self._history.append(new)
            if any(j.row.get("is_fraud") is not None for j in jobs):
                self._history.forget_labels()
        repair(self.ws, late, jobs)
        for job in jobs:
            job.done = True

    # ------------------------------------------------------------------------------------------ the NumPy path

    def _decide_fast(self, jobs: list[Job], types: dict[str, str], plan: LivePlan, models: _Models) -> None:
        """Built-in features in NumPy over the in-memory history, answers once the events are logged; the DuckDB
        write follows in the background (:mod:`fraudlab.api.writer`)."""
        writer = self.writer()
        began = time.perf_counter()
        new = arrow_rows([j.row for j in jobs], types)
        if new is None:  # a value only SQL's CAST takes (e.g. 2.5 for an integer column)
            cur = self.ws.cursor()
            try:
                cur.execute("SET TimeZone = 'UTC'")
                new = typed_rows(cur, [j.row for j in jobs], types)
            finally:
                cur.close()
        online = self._online_history(plan)
        before = online.rows
        undo = online.append(new)
        began = self._tick("rows + history", began)
        try:
            positions = np.arange(before, online.rows)
            columns = {"transaction_id": [j.row["transaction_id"] for j in jobs],
                       **features(online, plan.plan, new, positions)}
            columns = {c: columns[c] for c in plan.columns}  # the features table's order
            features_at = began = self._tick("features (NumPy)", began)
            result = score_rows(models.scorer, columns)  # exact TreeSHAP for every event (reasons in every answer)
            began = self._tick("predict + TreeSHAP", began)
            values = records(columns, len(jobs))
            stored = []
            for i, job in enumerate(jobs):
                job.answer = answer_of(job, result, i, values[i], models.threshold, features_at, len(jobs))
                job.answer["case_id"] = None  # set when the write commits: a retry gets it
                stored.append(Job(job.row, job.extra, job.key_name, job.began, dict(job.answer), score=job.score,
                                  received_at=job.received_at))
            late = online.later(positions, before, tuple(plan.spans))
            late_ids = [j.row["transaction_id"] for j, is_late in zip(jobs, late) if is_late]
            began = self._tick("answers + reasons", began)
            seq = writer.submit(Batch(stored, new, columns, models.threshold, late_ids),
                                [record(j, v, models.threshold) for j, v in zip(stored, values)])
        except BaseException:
            online.undo(undo)
            raise
        self._tick("log (write)", began)
        self.stage_ms["batches"] += 1
        self.stage_ms["events"] += len(jobs)
        for job in jobs:
            if job.row.get("is_fraud"):
                online.add_live_fraud(job.row["transaction_id"], job.row.get("merchant_id"),
                                      int(np.datetime64(job.row["ts"], "us").astype(np.int64)),
                                      plan.plan.label_delay_s)
            job.logged, job.done = seq, True

    def writer(self) -> LiveWriter:
        """The background writer (started on first use, after replaying events a crash left in the log)."""
        if self._writer is None:
            path = log_path(self.ws.path)
            replay(self.ws, path, self.column_types(), self._bump)
            self._writer = LiveWriter(path, lambda group: store_group(self.ws, group, self._bump),
                                      durability=self.durability)
        return self._writer

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait until every answered event is committed to DuckDB."""
        return True if self._writer is None else self._writer.flush(timeout_s)
