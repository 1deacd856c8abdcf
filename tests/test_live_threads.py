"""Live scorers and their writers let go of their threads: one dropped from the shared scorers is closed (without
the request that dropped it waiting), one whose workspace was closed too, and a writer whose commits fail (its
workspace closed under it) stops its thread on close instead of retrying past it into a closed log."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from fraudlab.api import LiveScoring, routes, stop_live
from fraudlab.api.writer import LiveWriter, log_path, logged
from fraudlab.features import build_features
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.workspace import Workspace, copy_workspace

HELD_OUT = 10


@pytest.fixture(scope="module")
def small_base(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A small workspace with built-in features (the NumPy live path, no model: rules answer) and events to post."""
    sim = simulate(rows=3_000, seed=11, days=30)
    tx = sim.transactions.sort_values(["ts", "transaction_id"], kind="stable").reset_index(drop=True)
    path = tmp_path_factory.mktemp("live_threads") / "base.duckdb"
    ws = Workspace(path)
    ingest_table(ws, tx.iloc[:-HELD_OUT], source="simulation seed 11")
    build_features(ws)
    ws.close()
    held = tx.iloc[-HELD_OUT:].drop(columns=["label_ts"], errors="ignore")
    return path, [json.loads(pd.DataFrame([row]).to_json(orient="records", date_format="iso"))[0]
                  for _i, row in held.iterrows()]


def _threads(svc: LiveScoring) -> list[threading.Thread]:
    writer = svc._writer
    return [t for t in (svc._decider, svc._refresher, svc._warming, writer and writer._thread) if t is not None]


