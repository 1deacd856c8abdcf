"""Plotly figure builders: data in, figure out (no queries, no Streamlit)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def daily_volume_figure(daily: pd.DataFrame) -> go.Figure:
    """Transactions per day (bars) with the labelled fraud count on a second axis (line)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=daily["day"], y=daily["transactions"], name="transactions", marker_color="#9ab")
    fig.add_scatter(x=daily["day"], y=daily["fraud"], name="labelled fraud", mode="lines",
                    line={"color": "#d33", "width": 2}, secondary_y=True)
    if "alerts" in daily and daily["alerts"].any():
        fig.add_scatter(x=daily["day"], y=daily["alerts"], name="alerts", mode="lines",
                        line={"color": "#e90", "width": 2, "dash": "dot"}, secondary_y=True)
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h"})
    fig.update_yaxes(title_text="transactions", secondary_y=False)
    fig.update_yaxes(title_text="fraud / alerts", secondary_y=True)
    return fig


def _small(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h"})
    return fig


def pr_curve_figure(curves: dict, label: str = "model") -> go.Figure:
    """Precision against recall on the test period."""
    fig = go.Figure(go.Scatter(x=curves["recall"], y=curves["precision"], mode="lines", name=label))
    fig.update_xaxes(title_text="recall", range=[0, 1])
    fig.update_yaxes(title_text="precision", range=[0, 1.02])
    return _small(fig, "Precision–recall (test period)")


def roc_curve_figure(curves: dict, label: str = "model") -> go.Figure:
    """True-positive rate against false-positive rate on the test period, with the chance diagonal."""
    fig = go.Figure(go.Scatter(x=curves["fpr"], y=curves["tpr"], mode="lines", name=label))
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "#aaa"})
    fig.update_xaxes(title_text="false-positive rate")
    fig.update_yaxes(title_text="true-positive rate")
    return _small(fig, "ROC (test period)")


def cost_curve_figure(costs: pd.DataFrame, chosen: float) -> go.Figure:
    """Expected cost (reviews + missed fraud amounts) by threshold, with the chosen threshold marked."""
    fig = go.Figure()
    fig.add_scatter(x=costs["threshold"], y=costs["cost_reviews"], name="reviews", stackgroup="cost")
    fig.add_scatter(x=costs["threshold"], y=costs["cost_missed"], name="missed fraud", stackgroup="cost")
    fig.add_vline(x=chosen, line_dash="dash", line_color="#d33")
    fig.update_xaxes(title_text="threshold (alert at or above)", type="log")
    fig.update_yaxes(title_text="cost")
    return _small(fig, "Expected cost by threshold (test period)")


def importance_figure(importance: pd.DataFrame, top: int = 15) -> go.Figure:
    """Mean absolute SHAP value of the top features (horizontal bars)."""
    data = importance.head(top).iloc[::-1]
    fig = go.Figure(go.Bar(x=data["mean_abs_shap"], y=data["feature"], orientation="h", marker_color="#47a"))
    fig.update_xaxes(title_text="mean |SHAP| (log-odds)")
    return _small(fig, "What drives the score", height=max(300, 22 * len(data) + 80))


def segment_bars_figure(summary: pd.DataFrame, column: str, title: str, fmt: str = ",.0f") -> go.Figure:
    """One bar per segment for a summary column (customers, fraud rate, losses, alerts…)."""
    fig = go.Figure(go.Bar(x=summary["segment_name"], y=summary[column], marker_color="#47a",
                           text=summary[column], texttemplate=f"%{{text:{fmt}}}", textposition="outside"))
    return _small(fig, title, height=300)


def profile_heatmap_figure(profiles: pd.DataFrame) -> go.Figure:
    """Segments side by side: each feature's median per segment, coloured by how far it sits from the others."""
    data = profiles.set_index("segment_name").drop(columns=["segment_id", "customers"], errors="ignore")
    z = (data - data.mean()) / data.std(ddof=0).replace(0, 1)
    fig = go.Figure(go.Heatmap(z=z.T.values, x=list(data.index), y=list(data.columns), colorscale="RdBu",
                               reversescale=True, zmid=0, text=data.T.round(2).values, texttemplate="%{text}",
                               colorbar={"title": "z"}))
    return _small(fig, "Segment profiles (median customer; colour = relative level)", height=420)


def weekly_trend_figure(weekly: pd.DataFrame, column: str = "fraud_rate") -> go.Figure:
    """A line per segment over weeks."""
    fig = go.Figure()
    for name, part in weekly.groupby("segment_name"):
        fig.add_scatter(x=part["week"], y=part[column], mode="lines+markers", name=str(name))
    return _small(fig, f"Weekly {column.replace('_', ' ')} per segment", height=340)
