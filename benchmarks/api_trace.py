"""bench_api's `--trace`: where a live answer's time goes, event by event, inside the benchmark's server process.

Installed by monkeypatching (no cost when not asked for): per request the wait for a worker thread, the wait in the
decider's queue, the batch's stages, the fsync wait and the way back to the event loop; per commit of the writer its
time; every garbage collection (gc.callbacks); a probe thread that sleeps 1 ms and notes how late it woke (a late
wake-up is time the GIL or the cores were held by someone else). `dump(path)` writes it all as JSON;
`summary(path, p)` prints, for the events slower than the p-th percentile, what they overlapped.
"""
from __future__ import annotations

import contextvars
import gc
import json
import threading
import time
from collections import defaultdict

import numpy as np

T0 = time.perf_counter()
EVENTS: list[dict] = []  # one per scored request
BATCHES: list[dict] = []  # one per decided batch
COMMITS: list[tuple[float, float, int]] = []  # (start, end, events) of the writer's commits
GCS: list[tuple[float, float, int, int]] = []  # (start, end, generation, collected)
GC2: list[tuple[float, str, int]] = []  # per generation-2 collection: (start, thread, objects it traverses)
WAL: list[tuple[float, int, int]] = []  # per commit: (start, WAL bytes before, after): a drop is a checkpoint
FSYNCS: list[tuple[float, float, str]] = []  # (start, end, thread) of every os.fsync of the process
STALLS: list[tuple[float, float]] = []  # (expected wake-up, actual) of the probe, when late by more than 2 ms
_gc_start: dict[int, float] = {}
_local = threading.local()
_MARK: contextvars.ContextVar[dict] = contextvars.ContextVar("api_trace_mark")


def _now() -> float:
    return time.perf_counter()


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_start[info["generation"]] = _now()
        if info["generation"] == 2:
            GC2.append((_now() - T0, threading.current_thread().name, len(gc.get_objects())))
            _gc_start[2] = _now()  # the count above is not part of the pause
    else:
        began = _gc_start.pop(info["generation"], None)
        if began is not None:
            GCS.append((began, _now(), info["generation"], info.get("collected", 0)))


def _probe(stop: threading.Event) -> None:
    while not stop.is_set():
        planned = _now() + 0.001
        time.sleep(0.001)
        late = _now() - planned
        if late > 0.002:
            STALLS.append((planned, planned + late))


def _trace_fsync() -> None:
    import os
    fsync = os.fsync

    def traced(fd):
        began = _now()
        try:
            return fsync(fd)
        finally:
            FSYNCS.append((began, _now(), threading.current_thread().name))
    os.fsync = traced


def install() -> threading.Event:
    """Patch the live scorer, the writer and the route's thread hand-off; start the GC hook and the probe."""
    import anyio.to_thread

    from fraudlab.api import service, writer

    gc.callbacks.append(_on_gc)
    _trace_fsync()
    stop = threading.Event()
    threading.Thread(target=_probe, args=(stop,), name="trace-probe", daemon=True).start()

    original_run_sync = anyio.to_thread.run_sync

    async def run_sync(func, *args, **kwargs):
        mark = {"route": _now()}

        def wrapped(*a):
            mark["thread"] = _now()
            _local.mark = mark
            try:
                return func(*a)
            finally:
                mark["thread_end"] = _now()
                _local.mark = None
        try:
            return await original_run_sync(wrapped, *args, **kwargs)
        finally:
            mark["back"] = _now()
            if "job_began" in mark:
                EVENTS.append(mark)

    anyio.to_thread.run_sync = run_sync

    score = service.LiveScoring.score

    def traced_score(self, payload, key_name=None):
        out = score(self, payload, key_name)
        mark = getattr(_local, "mark", None)
        if mark is not None:
            job = _local.job
            mark.update(job_began=job.began, taken=job._taken, done=getattr(job, "_done", None),
                        batch=job._batch, returned=_now(), sync_ms=getattr(_local, "sync_ms", 0.0))
        return out

    service.LiveScoring.score = traced_score

    if hasattr(service.LiveScoring, "submit"):  # the async route (no thread per request)
        _install_async(service)

    job_init = service.Job.__init__

    def traced_job_init(self, *a, **k):
        job_init(self, *a, **k)
        _local.job = self
    service.Job.__init__ = traced_job_init

    run = service.LiveScoring._run

    def traced_run(self, batch):
        taken = _now()
        for job in batch:
            job._taken, job._batch = taken, len(batch)
        self._trace_stages = {}
        run(self, batch)
        end = _now()
        for job in batch:
            job._done = end
        BATCHES.append({"start": taken, "end": end, "size": len(batch), **self._trace_stages})

    service.LiveScoring._run = traced_run

    tick = service.LiveScoring._tick

    def traced_tick(self, stage, began):
        now = tick(self, stage, began)
        stages = getattr(self, "_trace_stages", None)
        if stages is not None:
            stages[stage] = stages.get(stage, 0.0) + 1000 * (now - began)
        return now

    service.LiveScoring._tick = traced_tick

    sync = writer.LiveWriter.sync

    def traced_sync(self, seq):
        began = _now()
        sync(self, seq)
        _local.sync_ms = 1000 * (_now() - began)

    writer.LiveWriter.sync = traced_sync

    commit = writer.LiveWriter.commit

    def traced_commit(self):
        wal = self.path.with_name(self.path.name[:-len(".live")] + ".wal")
        size = wal.stat().st_size if wal.exists() else 0
        began = _now()
        pending = self.unwritten
        ok = commit(self)
        COMMITS.append((began, _now(), pending))
        WAL.append((began - T0, size, wal.stat().st_size if wal.exists() else 0))
        return ok

    writer.LiveWriter.commit = traced_commit

    from fraudlab.api import store as store_module
    for name in ("store", "queue_state", "add_alert", "add_history_rows", "move_fingerprint", "repair"):
        setattr(store_module, name, _timed(getattr(store_module, name), name))
    return stop


