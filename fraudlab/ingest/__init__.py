"""Ingest: CSV / Parquet files or globs -> validated rows in `transactions`; bad rows -> `quarantine` with a reason.

Modules: ``records`` (reports and limits) → ``files`` (find, inspect, hash) → ``staging`` (files as one DuckDB
relation, profiled) → ``rules`` (the typed values and rejection reasons both engines share) → ``passes`` (the
DuckDB load's two reads of its source: check every row, then write the good ones) → ``load`` (one transaction
into the workspace) ; ``preview`` (no workspace change), ``history`` (reading back), ``dask_engine``
(the same rules on a Dask cluster).
"""
from fraudlab.ingest.files import UploadedPath, inspect_file, resolve_paths, source_mtime
from fraudlab.ingest.history import (
           ingest_history,
           quarantine_csv,
           quarantine_rows,
           reason_counts,
)
from fraudlab.ingest.load import ingest_path, ingest_table
from fraudlab.ingest.preview import detect, preview, remove_upload, save_upload
from fraudlab.ingest.records import IngestReport, SourceFile, SourcePreview

__all__ = ["IngestReport", "SourceFile", "SourcePreview", "UploadedPath", "detect", "ingest_history", "ingest_path",
           "ingest_table", "inspect_file", "preview", "quarantine_csv", "quarantine_rows", "reason_counts", "remove_upload",
           "resolve_paths", "save_upload", "source_mtime"]
