"""The command line's hand-off: the server file, and a real server running CLI jobs while it holds the workspace."""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fraudlab.browser import serve_app
from fraudlab.generate import simulate
from fraudlab.handoff import read_server_file, remove_server_file, server_file, status, write_server_file
from fraudlab.jobs_queue import recent_jobs
from fraudlab.workspace import Workspace, copy_workspace

ROOT = Path(__file__).resolve().parent.parent


def test_the_server_file_is_private_and_ignored_once_its_process_is_gone(tmp_path):
    ws_path = tmp_path / "ws.duckdb"
    info = write_server_file(ws_path, 8599)
    path = server_file(ws_path)
    assert path.name == "ws.duckdb.server.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_server_file(ws_path) == info
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path.write_text(json.dumps({"pid": int(dead.stdout), "port": 8599, "token": "x"}))
    assert read_server_file(ws_path) is None  # that server is gone: run directly
    remove_server_file(ws_path, info)
    assert path.exists()  # not ours any more: left alone
    path.write_text("not json")
    assert read_server_file(ws_path) is None


def test_with_no_server_the_command_runs_directly(app_workspace):
    done = subprocess.run([sys.executable, "-m", "fraudlab", "drift", "--no-multivariate"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert re.match(r"run \d+: ", done.stdout) and "runs there" not in done.stderr


def _cli(*args: str, ws_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fraudlab", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, FRAUDLAB_WORKSPACE=str(ws_path)))


@pytest.mark.slow
def test_cli_jobs_are_handed_to_the_running_server(tmp_path, ready_workspace_file):
    ws_path = tmp_path / "served.duckdb"
    copy_workspace(ready_workspace_file, ws_path)
    csv = tmp_path / "new rows.csv"
    tx = simulate(rows=500, seed=11, days=5).transactions
    tx["transaction_id"] = "handoff-" + tx["transaction_id"]
    tx.to_csv(csv, index=False)
    with serve_app(ws_path, tmp_path / "streamlit.log"):
        info = read_server_file(ws_path)
        assert info is not None and info.pid != os.getpid()
        drift = _cli("drift", "--no-multivariate", ws_path=ws_path)
        assert drift.returncode == 0, drift.stderr
        assert "runs there as job 1" in drift.stderr and drift.stdout.startswith("run ")
        ingest = _cli("ingest", os.path.relpath(csv, ROOT), ws_path=ws_path)  # relative to the CLI's folder
        assert ingest.returncode == 0, ingest.stderr
        assert "runs there as job 2" in ingest.stderr and ingest.stdout.startswith(f"{csv}: loaded 500 of 500 rows")
        record = status(info, 2, "tester")
        assert record["status"] == "done" and record["result"]["rows_loaded"] == 500
        folder = tmp_path / "landing"
        folder.mkdir()
        day = simulate(rows=300, seed=12, days=2, start="2026-07-01").transactions
        day["transaction_id"] = "watched-" + day["transaction_id"]
        day.to_csv(folder / "day 1.csv", index=False)
        watched = _cli("watch", str(folder), "--once", "--settle", "0", ws_path=ws_path)
        assert watched.returncode == 0, watched.stderr
        assert "owns this workspace" in watched.stdout and "day 1.csv: loaded: loaded 300 of 300 rows" in watched.stdout
        assert "(job 3)" in watched.stdout and "features" in watched.stdout
        refused = subprocess.run([sys.executable, "-c", (
            "import json, sys; from pathlib import Path; from fraudlab import handoff; p = Path(sys.argv[1]); "
            "f = handoff.server_file(p); d = json.loads(f.read_text()); d['token'] = 'wrong'; "
            "info = handoff.ServerInfo(**d); handoff.submit(info, 'drift', {}, 'x')"), str(ws_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "refused the job" in refused.stderr
    assert not server_file(ws_path).exists()  # removed at exit
    ws = Workspace(ws_path)
    try:
        jobs = recent_jobs(ws)
        assert list(jobs.sort_values("job_id")["kind"]) == ["drift", "ingest", "ingest"]
        assert set(jobs["status"]) == {"done"} and set(jobs["via"]) == {"cli"}
        assert ws.scalar("SELECT count(*) FROM transactions WHERE transaction_id LIKE 'handoff-%'") == 500
        # the watched file went through the pipeline in the server: features and scores for every new row
        assert ws.scalar("SELECT count(*) FROM features WHERE transaction_id LIKE 'watched-%'") == 300
        assert ws.scalar("SELECT count(*) FROM scores WHERE transaction_id LIKE 'watched-%'") == 300
    finally:
        ws.close()


def test_a_workspace_held_by_a_program_without_a_server_file_gets_a_clear_message(loaded_ws):
    held = _cli("drift", ws_path=loaded_ws.path)  # this test process holds the file open
    assert held.returncode == 2
    assert "Another program holds this workspace" in held.stderr and ".server.json" in held.stderr