def _install_async(service) -> None:
    """Per-event marks of the async route: the request's task carries them (a context variable)."""
    from fraudlab.api import answering, routes

    submit = service.LiveScoring.submit

    def traced_submit(self, payload, key_name=None, on_ready=None):
        job = submit(self, payload, key_name, on_ready)
        mark = _MARK.get(None)
        if mark is not None:
            mark["job"] = job
        return job

    service.LiveScoring.submit = traced_submit
    settle = answering._settle

    def traced_settle(future, job):
        job._settled = _now()
        settle(future, job)

    answering._settle = traced_settle
    original = routes.score_async

    async def traced_score_async(svc, payload, key_name):
        mark = {"route": _now()}
        _MARK.set(mark)
        try:
            return await original(svc, payload, key_name)
        finally:
            back, job = _now(), mark.pop("job", None)
            if job is not None and hasattr(job, "_taken"):
                EVENTS.append({"id": payload.get("transaction_id") if isinstance(payload, dict) else None,
                               "route": mark["route"], "thread": mark["route"], "job_began": job.began,
                               "taken": job._taken, "done": getattr(job, "_done", None), "batch": job._batch,
                               "returned": getattr(job, "_settled", back), "back": back, "sync_ms": 0.0})

    routes.score_async = traced_score_async


STORE_MS: dict[str, list[float]] = defaultdict(list)  # the writer's parts (store: the whole write of one group)


def _timed(fn, name: str):
    def wrapped(*a, **k):
        began = _now()
        try:
            return fn(*a, **k)
        finally:
            STORE_MS[name].append(1000 * (_now() - began))
    return wrapped


def dump(path: str) -> None:
    """Write what was traced as JSON (times in seconds since the tracer's import)."""
    def rel(values):
        return [[v - T0 if isinstance(v, float) and i < 2 else v for i, v in enumerate(row)] for row in values]
    events = [{k: (v - T0 if isinstance(v, float) and k not in ("sync_ms",) else v) for k, v in e.items()}
              for e in EVENTS]
    batches = [{k: (v - T0 if k in ("start", "end") else v) for k, v in b.items()} for b in BATCHES]
    with open(path, "w") as out:
        json.dump({"t0": T0, "events": events, "batches": batches, "commits": rel(COMMITS), "gcs": rel(GCS),
                   "stalls": rel(STALLS), "fsyncs": rel(FSYNCS), "gc2": GC2, "store_ms": STORE_MS, "wal": WAL, "gc_counts": gc.get_count(), "gc_threshold": gc.get_threshold(),
                   "gc_tracked": len(gc.get_objects())}, out)


def _overlap(spans, a: float, b: float) -> float:
    return sum(max(0.0, min(b, e) - max(a, s)) for s, e, *_ in spans)