def _wait_closed(svc: LiveScoring, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if svc.closed and not any(t.is_alive() for t in _threads(svc)):
            return True
        time.sleep(0.05)
    return False


def test_a_scorer_dropped_from_the_shared_ones_is_closed_in_the_background(small_base, tmp_path, monkeypatch):
    path, events = small_base
    monkeypatch.setattr(routes, "_SERVICES", {})
    workspaces = [Workspace(copy_workspace(path, tmp_path / f"ws{i}.duckdb"))
                  for i in range(routes.MAX_SERVICES + 1)]
    try:
        first = routes.live_service(workspaces[0], recheck_s=0.2)
        answer = first.score(events[0])
        assert answer["scorer"] == "rules" and first._writer is not None  # decider, refresher and writer run
        assert all(t.is_alive() for t in _threads(first) if t is not first._warming)
        real_close = LiveScoring.close

        def slow_close(self):  # a close joining threads for long (a warm at 10M rows): the caller must not wait
            time.sleep(1.5)
            real_close(self)

        monkeypatch.setattr(LiveScoring, "close", slow_close)
        for ws in workspaces[1:-1]:
            routes.live_service(ws, recheck_s=0.2)
        assert not first.stopping
        began = time.monotonic()
        routes.live_service(workspaces[-1], recheck_s=0.2)  # the ninth: the first one is dropped
        assert time.monotonic() - began < 1.0
        assert first not in routes._SERVICES.values() and len(routes._SERVICES) == routes.MAX_SERVICES
        assert _wait_closed(first, 10.0), [t.name for t in _threads(first) if t.is_alive()]
        assert workspaces[0].scalar("SELECT count(*) FROM api_events WHERE transaction_id = ?",
                                    [events[0]["transaction_id"]]) == 1  # what it answered was committed
    finally:
        monkeypatch.undo()
        for ws in workspaces:
            stop_live(ws)
            ws.close()


def test_a_scorer_whose_workspace_was_closed_is_closed(small_base, tmp_path, monkeypatch):
    path, events = small_base
    monkeypatch.setattr(routes, "_SERVICES", {})
    gone = Workspace(copy_workspace(path, tmp_path / "gone.duckdb"))
    other = Workspace(copy_workspace(path, tmp_path / "other.duckdb"))
    try:
        svc = routes.live_service(gone, recheck_s=0.2)
        svc.score(events[1])
        assert svc.flush()
        gone.close()
        routes.live_service(other, recheck_s=0.2)
        assert list(routes._SERVICES.values()) != [] and svc not in routes._SERVICES.values()
        assert _wait_closed(svc, 10.0), [t.name for t in _threads(svc) if t.is_alive()]
    finally:
        stop_live(other)
        other.close()


def test_a_writer_whose_workspace_closed_under_it_stops_its_threads_on_close(small_base, tmp_path, monkeypatch):
    """The workspace closes before the writer commits: its commits fail; close() must end its thread (not leave it
    retrying, then fsync'ing a log close() closed: "I/O operation on closed file"), and the events stay logged."""
    path, events = small_base
    raised = []
    monkeypatch.setattr(threading, "excepthook", lambda args: raised.append(args.exc_value))
    monkeypatch.setattr(LiveWriter.__init__, "__defaults__", (0.3,))  # the commit comes after the close below
    for round_ in range(3):
        ws = Workspace(copy_workspace(path, tmp_path / f"closed{round_}.duckdb"))
        svc = LiveScoring(ws, recheck_s=0.0)
        done = threading.Event()
        job = svc.submit(events[2 + round_],
                         on_ready=lambda j, s=svc, d=done: s.writer().sync_later(j.logged, d.set))
        assert done.wait(10) and job.error is None
        ws.close()
        time.sleep(0.5)  # the writer tried to commit to the closed workspace, failed, waits to try again
        began = time.monotonic()
        svc.close()
        assert time.monotonic() - began < 3.0
        assert not svc._writer._thread.is_alive()
        assert [e["row"]["transaction_id"] for e in logged(log_path(ws.path))] == [events[2 + round_]["transaction_id"]]
    time.sleep(0.5)
    assert raised == []


def _gated_writer(tmp_path: Path, monkeypatch, durability: str) -> tuple[LiveWriter, threading.Event, int]:
    """A writer whose log fsyncs wait for `gate` (a disk that stalls) and whose commits only record their groups."""
    from types import SimpleNamespace

    import fraudlab.api.writer as writer_module

    gate, stored, fsync = threading.Event(), [], writer_module.os.fsync

    def stalled_fsync(fd: int) -> None:
        gate.wait(10)
        fsync(fd)

    monkeypatch.setattr(writer_module.os, "fsync", stalled_fsync)
    writer = LiveWriter(log_path(tmp_path / "ws.duckdb"), stored.extend, 30.0, durability=durability)
    job = SimpleNamespace(row={"transaction_id": "t1"}, answer={"score": 0.5})
    seq = writer.submit(writer_module.Batch([job], None, {}, 0.5, []), ['{"row": {"transaction_id": "t1"}}\n'])
    return writer, gate, seq


@pytest.mark.parametrize("durability", ["disk", "process"])
def test_an_answer_waits_for_the_fsync_only_when_durability_is_disk(tmp_path, monkeypatch, durability):
    """'disk' (the default): an answer goes out once its log line is fsync'ed, so a disk that stalls holds it;
    'process': once the line is written to the file (a crash of the server loses nothing), the fsync right after."""
    writer, gate, seq = _gated_writer(tmp_path, monkeypatch, durability)
    answered = threading.Event()
    writer.when_durable(seq, answered.set)
    assert answered.wait(0.5) is (durability == "process")
    assert [e["row"]["transaction_id"] for e in logged(writer.path)] == ["t1"]  # in the file either way
    gate.set()
    assert answered.wait(5)
    deadline = time.monotonic() + 5
    while writer._synced < seq and time.monotonic() < deadline:  # the syncer fsyncs it in both modes
        time.sleep(0.01)
    assert writer._synced >= seq
    writer.close()


def test_live_durability_setting_is_checked():
    from fraudlab.config import live_durability

    assert live_durability(" Process ") == "process" and live_durability("disk") == "disk"
    with pytest.raises(ValueError, match="FRAUDLAB_LIVE_DURABILITY must be one of disk, process"):
        live_durability("fast")
