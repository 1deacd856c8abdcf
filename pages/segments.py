"""Segments: who the customers are, where fraud and losses sit, which segment is turning riskiest."""
import streamlit as st

from fraudlab import pipeline, segments
from fraudlab.charts.segments import (
    drivers_figure,
    profile_heatmap_figure,
    risk_slope_figure,
    segment_bars_figure,
    weekly_trend_figure,
)
from fraudlab.errors import FraudlabError
from fraudlab.features import source_columns
from fraudlab.model import decision_threshold
from ui.auth import allowed, me
from ui.cache import read
from ui.cases import open_case, readable
from ui.state import get_workspace, toast_after_rerun

USABLE_AUC = 0.6

ws = get_workspace()
st.title("Customer segments")
if "customer_id" not in source_columns(ws):
    st.info("Segments need a customer_id column, and this data has none. Map one on the **Load data** page.")
    st.stop()

with st.expander("Re-segment", expanded=not segments.has_segments(ws)):
    auto = st.checkbox("Choose k by silhouette", value=True)
    k = None if auto else st.number_input("Number of segments (k)", 2, 20, 5)
    if allowed("resegment", "segment customers") and (st.button("Segment customers", type="primary")
                                                      or not segments.has_segments(ws)):
        bar = st.progress(0.0, text="starting")
        try:
            report = pipeline.resegment(ws, k=k, who=me(), progress=lambda f, m: bar.progress(f, text=m))
            toast_after_rerun(f"{report.customers:,} customers in {report.k} segments ({report.seconds:.1f} s)")
            st.rerun()
        except FraudlabError as exc:
            st.error(str(exc))
            st.stop()

if skipped := segments.missing_features(ws):
    st.caption("Features skipped for lack of data: " + ", ".join(skipped) + ".")

summary = read(segments.segment_summary, ws, read(decision_threshold, ws))
profiles = read(segments.segment_profiles, ws)
c = st.columns(4)
c[0].metric("Segments", len(summary))
c[1].metric("Customers", f"{int(summary['customers'].sum()):,}")
c[2].metric("Fraud losses", f"{summary['fraud_losses'].sum():,.0f}")
c[3].metric("Alerts", f"{int(summary['alerts'].sum()):,}")

left, right = st.columns(2)
left.plotly_chart(segment_bars_figure(summary, "customers", "Customers per segment"), width="stretch")
right.plotly_chart(segment_bars_figure(summary, "fraud_rate", "Labelled fraud rate", ".2%"), width="stretch")
left.plotly_chart(segment_bars_figure(summary, "fraud_losses", "Fraud losses"), width="stretch")
right.plotly_chart(segment_bars_figure(summary, "alerts", "Alerts (analyst workload)"), width="stretch")
st.plotly_chart(profile_heatmap_figure(profiles), width="stretch")
st.download_button("Download segment profiles (CSV)", profiles.to_csv(index=False), "segment_profiles.csv", "text/csv")
st.dataframe(readable(summary), width="stretch", hide_index=True)
st.download_button("Download segment summary (CSV)", summary.to_csv(index=False), "segments.csv", "text/csv")

st.subheader("Trends: which segment is turning riskiest")
weekly = read(segments.weekly_trend, ws)
trend = segments.risk_trend(weekly)
if not trend.empty:
    worst = trend.iloc[0]
    st.warning(f"**{worst['segment_name']}**: fraud rate rising fastest "
               f"({worst['fraud_rate_slope_per_week']:+.3%} per week; latest week {worst['latest_fraud_rate']:.2%}).")
st.plotly_chart(weekly_trend_figure(weekly), width="stretch")
if not trend.empty:
    st.plotly_chart(risk_slope_figure(trend), width="stretch")
st.dataframe(readable(trend), width="stretch", hide_index=True)
c = st.columns(2)
c[0].download_button("Download weekly trend (CSV)", weekly.to_csv(index=False), "segment_weekly.csv", "text/csv")
c[1].download_button("Download risk trend (CSV)", trend.to_csv(index=False), "segment_risk_trend.csv", "text/csv")

with st.spinner("Training the propensity model…"):
    prop = read(segments.propensity, ws)
st.subheader("Propensity of a customer to turn fraudulent")
if prop.auc is None:
    st.info("Too few customers turned fraudulent after the cut-off to fit a propensity model.")
elif prop.auc < USABLE_AUC:
    st.info(f"No usable signal: customer traits before {prop.cutoff:%Y-%m-%d} predict who turns fraudulent no better "
            f"than chance (held-out AUC {prop.auc:.2f}; 0.5 is a coin toss, {USABLE_AUC} the least worth reading). "
            "Fraud here comes from events (takeovers, rings), not from who the customer is; no drivers are shown.")
else:
    st.caption(f"XGBoost on customer features before {prop.cutoff:%Y-%m-%d}; label: any fraud after it "
               f"({prop.positives:,} of {prop.customers:,} customers). Held-out AUC **{prop.auc:.3f}**.")
    st.plotly_chart(drivers_figure(prop.drivers), width="stretch")
    c = st.columns(2)
    c[0].download_button("Download drivers (CSV)", prop.drivers.to_csv(index=False), "propensity_drivers.csv",
                         "text/csv")
    c[1].download_button("Download customer propensities (CSV)",
                         prop.scores.sort_values("propensity", ascending=False).to_csv(index=False),
                         "customer_propensity.csv", "text/csv")

st.subheader("Drill into a segment")
chosen = st.selectbox("Segment", summary["segment_id"].tolist(),
                      format_func=lambda s: summary.set_index("segment_id").loc[s, "segment_name"])
members = read(segments.segment_members, ws, int(chosen))
picked = st.dataframe(readable(members), width="stretch", hide_index=True, on_select="rerun",
                      selection_mode="single-row")
st.download_button("Download these customers (CSV)", members.to_csv(index=False), "segment_customers.csv", "text/csv")
if picked.selection.rows and st.button("Open this customer's riskiest transaction"):
    open_case(members["top_transaction"].iloc[picked.selection.rows[0]])