def summary(path: str, since: float = 0.0, pct: float = 99.0) -> None:
    """Print the per-stage breakdown of all events and of the slowest ones (after `since` s), and what they
    overlapped (commits, GC pauses, probe stalls)."""
    data = json.load(open(path))
    events = [e for e in data["events"] if e["route"] >= since and e.get("done") is not None]
    if not events:
        print("no traced events")
        return
    parts = {
        "to thread": lambda e: e["thread"] - e["route"],
        "parse + enqueue": lambda e: e["job_began"] - e["thread"],
        "queue wait": lambda e: e["taken"] - e["job_began"],
        "batch (decide)": lambda e: e["done"] - e["taken"],
        "wake + fsync": lambda e: e["returned"] - e["done"],
        "fsync": lambda e: e["sync_ms"] / 1000,
        "json + back to loop": lambda e: e["back"] - e["returned"],
        "total (server)": lambda e: e["back"] - e["route"],
    }
    total = np.array([parts["total (server)"](e) for e in events])
    cut = np.percentile(total, pct)
    slow = [e for e, t in zip(events, total) if t >= cut]
    print(f"{len(events)} events; server total P50 {1000 * np.median(total):.1f} ms, P{pct:g} {1000 * cut:.1f} ms, "
          f"max {1000 * total.max():.1f} ms")
    for name, fn in parts.items():
        every = np.array([fn(e) for e in events]) * 1000
        worst = np.array([fn(e) for e in slow]) * 1000
        print(f"  {name:<22} all P50 {np.median(every):7.1f} P99 {np.percentile(every, 99):7.1f}   "
              f"slowest {len(slow)}: mean {worst.mean():7.1f} max {worst.max():7.1f}")
    batches = [b for b in data["batches"] if b["start"] >= since]
    stage = defaultdict(list)
    for b in batches:
        for k, v in b.items():
            if k not in ("start", "end"):
                stage[k].append(v)
        stage["batch wall ms"].append(1000 * (b["end"] - b["start"]))
    for k, v in stage.items():
        v = np.array(v)
        print(f"  batch {k:<24} mean {v.mean():7.2f} P50 {np.median(v):7.2f} P99 {np.percentile(v, 99):7.2f} "
              f"max {v.max():7.2f}")
    for name in ("commits", "gcs", "stalls"):
        spans = [s for s in data[name] if s[1] >= since]
        if not spans:
            print(f"  {name}: none")
            continue
        d = np.array([1000 * (s[1] - s[0]) for s in spans])
        hit = np.mean([_overlap(spans, e["route"], e["back"]) for e in slow]) * 1000
        extra = ""
        if name == "gcs":
            extra = " by generation " + str({g: round(float(d[[s[2] == g for s in spans]].sum()), 1)
                                             for g in (0, 1, 2)}) + " ms"
        print(f"  {name}: {len(spans)}, total {d.sum():.0f} ms, P50 {np.median(d):.1f} max {d.max():.1f} ms{extra}; "
              f"slowest events overlap them {hit:.1f} ms on average")
    print(f"  gc thresholds {data['gc_threshold']}, tracked objects at the end {data['gc_tracked']:,}; generation-2 "
          f"collections (start s, thread, objects): {[(round(t, 1), n, c) for t, n, c in data.get('gc2', [])]}")
    print("  writer parts, ms (count, mean, max): " + ", ".join(
        f"{k} ({len(v)}, {np.mean(v):.1f}, {np.max(v):.1f})" for k, v in data.get("store_ms", {}).items() if v))
    wal = [w for w in data.get("wal", []) if w[0] >= since]
    drops = [(round(t, 1), round(b / 2**20, 1)) for t, b, a in wal if a < b]
    if wal:
        spans = {round(c[0], 1): round(1000 * (c[1] - c[0])) for c in data["commits"]}
        print(f"  WAL at the commits: {round(wal[0][1] / 2**20, 1)} -> {round(wal[-1][2] / 2**20, 1)} MB; checkpoints "
              f"(start s, WAL MB before, commit ms): {[(t, mb, spans.get(t)) for t, mb in drops]}")


def wire(path: str, client: dict[str, list[float]], since: float = 0.0, pct: float = 99.0) -> None:
    """Where the time between the load client and the server goes, per event joined on its transaction id (both
    processes read the same monotonic clock): the client's own lateness, the way in (sent -> the route runs), the
    server (route -> answer back on its event loop), the way out (-> the client thread has read the answer)."""
    data = json.load(open(path))
    t0 = data["t0"]
    rows = []
    for e in data["events"]:
        times = client.get(e.get("id"))
        if times is not None and e["route"] >= since:
            planned, sent, received = times
            rows.append((received - planned, sent - planned, t0 + e["route"] - sent, e["back"] - e["route"],
                         received - (t0 + e["back"])))
    if not rows:
        print("no events joined")
        return
    table = np.array(rows) * 1000
    cut = np.percentile(table[:, 0], pct)
    slow = table[table[:, 0] >= cut]
    print(f"client and server joined on {len(rows)} events: client P50 {np.median(table[:, 0]):.1f} ms, "
          f"P{pct:g} {cut:.1f} ms")
    for i, name in enumerate(("client late to send", "way in (to the route)", "server (route -> back)",
                              "way out (to the client)"), start=1):
        print(f"  {name:<24} all P50 {np.median(table[:, i]):7.1f} P99 {np.percentile(table[:, i], 99):7.1f}   "
              f"slowest {len(slow)}: mean {slow[:, i].mean():7.1f} max {slow[:, i].max():7.1f}")
