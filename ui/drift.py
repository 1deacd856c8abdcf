"""Cached reads and small widgets for the Drift page (keyed on the workspace version or an immutable run id)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fraudlab import drift
from fraudlab.auth.actors import Actor
from fraudlab.charts.drift import late_share_figure, report_html
from fraudlab.names import plain_name
from fraudlab.workspace import Workspace


def html_of_run(ws: Workspace, run_id: int) -> str:
    """The saved run's self-contained HTML report (read through ui.cache)."""
    return report_html(drift.load_run(ws, run_id))


def column_names(ws: Workspace) -> list[str]:
    """Names of the monitored columns (read through ui.cache)."""
    return [s.name for s in drift.monitored_columns(ws)]


def run_and_save(ws, reference: drift.Window, current: drift.Window, who: Actor, **options) -> int:
    """Run a report with a progress bar, save it in drift_runs and return the run id."""
    bar = st.progress(0.0, text="Drift report: starting")
    rep = drift.run_report(ws, reference, current, progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m),
                           **options)
    run_id = drift.save_run(ws, rep, who=who)
    bar.empty()
    return run_id


def _rows(rep: drift.DriftReport, column: str) -> int:
    """Rows of a window (the largest column count of the report; 0 when unknown)."""
    return int(rep.columns[column].max()) if column in rep.columns and len(rep.columns) else 0


def verdict_box(rep: drift.DriftReport) -> None:
    """The verdict on top: status, headline, recommended action and a few key numbers."""
    v = rep.verdict
    text = f"{v['headline']}  \nRecommended: {v['action']}"
    {"no drift": st.success, "pipeline break": st.error, "dataset drift": st.error}.get(v["status"], st.warning)(text)
    if rep.left_out:
        with st.expander(f"{len(rep.left_out)} columns not tested, and why"):
            st.dataframe(pd.DataFrame({"Column": [plain_name(c) for c in rep.left_out],
                                       "Why": list(rep.left_out.values())}), hide_index=True, width="stretch")
    small = [w for w, n in (("reference", _rows(rep, "ref_rows")), ("current", _rows(rep, "cur_rows"))) if n < 1_000]
    if small:
        st.warning(f"Small sample: the {' and '.join(small)} window{'s' if len(small) > 1 else ''} "
                   f"{'hold' if len(small) > 1 else 'holds'} fewer than 1,000 rows, so rates and shares are rough.")
    cols = st.columns(5)
    cols[0].metric("Drifted columns", f"{v['n_drifted']} / {v['n_columns']}")
    cols[1].metric("Weighted share", f"{v['weighted_share']:.0%}", help=v["weights"])
    auc = rep.multivariate.get("domain_auc")
    cols[2].metric("Domain classifier AUC", "—" if auc is None else f"{auc:.3f}", help="0.5 = windows look alike")
    lab = rep.labels
    if lab.get("ref_fraud_rate") is not None and lab.get("cur_fraud_rate") is not None:
        cols[3].metric("Fraud rate (matured)", f"{lab['cur_fraud_rate']:.3%}",
                       f"{lab['cur_fraud_rate'] - lab['ref_fraud_rate']:+.3%}", delta_color="inverse")
    perf = rep.performance.get("pr_auc")
    if perf:
        cols[4].metric("Weekly PR-AUC", f"{perf['current']:.3f}", f"{perf['current'] - perf['reference']:+.3f}")


def late_arrivals_section(daily: pd.DataFrame) -> None:
    """Late share per event day (chart and the days with late rows), or a note that no late rows were recorded."""
    with st.expander("Late arrivals per day", expanded=False):
        late = daily[(daily["late"] + daily["beyond_horizon"]) > 0] if len(daily) else daily
        if late.empty:
            st.info("No late arrivals recorded: no load has brought rows older than their customer's newest row.",
                    icon=":material/schedule:")
            return
        st.plotly_chart(late_share_figure(daily), width="stretch", key="late_share_chart")
        shown = late.assign(day=late["day"].dt.strftime("%Y-%m-%d"))
        st.dataframe(shown.rename(columns={"day": "Event day", "transactions": "Transactions", "late": "Late rows",
                                           "beyond_horizon": "Beyond the horizon", "late_share": "Late share"}),
                     hide_index=True, width="stretch",
                     column_config={"Late share": st.column_config.NumberColumn(format="percent")})
