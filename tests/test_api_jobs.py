"""The job routes beside /api/v1/score, through Starlette's TestClient on a real workspace and its job runner."""
from __future__ import annotations

import time

import pytest
from people import admin
from starlette.applications import Starlette
from starlette.testclient import TestClient

from fraudlab.api import build_routes, create_key
from fraudlab.jobs_queue import get_job, stop_runner

TOKEN = "local-token-for-tests"


def client_for(ws, host: str = "127.0.0.1") -> TestClient:
    """A client calling the API's routes over `ws` from `host`, the server's local token being TOKEN."""
    app = Starlette(routes=build_routes(lambda: ws, server_token=lambda: TOKEN))
    return TestClient(app, client=(host, 50000))


def local(user: str = "olga") -> dict:
    """Headers of the command line's hand-off: the server's token and the local user."""
    return {"Authorization": f"Bearer {TOKEN}", "X-Fraudlab-User": user}


def finished(client: TestClient, job_id: int, headers: dict, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
        if record["status"] in ("done", "failed", "cancelled"):
            return record
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.fixture()
def api_ws(loaded_ws):
    yield loaded_ws
    stop_runner(loaded_ws)


def test_local_token_runs_a_drift_job_as_the_local_user(api_ws):
    client = client_for(api_ws)
    answer = client.post("/api/v1/jobs", json={"kind": "drift", "args": {"no_multivariate": True}}, headers=local())
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["status"] in ("queued", "running") and job["kind"] == "drift"
    record = finished(client, job["job_id"], local())
    assert record["status"] == "done", record["error"]
    assert record["progress"] == 1.0 and record["result"]["lines"][0].startswith("run ")
    stored = get_job(api_ws, job["job_id"])
    assert (stored.who, stored.role, stored.via) == ("olga", "admin", "cli")
    assert api_ws.scalar("SELECT who FROM audit WHERE action = 'drift run'") == "olga"


def test_without_a_key_or_token_jobs_are_refused_with_401(api_ws):
    client = client_for(api_ws)
    assert client.post("/api/v1/jobs", json={"kind": "drift"}).status_code == 401
    assert client.post("/api/v1/jobs", json={"kind": "drift"},
                       headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/v1/jobs/1").status_code == 401


def test_the_local_token_is_refused_from_another_machine(api_ws):
    answer = client_for(api_ws, host="10.1.2.3").post("/api/v1/jobs", json={"kind": "drift"}, headers=local())
    assert answer.status_code == 401 and "token" in answer.json()["error"]["message"]


def test_an_api_key_runs_drift_but_may_not_load_data(api_ws, tmp_path):
    key = create_key(api_ws, "nightly-drift", admin())
    client = client_for(api_ws, host="10.1.2.3")
    headers = {"Authorization": f"Bearer {key}"}
    job = client.post("/api/v1/jobs", json={"kind": "drift", "args": {"no_multivariate": True}}, headers=headers)
    assert job.status_code == 201 and job.json()["who"] == "api:nightly-drift"
    assert finished(client, job.json()["job_id"], headers)["status"] == "done"
    refused = client.post("/api/v1/jobs", json={"kind": "ingest", "args": {"path": str(tmp_path / "x.csv")}},
                          headers=headers)
    assert refused.status_code == 403 and "cannot load data" in refused.json()["error"]["message"]


def test_bad_requests_say_what_to_send(api_ws):
    client = client_for(api_ws)
    unknown = client.post("/api/v1/jobs", json={"kind": "everything"}, headers=local())
    assert unknown.status_code == 400 and "ingest, features, train, score, drift" in unknown.json()["error"]["message"]
    assert client.post("/api/v1/jobs", content=b"[1, 2]", headers=local()).status_code == 400
    no_path = client.post("/api/v1/jobs", json={"kind": "ingest", "args": {}}, headers=local())
    assert no_path.status_code == 400 and "args.path" in no_path.json()["error"]["message"]
    assert client.get("/api/v1/jobs/999", headers=local()).status_code == 404


def test_a_job_is_cancelled_by_its_owner_not_by_an_integration(api_ws, tmp_path):
    key = create_key(api_ws, "other", admin())
    client = client_for(api_ws)
    first = client.post("/api/v1/jobs", json={"kind": "drift"}, headers=local()).json()
    second = client.post("/api/v1/jobs", json={"kind": "drift"}, headers=local()).json()
    refused = client.post(f"/api/v1/jobs/{second['job_id']}/cancel", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 403 and "only its owner or an admin" in refused.json()["error"]["message"]
    cancelled = client.post(f"/api/v1/jobs/{second['job_id']}/cancel", headers=local())
    assert cancelled.status_code == 200
    assert finished(client, second["job_id"], local())["status"] == "cancelled"
    assert finished(client, first["job_id"], local())["status"] in ("done", "cancelled")


def test_an_integration_sees_only_its_own_jobs(api_ws):
    key = create_key(api_ws, "reader", admin())
    client = client_for(api_ws)
    mine = client.post("/api/v1/jobs", json={"kind": "drift", "args": {"no_multivariate": True}}, headers=local())
    assert client.get(f"/api/v1/jobs/{mine.json()['job_id']}", headers={"Authorization": f"Bearer {key}"}
                      ).status_code == 404
    finished(client, mine.json()["job_id"], local())
