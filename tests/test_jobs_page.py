"""The Jobs page through AppTest: an empty state, the recent jobs with who and how they ended, progress and Cancel
for a running job, a CSV download; only roles that run jobs see it."""
from __future__ import annotations

import time

import pytest
from people import admin, analyst, scientist

from fraudlab import job_kinds
from fraudlab.job_kinds import JobKind, JobResult
from fraudlab.jobs_queue import runner_for, stop_runner


def _slow(ws, args, who, progress):
    began = time.monotonic()
    while time.monotonic() - began < float(args.get("seconds", 1.0)):
        progress(0.25, "reading the first file")
        time.sleep(0.02)
    return JobResult(("slept",))


@pytest.fixture()
def served_ws(app_workspace, monkeypatch):
    """The workspace object the pages use (one per server process), its runner, and a 'slow' job kind."""
    from ui.state import workspace_at

    monkeypatch.setitem(job_kinds.KINDS, "slow", JobKind("slow", "run_drift", _slow))
    ws = workspace_at(str(app_workspace))
    yield ws
    stop_runner(ws)


def test_with_no_jobs_the_page_says_how_to_start_one(app_test):
    at = app_test("pages/jobs.py", actor=admin())
    assert not at.exception
    assert any("No jobs yet" in info.value for info in at.info)


def test_analysts_do_not_see_the_jobs_page(app_test):
    at = app_test(actor=analyst())
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/jobs.py")


def test_recent_jobs_are_listed_and_a_running_one_is_cancelled_from_the_page(app_test, served_ws, tmp_path):
    runner = runner_for(served_ws)
    done = runner.submit("drift", {"no_multivariate": True}, scientist("sci"))
    failed = runner.submit("ingest", {"path": str(tmp_path / "missing.csv")}, admin("ada"))
    assert runner.wait(done.job_id, timeout=120).status == "done"
    assert runner.wait(failed.job_id).status == "failed"
    slow = runner.submit("slow", {"seconds": 60}, scientist("sci"))
    time.sleep(0.8)

    at = app_test("pages/jobs.py", actor=scientist("sci"))
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns) == ["Job", "Kind", "Who", "Status", "Progress", "Duration (s)", "Message",
                                   "Submitted", "Error"]
    assert list(table["Status"]) == ["Running", "Failed", "Done"]
    assert table["Who"].iloc[0] == "sci (Data scientist)"
    assert "missing.csv" in table["Error"].iloc[1] and table["Error"].iloc[2] == ""
    assert "reading the first file" in at.get("progress")[0].proto.text
    assert at.get("download_button")[0].proto.label == "Download (CSV)"

    at.button(key=f"jobs_cancel_{slow.job_id}").click().run()
    assert not at.exception
    ended = runner.wait(slow.job_id, timeout=10)
    assert ended.status == "cancelled" and "cancelled by sci" in ended.error


def test_someone_else_gets_no_cancel_button(app_test, served_ws):
    runner = runner_for(served_ws)
    slow = runner.submit("slow", {"seconds": 60}, admin("ada"))
    time.sleep(0.5)
    at = app_test("pages/jobs.py", actor=scientist("sci"))
    assert not at.exception
    assert not [b for b in at.button if b.key == f"jobs_cancel_{slow.job_id}"]
    runner.cancel(slow.job_id, admin("ada"))
    assert runner.wait(slow.job_id, timeout=10).status == "cancelled"
