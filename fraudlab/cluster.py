"""Dask clients for the scale-out paths: FRAUDLAB_DASK_SCHEDULER when set, else a local cluster of processes."""
from __future__ import annotations

import os
import sys
import types
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from fraudlab.config import load_config
from fraudlab.errors import FraudlabError

if TYPE_CHECKING:
    import distributed

WORKER_MEMORY = "8GiB"
CONNECT_SECONDS = 30.0


class ClusterError(FraudlabError):
    """The Dask cluster cannot run fraudlab's work; the message says what to start or install."""


@contextmanager
def plain_main() -> Iterator[None]:
    """While starting worker processes, hide the caller's __main__ script from them.

    New worker processes re-import the parent's __main__ (multiprocessing spawn). Under Streamlit (or its AppTest)
    that is the app script, which would open the workspace in every worker; a blank __main__ avoids it.
    """
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None,
                memory_limit: str = WORKER_MEMORY, timeout_s: float = CONNECT_SECONDS) -> Iterator["distributed.Client"]:
    """A distributed Client: on `scheduler` (default FRAUDLAB_DASK_SCHEDULER) or on a new local cluster."""
    from distributed import Client, LocalCluster

    address = scheduler or load_config().dask_scheduler
    if address:
        client = _connect(Client, address, timeout_s)
        try:
            yield client
        finally:
            client.close()
        return
    workers = n_workers or max(1, min(2, os.cpu_count() or 1))
    with plain_main():
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               memory_limit=memory_limit)
    with cluster, Client(cluster) as client:
        yield client


def _fraudlab_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("fraudlab") is not None


def _connect(client_class, address: str, timeout_s: float = CONNECT_SECONDS):
    """A client on a running scheduler with at least one worker able to import fraudlab, or a clear error, fast."""
    try:
        client = client_class(address, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({exc}); start it with "
                           f"`dask scheduler` or unset FRAUDLAB_DASK_SCHEDULER to use a local cluster") from exc
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except TimeoutError as exc:
        client.close()
        raise ClusterError(f"the Dask scheduler at {address} has no worker after {timeout_s:.0f} s: start one on "
                           f"each machine with `dask worker {address}` (fraudlab installed there with "
                           f"`pip install -r requirements.txt`)") from exc
    missing = [w for w, ok in client.run(_fraudlab_importable).items() if not ok]
    if missing:
        client.close()
        raise ClusterError(f"{len(missing)} Dask worker(s) cannot import fraudlab ({', '.join(missing[:3])}): "
                           f"install it on every node with `pip install -r requirements.txt` in the project folder")
    return client


@contextmanager
def given(client) -> Iterator:
    """Use a client the caller already has (same shape as dask_client)."""
    yield client
