"""Preview and detection of a file's mapping, with no change to the workspace."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from fraudlab.data_roots import DataRoots
from fraudlab.errors import IngestError
from fraudlab.ingest.files import UPLOAD_PREFIX, UploadedPath, inspect_file, resolve_paths, upload_folder
from fraudlab.ingest.records import MAX_UPLOAD_BYTES, SourcePreview
from fraudlab.ingest.staging import sample_and_detect
from fraudlab.schema import ColumnMapping, ColumnProfile


def save_upload(data: bytes, name: str, folder: str | Path | None = None) -> UploadedPath:
    """Write uploaded bytes to a file (keeping a safe version of its name) and return its path.

    Refuses (IngestError) more than MAX_UPLOAD_BYTES: a larger file belongs in a data folder, loaded by path."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise IngestError(f"{name}: the upload is {len(data) / 2**20:,.0f} MB; at most {MAX_UPLOAD_BYTES >> 20} MB "
                          "can be uploaded. Put a larger file in a data folder and load it by its path")
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX))
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^0-9A-Za-z._-]+", "_", Path(str(name)).name).lstrip(".") or "upload.csv"
    path = UploadedPath(folder / safe)
    path.write_bytes(data)
    return path


def remove_upload(path: str | Path, folder: str | Path | None = None) -> bool:
    """Delete a file written by :func:`save_upload` once it is loaded; refuse (IngestError) any other path.

    Without `folder` the file must sit directly in one of save_upload's own temporary folders (removed with it);
    with `folder` it must lie inside that folder. Returns False when the file was already gone.
    """
    target = Path(path)
    parent = target.parent.resolve()
    if folder is not None:
        inside = parent == Path(folder).resolve() or Path(folder).resolve() in parent.parents
    else:
        inside = upload_folder(target)
    if not inside or target.is_symlink() or (target.exists() and not target.is_file()):
        raise IngestError(f"{path}: not an uploaded file in the upload folder; refused to delete it")
    if not target.exists():
        return False
    target.unlink()
    if folder is None and not any(parent.iterdir()):
        parent.rmdir()
    return True


def _as_path(path_or_upload: Any) -> str | Path:
    if hasattr(path_or_upload, "getvalue"):
        return save_upload(path_or_upload.getvalue(), getattr(path_or_upload, "name", "upload.csv"))
    return path_or_upload


def preview(path_or_upload: Any, n: int = 20, mapping: ColumnMapping | None = None, *,
            roots: DataRoots | None = None) -> SourcePreview:
    """Sample rows, source columns with types and the detected (or given) mapping, without loading anything.

    A path or glob must lie inside the data folders (`roots`, see `resolve_paths`); an upload is read as is."""
    path = _as_path(path_or_upload)
    try:
        return _preview(path, n, mapping, roots)
    finally:
        if path is not path_or_upload:  # a temporary copy of an in-memory upload
            remove_upload(path)


def _preview(path: str | Path, n: int, mapping: ColumnMapping | None, roots: DataRoots | None) -> SourcePreview:
    """The preview of a path or glob on disk."""
    files = [inspect_file(p) for p in resolve_paths(path, roots)][:20]
    con = duckdb.connect()
    try:
        cur = con.cursor()
        staged, profiles, mapping = sample_and_detect(cur, files, mapping)
        sample = cur.execute(f"SELECT * EXCLUDE (__fidx, __row) FROM {staged.sql} LIMIT {int(n)}",
                             staged.params).to_arrow_table().to_pandas()
    finally:
        con.close()
    mapped_to = {v: k for k, v in mapping.columns.items()}
    columns = pd.DataFrame({
        "column": staged.columns,
        "type": [staged.types[c] for c in staged.columns],
        "reads_as": [_reads_as(profiles[c]) for c in staged.columns],
        "filled": [profiles[c].non_null for c in staged.columns],
        "example": [_example(sample, c) for c in staged.columns],
        "mapped_to": [mapped_to.get(c, "") for c in staged.columns],
    })
    return SourcePreview(str(path), [str(f.path) for f in files], files[0].kind, sample, columns, mapping)


def detect(path_or_upload: Any, *, roots: DataRoots | None = None) -> ColumnMapping:
    """The mapping the detector would use for this file or glob."""
    return preview(path_or_upload, n=1, roots=roots).mapping


def _reads_as(profile: ColumnProfile) -> str:
    if profile.non_null == 0:
        return "empty"
    if profile.is_numeric:
        return "number"
    return "time" if profile.is_time else "text"


def _example(sample: pd.DataFrame, col: str) -> str:
    values = sample[col].dropna() if col in sample else []
    return "" if len(values) == 0 else str(values.iloc[0])[:40]
