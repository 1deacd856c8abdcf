"""The Dask feature path on a real distributed.LocalCluster gives exactly the DuckDB path's features."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client
from people import scientist

from fraudlab.cluster import ClusterError, dask_client
from fraudlab.features import build_features, feature_info, load_frame
from fraudlab.features_dask import build_features_dask
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    """A real distributed.LocalCluster: two worker processes."""
    with dask_client(scheduler="", n_workers=2) as cl:
        yield cl


def test_dask_features_equal_duckdb_features(tmp_path, client):
    tx = simulate(rows=6_000, seed=21, days=30, customers=300).transactions
    frames = []
    for name, build in (("duck", lambda ws: build_features(ws)),
                        ("dask", lambda ws: build_features_dask(ws, client=client, work_dir=tmp_path / "work"))):
        ws = Workspace(tmp_path / f"{name}.duckdb")
        ingest_table(ws, tx, source="same input")
        report = build(ws)
        assert report.rows == 6_000
        frame = load_frame(ws).set_index("transaction_id").sort_index()
        frames.append((frame, feature_info(ws)))
        if name == "dask":
            assert ws.audit_log()["details"].str.contains('"engine": "dask"').any()
        ws.close()
    (duck, duck_info), (dask_, dask_info) = frames
    assert sorted(duck_info["numeric"]) == sorted(dask_info["numeric"])
    pd.testing.assert_frame_equal(duck, dask_[duck.columns], check_exact=False, rtol=1e-9)


def test_user_defined_features_are_the_same_on_dask(tmp_path, client):
    from fraudlab.featurelab import FeatureDef, add_definition

    tx = simulate(rows=4_000, seed=22, days=25, customers=200).transactions
    defs = [FeatureDef("c_online_mean_7d", "customer_id", "mean", "amount", "7d", where="channel = 'online'"),
            FeatureDef("m_distinct_customers_1d", "merchant_id", "distinct", "customer_id", "1d"),
            FeatureDef("c_since_last", "customer_id", "since_last", None, "all")]
    frames = []
    for name, build in (("duck", lambda ws: build_features(ws)),
                        ("dask", lambda ws: build_features_dask(ws, client=client, work_dir=tmp_path / "w2"))):
        ws = Workspace(tmp_path / f"defs_{name}.duckdb")
        ingest_table(ws, tx, source="same input")
        build_features(ws)
        for defn in defs:
            add_definition(ws, defn, scientist("test"))
        build(ws)  # a full rebuild on either engine re-applies every active definition
        frames.append(load_frame(ws, columns=[d.name for d in defs]).set_index("transaction_id").sort_index())
        ws.close()
    duck, dask_ = frames
    assert duck[[d.name for d in defs]].notna().any().all()
    pd.testing.assert_frame_equal(duck, dask_[duck.columns], check_exact=False, rtol=1e-9)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dask_command(*args: str, cwd: Path) -> subprocess.Popen:
    """`dask ...` exactly as the README says, from a folder outside the project: fraudlab comes from pip."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen([str(Path(sys.executable).parent / "dask"), *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_cli_features_run_on_a_scheduler_and_workers_started_as_the_readme_says(tmp_path, monkeypatch):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _dask_command("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", cwd=tmp_path)
    worker = _dask_command("worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                           "--host", "127.0.0.1", cwd=tmp_path)
    try:
        with Client(address, timeout=60) as probe:
            probe.wait_for_workers(2, timeout=60)
        ws_path = tmp_path / "remote.duckdb"
        ws = Workspace(ws_path)
        ingest_table(ws, simulate(rows=3_000, seed=4, days=20).transactions, source="remote")
        ws.close()
        monkeypatch.setenv("FRAUDLAB_WORKSPACE", str(ws_path))
        monkeypatch.setenv("FRAUDLAB_DASK_SCHEDULER", address)
        from fraudlab.cli import main

        assert main(["features", "--engine", "dask"]) == 0
        ws = Workspace(ws_path)
        assert ws.count("features") == 3_000
        assert ws.audit_log()["details"].str.contains('"engine": "dask"').any()
        ws.close()
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(timeout=30)


def test_a_scheduler_without_workers_fails_fast_with_what_to_start(tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _dask_command("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", cwd=tmp_path)
    try:
        with Client(address, timeout=60):
            pass  # the scheduler is up
        started = time.perf_counter()
        with pytest.raises(ClusterError, match="no worker"):
            with dask_client(scheduler=address, timeout_s=3):
                pass
        assert time.perf_counter() - started < 30
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=30)
