"""The server's job runner: one job at a time in submission order, recorded in `jobs`, cancellable, restart-safe."""
from __future__ import annotations

import sys
import time

import pytest
from people import admin, analyst, scientist

from fraudlab import job_kinds
from fraudlab.auth.permissions import NotAllowed
from fraudlab.job_kinds import JobKind, JobResult
from fraudlab.jobs_queue import SQL_INSERT, SQL_START, JobRunner, _execute, get_job, recent_jobs
from fraudlab.workspace import utcnow


def _slow(ws, args, who, progress):
    """A job that takes `seconds`, reporting progress (a cancellation point) every 20 ms."""
    began, seconds = time.monotonic(), float(args.get("seconds", 1.0))
    while (elapsed := time.monotonic() - began) < seconds:
        progress(elapsed / seconds, f"step at {elapsed:.2f} s")
        time.sleep(0.02)
    return JobResult((f"slept {seconds} s",), {"n": ws.count("transactions")})


@pytest.fixture()
def slow_kind(monkeypatch):
    """A 'slow' job kind any data scientist may run (to watch the runner's order, overlap and cancel)."""
    monkeypatch.setitem(job_kinds.KINDS, "slow", JobKind("slow", "run_drift", _slow))


@pytest.fixture()
def runner(loaded_ws):
    run = JobRunner(loaded_ws)
    yield run
    run.stop()


def test_jobs_run_one_at_a_time_in_submission_order(runner, slow_kind):
    ids = [runner.submit("slow", {"seconds": 0.3}, scientist()).job_id for _ in range(3)]
    done = [runner.wait(i) for i in ids]
    assert [j.status for j in done] == ["done"] * 3
    assert all(a.ended_at <= b.started_at for a, b in zip(done, done[1:]))  # never two at once, oldest first
    assert done[0].result == {"lines": ["slept 0.3 s"], "n": 20_000} and done[0].progress == 1.0
    assert done[0].who == "dana" or done[0].role == "scientist"


def test_readers_go_on_while_a_job_runs(runner, slow_kind):
    job = runner.submit("slow", {"seconds": 1.0}, scientist())
    time.sleep(0.3)
    began = time.monotonic()
    assert runner.ws.count("transactions") == 20_000 and get_job(runner.ws, job.job_id).status == "running"
    assert time.monotonic() - began < 0.5
    assert 0 < get_job(runner.ws, job.job_id).progress < 1
    runner.wait(job.job_id)


def test_a_running_job_is_cancelled_by_its_owner_and_a_queued_one_never_starts(runner, slow_kind):
    first = runner.submit("slow", {"seconds": 30}, scientist())
    second = runner.submit("slow", {"seconds": 0.1}, scientist())
    time.sleep(0.3)
    assert runner.cancel(second.job_id, scientist()).status == "cancelled"
    runner.cancel(first.job_id, scientist())
    ended = runner.wait(first.job_id, timeout=10)
    assert ended.status == "cancelled" and "cancelled by" in ended.error and ended.result is None
    assert get_job(runner.ws, second.job_id).started_at is None


def test_only_the_owner_or_an_admin_may_cancel(runner, slow_kind):
    job = runner.submit("slow", {"seconds": 30}, scientist())
    with pytest.raises(NotAllowed, match="only its owner or an admin"):
        runner.cancel(job.job_id, analyst())
    assert runner.cancel(job.job_id, admin()).job_id == job.job_id
    assert runner.wait(job.job_id, timeout=10).status == "cancelled"


def test_a_failed_job_keeps_its_error_and_the_next_one_runs(runner, tmp_path):
    bad = runner.submit("ingest", {"path": str(tmp_path / "missing.csv")}, admin())
    good = runner.submit("drift", {"no_multivariate": True}, admin())
    failed = runner.wait(bad.job_id)
    assert failed.status == "failed" and "missing.csv" in failed.error
    drift = runner.wait(good.job_id, timeout=120)
    assert drift.status == "done", drift.error
    assert drift.result["lines"][0].startswith(f"run {drift.result['run_id']}:")
    assert runner.ws.scalar("SELECT count(*) FROM drift_runs") == 1


def test_a_role_without_the_permission_is_refused_before_queueing(runner):
    with pytest.raises(NotAllowed, match="cannot load data"):
        runner.submit("ingest", {"path": "x.csv"}, analyst())
    assert recent_jobs(runner.ws).empty


def test_unknown_kinds_and_missing_paths_are_refused_with_the_choices(runner):
    with pytest.raises(Exception, match="use one of ingest, features, train, score, drift"):
        runner.submit("retrain-everything", {}, admin())
    with pytest.raises(Exception, match="needs args.path"):
        runner.submit("ingest", {}, admin())


