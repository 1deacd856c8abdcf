"""Operator commands: `serve` runs the UI and the API in one process over the chosen workspace."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from argparse import Namespace
from pathlib import Path

import pytest

from fraudlab.browser import free_port
from fraudlab.cli import build_parser
from fraudlab.cli_ops import serve_command


def test_serve_runs_the_app_over_the_named_workspace(tmp_path):
    args = build_parser().parse_args(["serve", "--workspace", str(tmp_path / "w.duckdb"), "--port", "8600"])
    command, env = serve_command(args)
    assert command[1:4] == ["-m", "streamlit", "run"] and Path(command[4]).name == "app.py"
    assert Path(command[4]).exists()
    assert command[command.index("--server.port") + 1] == "8600"
    assert env["FRAUDLAB_WORKSPACE"] == str((tmp_path / "w.duckdb").resolve())


def test_serve_without_workspace_keeps_the_environment(monkeypatch):
    monkeypatch.setenv("FRAUDLAB_WORKSPACE", "/somewhere/ws.duckdb")
    _, env = serve_command(Namespace(workspace=None, port=8501, address="localhost"))
    assert env["FRAUDLAB_WORKSPACE"] == "/somewhere/ws.duckdb"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.slow
def test_serve_answers_the_ui_and_the_api(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "fraudlab", "serve", "--workspace", str(tmp_path / "w.duckdb"),
                               "--port", str(port), "--address", "127.0.0.1"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, status = time.time() + 60, None
        while time.time() < deadline:
            try:
                status, _ = _get(f"http://127.0.0.1:{port}/_stcore/health")
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200
        code, body = _get(f"http://127.0.0.1:{port}/api/v1/health")
        assert code in (200, 503) and isinstance(json.loads(body), dict)
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert b"serving" in server.stdout.read()
