"""The Dask feature path on a real distributed.LocalCluster gives exactly the DuckDB path's features."""
from __future__ import annotations

import pandas as pd
import pytest
from distributed import Client

from fraudlab.cluster import dask_client

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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_features_run_on_a_separately_started_scheduler(tmp_path, monkeypatch):
    import subprocess
    import sys
    import time

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    bin_dir = __import__("pathlib").Path(sys.executable).parent
    root = str(__import__("pathlib").Path(__file__).resolve().parent.parent)
    env = dict(__import__("os").environ, PYTHONPATH=root)  # scheduler and workers must import fraudlab
    scheduler = subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([str(bin_dir / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
                               "--no-dashboard", "--host", "127.0.0.1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        worker.terminate()
        scheduler.terminate()
        worker.wait(timeout=30)
        scheduler.wait(timeout=30)
