"""Dask clients for the scale-out paths: FRAUDLAB_DASK_SCHEDULER when set, else a local cluster of processes."""
from __future__ import annotations

import os
import sys
import types
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from fraudlab.config import load_config

if TYPE_CHECKING:
    import distributed

WORKER_MEMORY = "8GiB"


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
                memory_limit: str = WORKER_MEMORY) -> Iterator["distributed.Client"]:
    """A distributed Client: on `scheduler` (default FRAUDLAB_DASK_SCHEDULER) or on a new local cluster."""
    from distributed import Client, LocalCluster

    address = scheduler or load_config().dask_scheduler
    if address:
        client = Client(address)
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


@contextmanager
def given(client) -> Iterator:
    """Use a client the caller already has (same shape as dask_client)."""
    yield client
