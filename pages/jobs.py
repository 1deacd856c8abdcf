"""Jobs: the write jobs the server ran or runs for the command line and API clients, with progress and Cancel."""
import streamlit as st

from fraudlab.auth.permissions import NotAllowed
from fraudlab.jobs_queue import JobRecord, can_cancel, get_job, recent_jobs, runner_for
from ui.auth import me
from ui.cases import csv_bytes, readable
from ui.state import get_workspace

STATUS_WORDS = {"queued": "Queued", "running": "Running", "done": "Done", "failed": "Failed",
               "cancelled": "Cancelled"}
COLUMNS = {"job_id": "Job", "kind": "Kind", "who_label": "Who", "status": "Status", "progress": "Progress",
           "seconds": "Duration (s)", "message": "Message", "submitted_at": "Submitted", "error": "Error"}

ws = get_workspace()
actor = me()
st.title("Jobs")
st.caption("Loads, feature builds, trainings, scorings and drift runs handed to this server by the command line "
           "(`python -m fraudlab ingest|features|train|score|drift` while the app runs) or by API clients. "
           "They run one at a time; pages keep working meanwhile.")


def _cancel(job: JobRecord) -> None:
    try:
        runner_for(ws).cancel(job.job_id, actor)
        st.toast(f"Asked job {job.job_id} to stop.", icon=":material/stop_circle:")
    except NotAllowed as exc:
        st.error(str(exc))


@st.fragment(run_every="3s")
def job_list() -> None:
    jobs = recent_jobs(ws)
    if jobs.empty:
        st.info("No jobs yet. Run `python -m fraudlab drift` (or ingest, features, train, score) while the app is "
                "running and it appears here.", icon=":material/info:")
        return
    for row in jobs[jobs["status"].isin(["running", "queued"])].itertuples():
        job = get_job(ws, int(row.job_id))
        left, right = st.columns([5, 1], vertical_alignment="bottom")
        left.progress(job.progress, text=f"Job {job.job_id} · {job.kind} · {row.who_label} · "
                                         f"{STATUS_WORDS[job.status]} · {job.message}")
        if can_cancel(actor, job):
            right.button("Cancel", key=f"jobs_cancel_{job.job_id}", icon=":material/stop_circle:",
                         on_click=_cancel, args=(job,))
    shown = readable(jobs.assign(status=jobs["status"].map(STATUS_WORDS), seconds=jobs["seconds"].round(1))
                     [list(COLUMNS)].rename(columns=COLUMNS))
    st.dataframe(shown, width="stretch", hide_index=True, key="jobs_table",
                 column_config={"Progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0)})
    st.download_button("Download (CSV)", csv_bytes(shown), "jobs.csv", "text/csv", key="jobs_csv",
                       icon=":material/download:")


job_list()
