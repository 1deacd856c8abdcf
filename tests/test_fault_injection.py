"""Kill -9 in the middle of ingest, features, train and score: the workspace always opens, every table is all or
nothing, and running the job again completes exactly once (no duplicated or lost rows, no orphan model row)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from fraudlab.generate import simulate
from fraudlab.registry import clean_orphan_files
from fraudlab.workspace import Workspace, copy_workspace

pytestmark = pytest.mark.slow
ROWS = 30_000
JOBS = {"ingest": ["ingest", "{csv}"], "features": ["features"], "train": ["train"], "score": ["score"]}


def _run(args: list[str], ws_path, kill_after: float | None = None) -> int | None:
    env = dict(os.environ, FRAUDLAB_WORKSPACE=str(ws_path))
    proc = subprocess.Popen([sys.executable, "-m", "fraudlab", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if kill_after is None:
        return proc.wait(timeout=600)
    try:
        return proc.wait(timeout=kill_after)  # finished before the kill point: still a valid case
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A CSV, and workspaces before each job: empty, loaded, featurised, trained."""
    folder = tmp_path_factory.mktemp("faults")
    csv = folder / "tx.csv"
    simulate(rows=ROWS, seed=21, days=90).transactions.to_csv(csv, index=False)
    stages = {}
    for job, before in (("ingest", None), ("features", "ingest"), ("train", "features"), ("score", "train")):
        path = folder / f"before_{job}.duckdb"
        if before is not None:
            copy_workspace(stages[before], path)
            assert _run([a.format(csv=csv) for a in JOBS[before]], path) == 0
        else:
            Workspace(path).close()
        stages[job] = path
    return csv, stages


def _consistent(path, job: str) -> None:
    ws = Workspace(path)  # opens after kill -9: the write-ahead log is replayed or dropped, never half applied
    try:
        loaded = ws.count("transactions")
        assert loaded in (0, ws.scalar("SELECT coalesce(sum(rows_loaded), 0) FROM ingests")), "ingest half applied"
        assert ws.scalar("SELECT count(DISTINCT transaction_id) FROM transactions") == loaded
        if ws.has_table("features"):
            assert ws.count("features") in (0, loaded)
        assert ws.scalar("SELECT count(*) - count(DISTINCT transaction_id) FROM scores") == 0
        for path_name in ws.df("SELECT path FROM models")["path"]:
            assert (ws.models_dir / path_name).exists(), "a registered model without its file"
    finally:
        ws.close()


@pytest.mark.parametrize("job", list(JOBS))
def test_kill_at_random_points_leaves_a_consistent_workspace_and_a_rerun_completes_once(prepared, tmp_path, job):
    csv, stages = prepared
    rng = np.random.default_rng(hash(job) % 2**32)
    for k, delay in enumerate(rng.uniform(1.5, 6.0, 5)):  # 5 kill points per job, 20 in all
        path = tmp_path / f"{job}_{k}.duckdb"
        copy_workspace(stages[job], path)
        args = [a.format(csv=csv) for a in JOBS[job]]
        _run(args, path, kill_after=float(delay))
        _consistent(path, job)
        assert _run(args, path) == 0, f"{job} did not complete after a kill at {delay:.1f} s"
        _consistent(path, job)
        ws = Workspace(path)
        assert ws.count("transactions") == ROWS  # loaded exactly once, whatever happened before
        if job in ("features", "train", "score"):
            assert ws.count("features") == ROWS
        if job == "score":
            assert ws.count("scores") == ROWS
        if job == "train":  # files a killed run wrote before registering are orphans: cleaned, nothing else
            clean_orphan_files(ws, older_than_s=0)
            registered = set(ws.df("SELECT model_id FROM models")["model_id"])
            left = {p.name.split(".")[0].removesuffix("_test") for p in ws.models_dir.glob("m*.*")}
            assert left == registered
        ws.close()
