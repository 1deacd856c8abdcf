"""Drift: what moved between a reference and a current window, since when, and what to do about it."""
import pandas as pd
import streamlit as st

from fraudlab import drift
from fraudlab.charts.drift import (
    column_timeline_figure,
    distribution_figure,
    heatmap_figure,
    pca_figure,
    performance_figure,
)
from fraudlab.errors import FraudlabError
from fraudlab.ingest import ingest_history
from fraudlab.names import plain_name
from fraudlab.text import markdown_literal, p_text
from ui import drift as cached
from ui.auth import allowed, me
from ui.cache import read
from ui.cases import readable
from ui.state import get_workspace

ws = get_workspace()
st.title("Drift")
st.caption("Compares a current window with a frozen reference profile: per-column tests, multivariate checks, "
           "labels and model performance. Runs are saved so they can be compared later.")

if not ws.count("transactions"):
    st.info("No transactions yet: load data on the Load data page, then come back for a drift report.")
    st.stop()

past = read(drift.list_runs, ws)
ref_default, cur_default = read(drift.split_windows, ws)
with st.expander("Windows and options", expanded=past.empty):
    mode = st.radio("Choose windows", ["By dates", "By ingest"], horizontal=True)
    left, right = st.columns(2)
    if mode == "By dates":
        ref_last_day = (pd.Timestamp(ref_default.end) - pd.Timedelta(seconds=1)).date()  # windows end the day before
        ref_dates = left.date_input("Reference window", (ref_default.start.date(), ref_last_day))
        cur_dates = right.date_input("Current window", (cur_default.start.date(), cur_default.end.date()))
        to_window = lambda d: drift.Window.dates(d[0], pd.Timestamp(d[-1]) + pd.Timedelta(days=1))  # noqa: E731
        reference, current = to_window(ref_dates), to_window(cur_dates)
    else:
        loads = read(ingest_history, ws)
        loads = loads[loads["status"] == "ok"]
        label = dict(zip(loads["ingest_id"], loads["source"].astype(str) + " (" + loads["rows_loaded"].astype(str) + " rows)"))
        ids = loads["ingest_id"].tolist()
        ref_ids = left.multiselect("Reference ingests", ids, default=ids[:1], format_func=lambda i: f"{i}: {label[i]}")
        cur_ids = right.multiselect("Current ingests", ids, default=ids[-1:], format_func=lambda i: f"{i}: {label[i]}")
        if not ref_ids or not cur_ids:
            st.warning("Pick at least one ingest for each window.")
            st.stop()
        reference, current = drift.Window.ingests(ref_ids), drift.Window.ingests(cur_ids)
    names = read(cached.column_names, ws)
    o1, o2, o3 = st.columns(3)
    as_cat = o1.multiselect("Treat as categorical", names)
    skip = o2.multiselect("Leave out", names)
    chunks = o3.toggle("Thresholds from reference days (mean + 3σ)")
    multi = o3.toggle("Multivariate checks (domain classifier, PCA)", value=True)
    if allowed("run_drift", "run drift reports") and (st.button("Run drift report", type="primary") or past.empty):
        overrides = {**{c: "categorical" for c in as_cat}, **{c: "skip" for c in skip}}
        try:
            st.session_state["drift_run"] = cached.run_and_save(
                ws, reference, current, me(), overrides=overrides, multivariate_checks=multi,
                threshold_mode="reference_chunks" if chunks else "default")
            st.rerun()
        except FraudlabError as exc:
            st.error(str(exc))
            st.stop()

cached.late_arrivals_section(read(drift.late_share_by_day, ws))

if past.empty:
    st.info("No drift report yet: a data scientist runs the first one here.")
    st.stop()
run_id = st.session_state.get("drift_run") or int(past["run_id"].iloc[0])
if run_id not in set(past["run_id"]):
    run_id = int(past["run_id"].iloc[0])
rep = read(drift.load_run, ws, int(run_id), key=("run", int(run_id)))
st.markdown(f"**Run {run_id}** · reference {markdown_literal(rep.reference.label)} · current "
            f"{markdown_literal(rep.current.label)} · per {rep.period}")
cached.verdict_box(rep)

st.subheader("Findings")
if rep.findings.empty:
    st.caption("Nothing to act on.")
else:
    st.dataframe(readable(rep.findings), width="stretch", hide_index=True,
                 column_config={"Since": st.column_config.DatetimeColumn(format="YYYY-MM-DD"),
                                "Effect": st.column_config.NumberColumn(format="%.3f")})

st.subheader("Columns")
only = st.toggle("Only drifted columns", value=False)
table = rep.columns[rep.columns["drifted"]] if only else rep.columns
num = {plain_name(c): st.column_config.NumberColumn(format="%.3g") for c in
       ("statistic", "threshold", "psi", "missing_ref", "missing_cur", "unseen_rate", "importance")}
shown = table.drop(columns=["p_value", "effect", "chunk_threshold"]).assign(p_adj=table["p_adj"].map(p_text))
st.dataframe(readable(shown), width="stretch", hide_index=True, column_config=num)
st.download_button("Download column table (CSV)", rep.columns.to_csv(index=False), f"drift_run_{run_id}.csv", "text/csv")

st.subheader("Per column")
order = rep.columns.sort_values(["drifted", "importance"], ascending=[False, False])["column"].tolist()
column = st.selectbox("Column", order)
a, b = st.columns(2)
a.plotly_chart(distribution_figure(rep, column), width="stretch")
b.plotly_chart(column_timeline_figure(rep, column), width="stretch")
st.plotly_chart(heatmap_figure(rep), width="stretch")

st.subheader("Multivariate, labels and performance")
m = rep.multivariate
if "domain_auc" in m:
    a, b = st.columns(2)
    a.markdown(f"Domain classifier AUC **{m['domain_auc']:.3f}** on {m['sample_rows'][0]:,} + {m['sample_rows'][1]:,} "
               "sampled rows; what separates the windows most (mean |SHAP|):")
    a.dataframe(pd.DataFrame(m["separating"]), hide_index=True, width="stretch")
    if "pca" in m:
        b.plotly_chart(pca_figure(rep), width="stretch")
if "weeks" in rep.performance:
    st.plotly_chart(performance_figure(rep), width="stretch")
elif rep.performance.get("note"):
    st.caption(rep.performance["note"])
if rep.labels.get("mix"):
    st.markdown("**Where the frauds are: share of labelled frauds by category, channel and country**")
    mix = pd.DataFrame(rep.labels["mix"])
    for col in [c for c in mix.columns if c.startswith("p")]:
        mix[col] = mix[col].map(p_text)
    st.dataframe(readable(mix), hide_index=True, width="stretch")

st.download_button("Download HTML report", read(cached.html_of_run, ws, int(run_id), key=("run", int(run_id))), f"drift_run_{run_id}.html", "text/html",
                   type="primary")

st.subheader("Earlier runs")
st.dataframe(past, width="stretch", hide_index=True)
pick = st.multiselect("Compare runs", past["run_id"].tolist(), default=past["run_id"].tolist()[:2])
if len(pick) >= 2:
    st.dataframe(read(drift.compare_runs, ws, [int(i) for i in pick], key=("runs", tuple(pick))), width="stretch",
                 hide_index=True)
opened = st.selectbox("Open an earlier run", past["run_id"].tolist(), index=None)
if opened is not None and opened != run_id:
    st.session_state["drift_run"] = int(opened)
    st.rerun()
