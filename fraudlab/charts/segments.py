"""Segments page figures."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from fraudlab.charts import titled


def segment_bars_figure(summary: pd.DataFrame, column: str, title: str, fmt: str = ",.0f") -> go.Figure:
    """One bar per segment for a summary column (customers, fraud rate, losses, alerts…)."""
    fig = go.Figure(go.Bar(x=summary["segment_name"], y=summary[column], marker_color="#47a",
                           text=summary[column], texttemplate=f"%{{text:{fmt}}}", textposition="outside"))
    return titled(fig, title, height=300)


def profile_heatmap_figure(profiles: pd.DataFrame) -> go.Figure:
    """Segments side by side: each feature's median per segment, coloured by how far it sits from the others."""
    data = profiles.set_index("segment_name").drop(columns=["segment_id", "customers"], errors="ignore")
    z = (data - data.mean()) / data.std(ddof=0).replace(0, 1)
    fig = go.Figure(go.Heatmap(z=z.T.values, x=list(data.index), y=list(data.columns), colorscale="RdBu",
                               reversescale=True, zmid=0, text=data.T.round(2).values, texttemplate="%{text}",
                               colorbar={"title": "z"}))
    return titled(fig, "Segment profiles (median customer; colour = relative level)", height=420)


def weekly_trend_figure(weekly: pd.DataFrame, column: str = "fraud_rate") -> go.Figure:
    """A line per segment over weeks."""
    fig = go.Figure()
    for name, part in weekly.groupby("segment_name"):
        fig.add_scatter(x=part["week"], y=part[column], mode="lines+markers", name=str(name))
    return titled(fig, f"Weekly {column.replace('_', ' ')} per segment", height=340)



def drivers_figure(drivers: pd.DataFrame, top: int = 8) -> go.Figure:
    """Horizontal bars of the propensity model's top drivers (mean |SHAP| on held-out customers)."""
    data = drivers.head(top).iloc[::-1]
    fig = go.Figure(go.Bar(x=data["mean_abs_shap"], y=data["feature"].str.replace("_", " "), orientation="h",
                           marker_color="#a45", hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_layout(title="What drives a customer's propensity to turn fraudulent (mean |SHAP|)", height=320,
                      margin=dict(l=10, r=10, t=40, b=10), xaxis_title="mean |SHAP| (log-odds)")
    return fig


def risk_slope_figure(trend: pd.DataFrame) -> go.Figure:
    """One bar per segment: slope of its weekly fraud rate (points per week); rising segments in red."""
    data = trend.iloc[::-1]
    colours = ["#c33" if v > 0 else "#4a7" for v in data["fraud_rate_slope_per_week"]]
    fig = go.Figure(go.Bar(x=data["fraud_rate_slope_per_week"], y=data["segment_name"], orientation="h",
                           marker_color=colours, hovertemplate="%{y}: %{x:+.3%} per week<extra></extra>"))
    fig.update_layout(title="Weekly fraud-rate trend per segment (slope)", height=60 + 40 * len(data),
                      margin=dict(l=10, r=10, t=40, b=10), xaxis_tickformat="+.2%")
    return fig
