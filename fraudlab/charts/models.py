"""Models page figures: curves, cost, importance."""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from fraudlab.charts import titled
from fraudlab.names import plain_name


def pr_curve_figure(curves: dict, label: str = "model") -> go.Figure:
    """Precision against recall on the test period."""
    fig = go.Figure(go.Scatter(x=curves["recall"], y=curves["precision"], mode="lines", name=label))
    fig.update_xaxes(title_text="recall", range=[0, 1])
    fig.update_yaxes(title_text="precision", range=[0, 1.02])
    return titled(fig, "Precision–recall (test period)")


def roc_curve_figure(curves: dict, label: str = "model") -> go.Figure:
    """True-positive rate against false-positive rate on the test period, with the chance diagonal."""
    fig = go.Figure(go.Scatter(x=curves["fpr"], y=curves["tpr"], mode="lines", name=label))
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "#aaa"})
    fig.update_xaxes(title_text="false-positive rate")
    fig.update_yaxes(title_text="true-positive rate")
    return titled(fig, "ROC (test period)")


def cost_curve_figure(costs: pd.DataFrame, chosen: float) -> go.Figure:
    """Expected cost (reviews + missed fraud amounts) by threshold, with the chosen threshold marked."""
    fig = go.Figure()
    fig.add_scatter(x=costs["threshold"], y=costs["cost_reviews"], name="reviews", stackgroup="cost")
    fig.add_scatter(x=costs["threshold"], y=costs["cost_missed"], name="missed fraud", stackgroup="cost")
    fig.add_vline(x=chosen, line_dash="dash", line_color="#d33")
    fig.update_xaxes(title_text="threshold (alert at or above)", type="log")
    fig.update_yaxes(title_text="cost")
    return titled(fig, "Expected cost by threshold (test period)")


def importance_figure(importance: pd.DataFrame, top: int = 15) -> go.Figure:
    """Mean absolute SHAP value of the top features (horizontal bars)."""
    data = importance.head(top).iloc[::-1]
    names = [html.escape(plain_name(f)) for f in data["feature"]]
    fig = go.Figure(go.Bar(x=data["mean_abs_shap"], y=names, orientation="h", marker_color="#47a"))
    fig.update_xaxes(title_text="mean |SHAP| (log-odds)")
    return titled(fig, "What drives the score", height=max(300, 22 * len(data) + 80))
