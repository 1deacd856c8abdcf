"""Plotly figures for the Segments page that fraudlab.charts does not have (pure: data in, figure out)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go


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
