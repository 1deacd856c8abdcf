"""Overview: what the workspace holds and where to go next."""
import streamlit as st

from fraudlab.auth.permissions import can_see
from fraudlab.charts.overview import daily_volume_figure
from fraudlab.model import decision_threshold
from fraudlab.overview import daily_activity, workspace_summary
from ui.auth import me
from ui.cache import read
from ui.state import get_workspace

ws = get_workspace()
info = read(workspace_summary, ws)

st.title("fraudlab")
st.caption("Fraud investigation workbench: triage cases, find rings, watch segments, drift and models.")

if info.rows == 0:
    st.info("The workspace is empty. Load transactions on the **Load data** page.")
    if can_see(me(), "data"):
        st.page_link("pages/data.py", label="Load data", icon=":material/upload_file:")
    st.stop()

cols = st.columns(4)
cols[0].metric("Transactions", f"{info.rows:,}")
cols[1].metric("Customers", f"{info.customers:,}")
cols[2].metric("Labelled fraud rate", "—" if info.fraud_rate is None else f"{info.fraud_rate:.2%}")
cols[3].metric("Rows in quarantine", f"{info.quarantined:,}")


daily = read(daily_activity, ws, read(decision_threshold, ws))
st.subheader("Daily activity")
st.plotly_chart(daily_volume_figure(daily), width="stretch")
c = st.columns(3)
c[0].metric("Alerts at the current threshold", f"{int(daily['alerts'].sum()):,}")
c[1].metric("Labelled fraud losses", f"{daily['fraud_amount'].sum():,.0f}")
c[2].metric("Alerts per day (mean)", f"{daily['alerts'].mean():.1f}")
st.download_button("Download daily activity (CSV)", daily.to_csv(index=False), "daily_activity.csv", "text/csv")

st.subheader("Where to go")
DESTINATIONS = (("queue", "Work the case queue", ":material/inbox:"), ("rings", "Investigate fraud rings", ":material/hub:"),
                ("segments", "Customer segments", ":material/donut_small:"),
                ("drift", "Drift reports", ":material/trending_down:"))
shown = [d for d in DESTINATIONS if can_see(me(), d[0])]  # only pages this role has
for column, (stem, label, icon) in zip(st.columns(len(DESTINATIONS)), shown):
    column.page_link(f"pages/{stem}.py", label=label, icon=icon)