def test_a_restarted_server_marks_jobs_it_left_running_as_failed(loaded_ws, slow_kind):
    # rows as a server killed mid-job leaves them: one running, one still queued, no worker behind either
    running, queued = (_execute(loaded_ws, SQL_INSERT, ["slow", "{}", "dana", "data_scientist", "cli", utcnow()])[0][0]
                       for _ in range(2))
    _execute(loaded_ws, SQL_START, [utcnow(), running])
    again = JobRunner(loaded_ws)
    try:
        assert again.recovered == 2
        first, second = get_job(loaded_ws, running), get_job(loaded_ws, queued)
        assert (first.status, first.error) == ("failed", "server stopped") and "while it ran" in first.message
        assert second.status == "failed" and "before it started" in second.message
        assert again.wait(again.submit("slow", {"seconds": 0.1}, scientist()).job_id).status == "done"
    finally:
        again.stop()


def test_features_train_and_score_run_as_jobs_with_the_summaries_the_command_prints(ws):
    run = JobRunner(ws)
    try:
        kinds = [("features", {}), ("train", {}), ("score", {"explain_top": 10})]
        ids = [run.submit(kind, args, admin()).job_id for kind, args in kinds]
        features, train, score = (run.wait(i, timeout=600) for i in ids)
    finally:
        run.stop()
    assert [j.status for j in (features, train, score)] == ["done"] * 3, [features.error, train.error, score.error]
    assert features.result["lines"][0].endswith("(duckdb)") and features.result["rows"] == ws.count("transactions")
    model_id = train.result["model_id"]
    assert train.result["lines"][-1].startswith(f"{model_id}: trained in")
    assert ws.scalar("SELECT count(*) FROM models WHERE model_id = ?", [model_id]) == 1
    assert score.result["lines"][0].startswith(f"scored {score.result['rows']:,} rows with ")


def _nice(ws, args, who, progress):
    """A job that reports the nice value of the thread it runs in, and of a thread it starts (as XGBoost's are)."""
    import os
    import threading

    seen = {}
    child = threading.Thread(target=lambda: seen.update(child=os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    child.start()
    child.join()
    return JobResult(("measured",), {"job": os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), **seen})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice values per thread are Linux's")
def test_jobs_run_at_a_lower_cpu_priority_than_the_server_threads_answering_live_events(runner, monkeypatch):
    """A job (and the threads it starts, e.g. XGBoost's) yields the cores to live scoring in the same server; the
    other threads of the process keep their priority."""
    import os
    import threading

    from fraudlab.jobs import JOB_NICE

    monkeypatch.setitem(job_kinds.KINDS, "nice", JobKind("nice", "run_drift", _nice))
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    job = runner.wait(runner.submit("nice", {}, scientist()).job_id)
    assert job.status == "done", job.error
    assert job.result["job"] == max(JOB_NICE, mine) and job.result["child"] == job.result["job"]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def _threads(ws, args, who, progress):
    """A job that reports DuckDB's thread count and the XGBoost threads a model loaded now would use."""
    from fraudlab.jobs import job_threads

    return JobResult(("measured",), {"duckdb": ws.scalar("SELECT current_setting('threads')"),
                                     "xgboost": job_threads(2)})


def test_a_job_starting_soon_after_live_events_leaves_the_live_path_a_core(runner, monkeypatch):
    """After a live event, a job's DuckDB and XGBoost work use one thread each (restored after it); without live
    events the job keeps every thread."""
    from fraudlab import jobs

    monkeypatch.setitem(job_kinds.KINDS, "threads", JobKind("threads", "run_drift", _threads))
    before = runner.ws.scalar("SELECT current_setting('threads')")
    monkeypatch.setattr(jobs, "_live_seen", [float("-inf")])
    quiet = runner.wait(runner.submit("threads", {}, scientist()).job_id).result
    jobs.note_live_event()
    busy = runner.wait(runner.submit("threads", {}, scientist()).job_id).result
    assert quiet == {"lines": ["measured"], "duckdb": before, "xgboost": 2}
    assert busy == {"lines": ["measured"], "duckdb": 1, "xgboost": 1}
    assert runner.ws.scalar("SELECT current_setting('threads')") == before


def test_a_cancel_meeting_the_workers_update_of_the_same_row_is_run_again(loaded_ws, slow_kind):
    """Two autocommit updates of one job row at once (a cancel while the worker starts the job): the second is run
    again once the first committed, instead of failing with DuckDB's conflict."""
    import threading

    from fraudlab.jobs_queue import SQL_CANCEL_QUEUED

    (job_id,), = _execute(loaded_ws, SQL_INSERT, ["slow", "{}", "dana", "scientist", "ui", utcnow()])
    holder = loaded_ws.cursor()
    holder.execute("BEGIN TRANSACTION")
    holder.execute("UPDATE jobs SET message = 'starting' WHERE job_id = ?", [job_id])
    got = {}
    cancel = threading.Thread(target=lambda: got.update(rows=_execute(loaded_ws, SQL_CANCEL_QUEUED,
                                                                      ["was cancelled", utcnow(), job_id])))
    cancel.start()
    time.sleep(0.005)
    holder.execute("COMMIT")
    cancel.join(timeout=10)
    holder.close()
    assert got["rows"] == [(job_id,)] and get_job(loaded_ws, job_id).status == "cancelled"
