"""A long job can be cancelled from another thread and never runs past its cap: the write it was doing rolls back,
the write lock is free, the workspace opens, and running the job again does it exactly once."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import duckdb
import pytest
from people import scientist

from fraudlab import jobs, pipeline
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_path
from fraudlab.jobs import JobCancelled, JobControl
from fraudlab.workspace import Workspace

ROWS = 30_000


@pytest.fixture(scope="module")
def generated_csv(tmp_path_factory):
    """30,000 simulated rows as a CSV (a load of a few seconds on a shared 2-core machine)."""
    path = tmp_path_factory.mktemp("jobs") / "generated.csv"
    simulate(rows=ROWS, seed=13, days=30).transactions.to_csv(path, index=False)
    return path


def _state(ws: Workspace) -> tuple[int, ...]:
    return (ws.count("transactions"), ws.count("quarantine"), ws.count("ingests"), ws.count("labels"),
            ws.count("transaction_extras"), ws.version, ws.count("audit"))


def _causes(exc: BaseException) -> list[BaseException]:
    chain = []
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def test_a_running_query_is_interrupted_by_cancel_from_another_thread(empty_ws):
    control = JobControl("a long count", cap_seconds=0)
    threading.Timer(0.3, control.cancel).start()
    began = time.monotonic()
    with pytest.raises(JobCancelled, match="a long count was cancelled") as caught:
        with control.running(), empty_ws.write("probe", scientist("test")):
            empty_ws.scalar("SELECT count(*) FROM range(100000000000) r(a) WHERE a % 7 = 3")  # minutes if not stopped
    assert time.monotonic() - began < 10
    assert any(isinstance(e, duckdb.InterruptException) for e in _causes(caught.value))
    assert caught.value.rolled_back == ("probe",) and "Rolled back: probe" in str(caught.value)
    assert empty_ws.count("audit") == 0


def test_a_cancel_seen_at_a_step_inside_a_write_reports_the_rollback(empty_ws):
    from fraudlab.jobs import checkpoint

    control = JobControl("a load")
    with pytest.raises(JobCancelled) as caught, control.running():
        with empty_ws.write("probe", scientist("test")) as cur:
            cur.execute("CREATE TABLE half_done AS SELECT 1 AS x")
            control.cancel()
            checkpoint("writing good rows")  # raised here, before any statement is interrupted
    message = str(caught.value)
    assert "while writing good rows" in message and "Rolled back: probe" in message
    assert caught.value.rolled_back == ("probe",)
    assert not empty_ws.has_table("half_done") and empty_ws.count("audit") == 0


def test_cancel_mid_ingest_leaves_the_workspace_unchanged_and_a_rerun_loads_once(tmp_path, generated_csv):
    path = tmp_path / "ws.duckdb"
    ws = Workspace(path)
    before = _state(ws)
    control = JobControl("the load")

    def progress(_fraction: float, message: str) -> None:
        if message == "validating rows":  # mid-ingest: cancel from another thread while the checks run
            threading.Timer(0.2, control.cancel).start()

    with pytest.raises(JobCancelled) as caught, control.running():
        ingest_path(ws, generated_csv, progress=progress)
    message = str(caught.value)
    assert "the load was cancelled" in message and "Rolled back: ingest of" in message
    assert "Nothing was kept: the workspace is as it was before" in message
    assert _state(ws) == before
    assert ws._lock.acquire(blocking=False)  # the write lock is free
    ws._lock.release()
    ws.close()
    opened = subprocess.run([sys.executable, "-c", "import sys; from fraudlab.workspace import Workspace; "
                             "w = Workspace(sys.argv[1]); print(w.count('transactions')); w.close()", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert opened.returncode == 0 and opened.stdout.strip() == "0", opened.stderr  # no file lock left behind
    ws = Workspace(path)
    assert ingest_path(ws, generated_csv).rows_loaded == ROWS
    assert ingest_path(ws, generated_csv).status == "skipped"
    assert ws.count("transactions") == ROWS and ws.count("ingests") == 1
    ws.close()


def test_a_job_past_its_cap_is_stopped_and_writes_nothing(empty_ws, generated_csv):
    before = _state(empty_ws)
    began = time.monotonic()
    with pytest.raises(JobCancelled, match=r"ran past its cap of 0.5 s") as caught:
        with JobControl("the load", cap_seconds=0.5).running():
            ingest_path(empty_ws, generated_csv)
    assert caught.value.kept == () and time.monotonic() - began < 30
    assert _state(empty_ws) == before


def test_the_default_cap_comes_from_the_environment(empty_ws, generated_csv, monkeypatch):
    monkeypatch.setenv(jobs.CAP_ENV, "0.5")
    with pytest.raises(JobCancelled, match=f"ran past its cap of 0.5 s \\({jobs.CAP_ENV}\\)"):
        ingest_path(empty_ws, generated_csv)  # no job given: the load is its own job, with the default cap
    assert empty_ws.count("transactions") == 0 and empty_ws.count("ingests") == 0
    monkeypatch.setenv(jobs.CAP_ENV, "0")
    assert jobs.default_cap() == 0.0
    monkeypatch.setenv(jobs.CAP_ENV, "not a number")
    assert jobs.default_cap() == jobs.DEFAULT_CAP_SECONDS


def test_cancelled_training_keeps_the_rebuilt_features_and_registers_no_model(ws):
    models, files = ws.count("models"), sorted(ws.models_dir.iterdir())
    control = JobControl("retraining")

    def progress(_fraction: float, message: str) -> None:
        if message.startswith("training XGBoost"):
            control.cancel()

    with pytest.raises(JobCancelled, match="retraining was cancelled while training XGBoost") as caught:
        with control.running():
            pipeline.retrain(ws, rebuild_features=True, progress=progress, who=scientist())
    assert caught.value.kept == ("build features",) and caught.value.rolled_back == ()
    assert "Nothing was being written. Kept from earlier steps: build features" in str(caught.value)
    assert ws.count("models") == models and sorted(ws.models_dir.iterdir()) == files


def test_nested_steps_share_the_outer_job_and_a_finished_job_leaves_no_trace(empty_ws):
    outer = JobControl("outer", cap_seconds=5)
    with outer.running():
        with jobs.job("inner") as inner:
            assert inner is outer
        with empty_ws.write("step", scientist("test")):
            pass
    assert outer.committed == ["step"] and jobs.current_job() is None
    with jobs.job("alone") as alone:
        assert alone is not outer and alone.cap_seconds == jobs.default_cap()
