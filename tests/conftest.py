"""Shared fixtures: small simulated data sets and real workspace files built from them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from fraudlab.auth.actors import Actor
from fraudlab.config import DATA_DIR
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.workspace import Workspace, copy_workspace

ROOT = Path(__file__).resolve().parent.parent

SMALL_ROWS = 20_000


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so a fixture's teardown can tell that its test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def no_live_writer_outlives_its_test():
    """A live writer left on a workspace its test closed makes every later test's flush_all() fail: close them."""
    yield
    from fraudlab.api.writer import WRITERS

    for writer in list(WRITERS):
        writer.close()


@pytest.fixture(scope="session", autouse=True)
def data_roots_for_tests(tmp_path_factory):
    """Tests write their input files under pytest's temporary folder: make it a data folder (beside the project's
    `data/`) for the whole session, the app servers it starts included. tests/test_data_roots.py sets its own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAUDLAB_DATA_ROOTS", os.pathsep.join([str(DATA_DIR), str(tmp_path_factory.getbasetemp())]))
        yield


@pytest.fixture(scope="session")
def small_sim():
    """A 20k-row simulation (seed 7) shared by the whole test session; treat as read-only."""
    return simulate(rows=SMALL_ROWS, seed=7, days=60)


@pytest.fixture()
def empty_ws(tmp_path) -> Workspace:
    """A new, empty workspace file in a temporary folder."""
    ws = Workspace(tmp_path / "ws.duckdb")
    yield ws
    ws.close()


@pytest.fixture()
def loaded_ws(tmp_path, small_sim) -> Workspace:
    """A workspace with the small simulation ingested through the real ingest path."""
    ws = Workspace(tmp_path / "ws.duckdb")
    ingest_table(ws, small_sim.transactions, source="simulation seed 7")
    yield ws
    ws.close()


@pytest.fixture()
def workspace_env(tmp_path, monkeypatch):
    """Point FRAUDLAB_WORKSPACE at a temporary file (for AppTest and CLI runs); returns the path."""
    path = tmp_path / "app_ws.duckdb"
    monkeypatch.setenv("FRAUDLAB_WORKSPACE", str(path))
    return path


@pytest.fixture(scope="session")
def ready_workspace_file(tmp_path_factory) -> Path:
    """A workspace file after the app's first start on the bundled sample (built once per test session)."""
    from fraudlab.pipeline import refresh

    path = tmp_path_factory.mktemp("ready") / "workspace.duckdb"
    ws = Workspace(path)
    refresh(ws)
    ws.close()
    return path


@pytest.fixture()
def app_workspace(tmp_path, monkeypatch, ready_workspace_file) -> Path:
    """A private copy of the ready workspace, with FRAUDLAB_WORKSPACE pointing at it (for AppTest and CLI runs)."""
    path = tmp_path / "app_ws.duckdb"
    copy_workspace(ready_workspace_file, path)
    monkeypatch.setenv("FRAUDLAB_WORKSPACE", str(path))
    return path


@pytest.fixture()
def ws(app_workspace) -> Workspace:
    """An open Workspace on a private copy of the ready workspace (features, champion, scores)."""
    workspace = Workspace(app_workspace)
    yield workspace
    workspace.close()


APP_PATH = str(ROOT / "app.py")


@pytest.fixture()
def app_test(app_workspace):
    """Factory for an AppTest of the real app over a private ready workspace: app_test("pages/models.py")."""
    from streamlit.testing.v1 import AppTest

    def open_page(page: str | None = None, timeout: float = 120, query: dict | None = None,
                  actor: Actor | None = None) -> AppTest:
        at = AppTest.from_file(APP_PATH, default_timeout=timeout)
        if actor is not None:  # as after a login: the session holds the proven identity
            at.session_state["fraudlab_actor"] = actor
        for name, value in (query or {}).items():  # as in a shared link: in the URL before the first run
            at.query_params[name] = value
        at.run()
        if page:
            at.switch_page(page)
            at.run()
        return at

    return open_page


def csv_with_bad_rows(path: Path, rows: int, seed: int, prefix: str, unparsable: int, negative: int = 1,
                      bad_time: str | None = None, **simulate_kwargs) -> Path:
    """Write simulated rows with new ids as CSV: the first `unparsable` amounts read '12,5O', the next `negative`
    are negative, and (if given) the row after those has `bad_time` as its time."""
    tx = simulate(rows=rows, seed=seed, **{"days": 30, **simulate_kwargs}).transactions.copy()
    tx["transaction_id"] = prefix + tx["transaction_id"]
    tx["amount"] = tx["amount"].astype(object)
    tx.loc[: unparsable - 1, "amount"] = "12,5O"
    tx.loc[unparsable: unparsable + negative - 1, "amount"] = -7
    if bad_time is not None:
        tx["ts"] = tx["ts"].astype(str)
        tx.loc[unparsable + negative, "ts"] = bad_time
    tx.to_csv(path, index=False)
    return path
