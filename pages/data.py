"""Load data: pick a file (upload or server path / glob), check the preview and mapping, load, read the report."""
import hashlib

import streamlit as st

from fraudlab import ingest, pipeline
from fraudlab.errors import FraudlabError
from fraudlab.ingest import ingest_history
from fraudlab.jobs import JobControl
from fraudlab.text import markdown_literal
from ui import data as ui
from ui.auth import allowed, me
from ui.cache import read
from ui.state import get_workspace

ws = get_workspace()
st.title("Load data")
st.caption("CSV (any delimiter, gzip'd or not) or Parquet. Good rows load into the workspace; bad rows go to the "
           "quarantine with their reason, so nothing is lost. Loading the same data twice adds nothing.")

by_path, by_upload = st.tabs(["Server path or glob", "Upload a small file"])
folders = ui.data_folders()
with by_path:
    typed = st.text_input("Path or glob on the server", key="data_source",
                          placeholder="transactions_2026_*.csv.gz")
    st.caption(f"Only files inside the data folders can be read: {markdown_literal(folders)}. A relative path "
               "starts in the first one. The administrator sets them with FRAUDLAB_DATA_ROOTS.")
with by_upload:
    upload = st.file_uploader("CSV, gzip'd CSV or Parquet (up to 200 MB)",
                              key=f"data_upload_{st.session_state.get('upload_round', 0)}")

stopped = st.session_state.pop("data_job", None)
if stopped is not None:  # the last run stopped mid-load (Cancel, or the page was left): say what was kept
    st.warning(str(stopped.error()))

source, label = typed.strip(), typed.strip()
pv = None
if upload is not None:
    try:
        source, label = ui.saved_upload(upload), f"upload: {upload.name}"
    except FraudlabError as exc:
        st.error(str(exc))
        source = ""

if source:
    try:
        pv = ui.preview(source, ui.source_mtime(source), folders)
    except FraudlabError as exc:
        st.error(str(exc))
    if pv is not None:
        st.subheader("Preview")
        ui.show_preview(pv)
        key = "map:" + hashlib.sha1(str(source).encode()).hexdigest()[:10]
        incomplete = not {"ts", "amount"} <= set(pv.mapping.columns)
        with st.expander(f"Column mapping · {pv.mapping.preset or 'detected by names and types'}", expanded=incomplete):
            mapping = ui.mapping_editor(pv, key)
        keep = ui.extra_columns_picker(pv, mapping, key)
        if allowed("load_data", "load data") and st.button("Load", type="primary"):
            job = st.session_state["data_job"] = JobControl("the load")  # capped at FRAUDLAB_JOB_CAP_SECONDS
            st.button("Cancel", key="data_cancel", on_click=job.cancel, args=("was cancelled (Cancel pressed)",),
                      help="Stops the load at its next step; what it was writing is rolled back.")
            bar = st.progress(0.0, text="starting")
            try:
                with job.running():
                    report, steps = pipeline.load(ws, source, mapping, who=me(), source=label,
                                                  keep_columns=keep,
                                                  progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
            except FraudlabError as exc:  # JobCancelled (cancelled, or past the cap) says what was rolled back
                st.session_state.pop("data_job", None)
                bar.empty()
                st.error(str(exc))
            else:
                st.session_state.pop("data_job", None)
                if upload is not None:  # the upload's server copy is not kept once loaded; the picker clears
                    ingest.remove_upload(source)
                    st.session_state.pop(f"upload:{upload.name}:{upload.size}", None)
                    st.session_state["upload_round"] = st.session_state.get("upload_round", 0) + 1
                st.session_state["data_last_ingest"] = report.ingest_id
                st.session_state["data_message"] = report.message
                st.session_state["data_notes"] = list(report.notes) + steps
                st.rerun()
elif upload is None:
    st.info("Type a path or glob on the server (large files), or upload a small file, to see a preview.")

message = st.session_state.pop("data_message", None)
if message:
    st.success(message)
for note in st.session_state.pop("data_notes", []):
    st.info(note)

st.subheader("Validation report")
loads = read(ingest_history, ws)
if loads.empty:
    st.info("Nothing has been loaded yet.")
    st.stop()
ids = loads["ingest_id"].astype(int).tolist()
last = st.session_state.get("data_last_ingest")
chosen = st.selectbox("Load", ids, index=ids.index(last) if last in ids else 0,
                      format_func=lambda i: f"#{i} · {loads.set_index('ingest_id').loc[i, 'source']}")
ui.show_report(ws, loads[loads["ingest_id"] == chosen].iloc[0])

st.subheader("Ingest history")
st.dataframe(loads.drop(columns=["mapping", "sha256"]), width="stretch", hide_index=True)
