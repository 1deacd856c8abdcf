"""Case page figures: the SHAP waterfall and the customer timeline."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go


def waterfall_figure(contributions: pd.DataFrame, base_value: float, top: int = 10) -> go.Figure:
    """How each feature pushed the score from the model's base value, in log-odds (largest first, rest summed)."""
    data = contributions.reindex(contributions["contribution"].abs().sort_values(ascending=False).index)
    shown, rest = data.head(top), data.iloc[top:]
    names = shown["name"] if "name" in shown else shown["feature"]
    labels = [html.escape(f"{name}: {_short(value)}" if value is not None and value == value else f"{name}: missing")
              for name, value in zip(names, shown["value"])]
    values = shown["contribution"].tolist()
    if len(rest):
        labels.append(f"{len(rest)} other features")
        values.append(float(rest["contribution"].sum()))
    total = base_value + float(np.sum(values))
    fig = go.Figure(go.Waterfall(
        orientation="h", measure=["absolute"] + ["relative"] * len(values) + ["total"],
        y=["base value"] + labels + [f"score {1 / (1 + np.exp(-total)):.3f}"], x=[base_value] + values + [total],
        text=[f"{v:+.2f}" for v in [base_value] + values + [total]], textposition="outside",
        increasing={"marker": {"color": "#d33"}}, decreasing={"marker": {"color": "#393"}},
        totals={"marker": {"color": "#47a"}}))
    fig.update_yaxes(autorange="reversed")
    path = np.r_[0.0, base_value, base_value + np.cumsum(values)]
    fig.update_xaxes(range=[path.min() - 2, path.max() + 2])
    fig.update_layout(title="Why this score (exact SHAP, log-odds)", height=120 + 28 * (len(values) + 2),
                      margin={"l": 10, "r": 30, "t": 40, "b": 10}, showlegend=False)
    return fig


def _short(value) -> str:
    """A feature value short enough for an axis label."""
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)[:24]


def history_timeline_figure(history: pd.DataFrame) -> go.Figure:
    """The customer's amounts over time: the case highlighted, first-seen devices and countries marked."""
    fig = go.Figure()
    if history.empty:
        return fig
    normal = history[~history["is_case"].astype(bool)]
    fig.add_scatter(x=normal["ts"], y=normal["amount"], mode="markers+lines", name="payments",
                    line={"color": "#bbb", "width": 1}, marker={"color": "#47a", "size": 6},
                    text=normal["merchant_id"].astype(str), hovertemplate="%{x}<br>%{y:,.2f}<br>%{text}<extra></extra>")
    for flag, symbol, color, name in (("c_new_device", "diamond-open", "#e90", "new device"),
                                      ("c_new_country", "square-open", "#a3c", "new country")):
        if flag in history:
            marked = history[history[flag].fillna(0).astype(float) > 0]
            fig.add_scatter(x=marked["ts"], y=marked["amount"], mode="markers", name=name,
                            marker={"symbol": symbol, "size": 13, "color": color, "line": {"width": 2}})
    case = history[history["is_case"].astype(bool)]
    fig.add_scatter(x=case["ts"], y=case["amount"], mode="markers", name="this case",
                    marker={"symbol": "star", "size": 18, "color": "#d33"})
    fig.update_layout(title="Customer history", height=340, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h"}, yaxis_title="amount")
    return fig
