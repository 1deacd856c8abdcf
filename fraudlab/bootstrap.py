"""First start: an empty workspace is filled from the bundled sample so the app works with no set-up."""
from __future__ import annotations

from typing import Callable

from fraudlab.config import SAMPLE_PATH
from fraudlab.ingest import IngestReport, ingest_path
from fraudlab.workspace import Workspace

Progress = Callable[[float, str], None]


def needs_first_start(ws: Workspace) -> bool:
    """True while the workspace holds no transactions."""
    return ws.count("transactions") == 0


def first_start(ws: Workspace, progress: Progress | None = None) -> list[str]:
    """Load the bundled sample into an empty workspace; return what was done, step by step."""
    progress = progress or (lambda _f, _m: None)
    done: list[str] = []
    if needs_first_start(ws):
        progress(0.05, "loading the bundled sample")
        report: IngestReport = ingest_path(ws, SAMPLE_PATH, progress=lambda f, m: progress(0.05 + 0.3 * f, m))
        done.append(f"loaded sample: {report.message}")
    progress(1.0, "ready")
    return done
