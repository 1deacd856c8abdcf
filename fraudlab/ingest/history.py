"""Reading back what loads did: the ingest history, quarantined rows and their reasons."""
from __future__ import annotations

import pandas as pd

from fraudlab.privacy import csv_safe
from fraudlab.workspace import Workspace


def quarantine_rows(ws: Workspace, ingest_id: int | None = None, limit: int | None = None) -> pd.DataFrame:
    """Quarantined rows with their reasons, newest load first; all loads when ingest_id is None."""
    sql = "SELECT ingest_id, row_number, reason, raw FROM quarantine"
    params: list = []
    if ingest_id is not None:
        sql += " WHERE ingest_id = ?"
        params.append(ingest_id)
    sql += " ORDER BY ingest_id DESC, row_number"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return ws.df(sql, params)


def quarantine_csv(ws: Workspace, ingest_id: int | None = None) -> bytes:
    """The quarantine (one load or all) as CSV bytes for a download button, formula cells neutralised."""
    return csv_safe(quarantine_rows(ws, ingest_id)).to_csv(index=False).encode()


def reason_counts(ws: Workspace, ingest_id: int) -> pd.DataFrame:
    """Quarantined rows of one load per reason kind (text before the first ':'), most common first."""
    return ws.df("""
        SELECT split_part(r, ':', 1) AS reason, count(*) AS rows FROM (
            SELECT unnest(string_split(reason, '; ')) AS r FROM quarantine WHERE ingest_id = ?)
        GROUP BY 1 ORDER BY 2 DESC, 1
    """, [ingest_id])


def ingest_history(ws: Workspace) -> pd.DataFrame:
    """One row per load, newest first."""
    return ws.df("SELECT * FROM ingests ORDER BY ingest_id DESC")
