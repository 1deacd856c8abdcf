"""UI helpers for the Load data page: cached reads, the mapping editor and the validation report."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fraudlab import ingest
from fraudlab.charts.data import reason_figure
from fraudlab.data_roots import configured_roots
from fraudlab.ingest import SourcePreview, UploadedPath
from fraudlab.schema import (
    ALL_TARGETS,
    REQUIRED,
    ColumnMapping,
    apply_preset,
    preset_names,
)
from fraudlab.text import markdown_literal
from fraudlab.workspace import Workspace
from ui.cache import read

NONE = "—"
TIME_UNITS: dict[str, float | None] = {
    "dates / times in the column": None,
    "seconds since an origin": 1.0,
    "milliseconds since an origin": 0.001,
    "minutes since an origin": 60.0,
    "hours (steps) since an origin": 3600.0,
    "days since an origin": 86400.0,
}
UNIX_ORIGIN = "1970-01-01 00:00:00"


@st.cache_data(show_spinner=False, max_entries=8)
def preview(source: str | UploadedPath, mtime: float, folders: str) -> SourcePreview:
    """Preview of a path or glob inside the data folders (or of an upload) with the detected mapping (read again
    when the file or the data folders change)."""
    return ingest.preview(source, n=20)


def source_mtime(source: str | UploadedPath) -> float:
    """Modification time of a single allowed file (0 for globs and refused paths), part of the preview cache key."""
    return ingest.source_mtime(source)


def data_folders() -> str:
    """The data folders server paths may be read from, in plain words."""
    return configured_roots().describe()


def saved_upload(upload) -> UploadedPath:
    """Save an upload once per session (keyed by name and size) and return its server copy."""
    key = f"upload:{upload.name}:{upload.size}"
    saved = st.session_state.get(key)
    if not isinstance(saved, UploadedPath) or not saved.exists():
        saved = ingest.save_upload(upload.getvalue(), upload.name)
        st.session_state[key] = saved
    return saved


def mapping_editor(pv: SourcePreview, key: str) -> ColumnMapping:
    """Preset picker, one selectbox per canonical column and the time unit; returns the edited mapping."""
    columns = [str(c) for c in pv.columns["column"]]
    presets = ["detected"] + preset_names()
    preset = st.selectbox("Layout preset", presets, key=f"{key}:preset",
                          help="A preset maps the columns of a common public fraud data layout.")
    base = pv.mapping if preset == "detected" else apply_preset(preset, columns)
    st.caption(f"Detected layout: {pv.mapping.preset or 'by column names and types'}. "
               "Required: " + ", ".join(REQUIRED) + ".")
    options = [NONE] + columns
    chosen: dict[str, str] = {}
    grid = st.columns(4)
    for k, target in enumerate(ALL_TARGETS):
        current = base.columns.get(target)
        index = options.index(current) if current in options else 0
        label = target + (" *" if target in REQUIRED else "")
        value = grid[k % 4].selectbox(label, options, index=index, key=f"{key}:{preset}:{target}")
        if value != NONE:
            chosen[target] = value
    units = list(TIME_UNITS)
    unit_now = next((u for u, s in TIME_UNITS.items() if s == base.ts_unit_seconds), units[0])
    if base.ts_unit_seconds is not None and unit_now == units[0]:
        unit_now = units[1]
    left, right = st.columns(2)
    unit = left.selectbox("Time column holds", units, index=units.index(unit_now), key=f"{key}:{preset}:unit")
    origin = right.text_input("Origin for offsets (UTC)", value=base.ts_origin, key=f"{key}:{preset}:origin",
                              disabled=TIME_UNITS[unit] is None,
                              help=f"Unix time: {UNIX_ORIGIN}")
    return ColumnMapping(columns=chosen, ts_unit_seconds=TIME_UNITS[unit], ts_origin=origin.strip() or base.ts_origin,
                         preset=base.preset if chosen == base.columns else None)


def extra_columns_picker(pv: SourcePreview, mapping: ColumnMapping, key: str) -> list[str]:
    """The user's consent, per column, to add unmapped source columns to the transactions (default: none)."""
    mapped = set(mapping.columns.values())
    unmapped = [str(c) for c in pv.columns["column"] if str(c) not in mapped]
    if not unmapped:
        return []
    st.caption(f"{len(unmapped)} column(s) are not mapped. They are kept aside (in a side table, not used as "
               "features) unless you add them to the transactions here.")
    return st.multiselect("Add these extra columns to the transactions (usable as features)", unmapped,
                          key=f"{key}:keep", help="Each chosen column becomes a column of every transaction; "
                          "numbers can then be used by models, drift checks and the Feature lab.")


def show_preview(pv: SourcePreview) -> None:
    """Sample rows and the source columns with what each reads as and where it is mapped."""
    files = f"{len(pv.files)} files" if len(pv.files) > 1 else pv.files[0]
    st.caption(f"{pv.kind.upper()} · {markdown_literal(files)}")
    st.dataframe(pv.sample.head(10), width="stretch", hide_index=True)
    st.dataframe(pv.columns, width="stretch", hide_index=True)


def show_report(ws: Workspace, row: pd.Series) -> None:
    """The validation report of one load: counts, reasons chart, sample bad rows and the quarantine download."""
    ingest_id = int(row["ingest_id"])
    cols = st.columns(4)
    cols[0].metric("Rows read", f"{int(row['rows_read']):,}")
    cols[1].metric("Loaded", f"{int(row['rows_loaded']):,}")
    cols[2].metric("Quarantined", f"{int(row['rows_quarantined']):,}")
    cols[3].metric("Seconds", f"{float(row['seconds']):.2f}")
    st.caption(f"Ingest {ingest_id} · {markdown_literal(row['source'])} · engine {row['engine']} · "
               f"status {row['status']}")
    if int(row["rows_quarantined"]) == 0:
        st.success("Every row passed validation.")
        return
    key = ("ingest", ingest_id)  # a load's quarantine never changes
    st.plotly_chart(reason_figure(read(ingest.reason_counts, ws, ingest_id, key=key)), width="stretch")
    st.dataframe(read(ingest.quarantine_rows, ws, ingest_id, limit=50, key=key), width="stretch", hide_index=True)
    st.download_button("Download the quarantine (CSV)", read(ingest.quarantine_csv, ws, ingest_id, key=key),
                       f"quarantine_{ingest_id}.csv", "text/csv", key=f"dl:{ingest_id}")
