"""Saved drift runs: store, list, load and compare."""
from __future__ import annotations

import json

import pandas as pd

from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.auth.permissions import require
from fraudlab.drift.report import DriftReport
from fraudlab.drift.windows import Window
from fraudlab.errors import FraudlabError
from fraudlab.workspace import Workspace


def save_run(ws: Workspace, report: DriftReport, who: Actor = SYSTEM) -> int:
    """Store a report in drift_runs (results as JSON) and return its run id."""
    require(ws, who, "run_drift")
    with ws.write("drift run", who, {"reference": report.reference.label, "current": report.current.label,
                                     "status": report.verdict["status"]}) as cur:
        run_id = cur.execute("SELECT nextval('drift_run_seq')").fetchone()[0]
        cur.execute("INSERT INTO drift_runs VALUES (?, ?, ?, ?, ?)",
                    [run_id, report.created_at, json.dumps(report.reference.to_dict()),
                     json.dumps(report.current.to_dict()), report.to_json()])
    report.run_id = int(run_id)
    return int(run_id)


def list_runs(ws: Workspace) -> pd.DataFrame:
    """Earlier runs, newest first: id, time, windows, verdict, drifted columns."""
    frame = ws.df("""SELECT run_id, created_at, reference, current,
                            json_extract_string(results, '$.verdict.status') AS status,
                            json_extract_string(results, '$.verdict.headline') AS headline,
                            json_extract(results, '$.verdict.drifted_columns')::VARCHAR AS drifted
                     FROM drift_runs ORDER BY run_id DESC""")
    for c in ("reference", "current"):
        frame[c] = [Window.from_dict(json.loads(v)).label for v in frame[c]]
    return frame


def load_run(ws: Workspace, run_id: int) -> DriftReport:
    """A saved report by id."""
    text = ws.scalar("SELECT results FROM drift_runs WHERE run_id = ?", [int(run_id)])
    if text is None:
        raise FraudlabError(f"no drift run {run_id}")
    return DriftReport.from_json(text, int(run_id))


def compare_runs(ws: Workspace, run_ids: list[int]) -> pd.DataFrame:
    """Status of every column across several saved runs (columns = runs), to see what changed between them."""
    parts = []
    for rid in run_ids:
        rep = load_run(ws, rid)
        col = rep.columns.set_index("column")
        parts.append((col["status"].where(~col["drifted"].astype(bool), col["finding"].replace("", "drift"))
                      .rename(f"run {rid}")))
    return pd.concat(parts, axis=1).reset_index() if parts else pd.DataFrame()
