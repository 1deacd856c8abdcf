"""Fraud rings page figures: score parts and the ring's timeline (data-derived labels escaped)."""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from fraudlab.rings import RingScore


def parts_figure(score: RingScore) -> go.Figure:
    """Horizontal bars of one ring's score parts (0–1), with their weights in the hover."""
    names = list(score.parts)
    fig = go.Figure(go.Bar(x=[score.parts[n] for n in names], y=names, orientation="h",
                           customdata=[score.weights[n] for n in names],
                           hovertemplate="%{y}: %{x:.2f} (weight %{customdata})<extra></extra>"))
    fig.update_layout(title=f"Ring {score.ring_id}: score {score.ring_score:.2f}", xaxis_range=[0, 1],
                      height=280, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def ring_timeline_figure(tx: pd.DataFrame) -> go.Figure:
    """The ring's transactions over time, one row per member; red = labelled fraud, size = amount."""
    who = tx["customer_id"].astype(str).map(html.escape)
    fraud = tx["is_fraud"].fillna(False).astype(bool)
    fig = go.Figure()
    for flag, colour, name in ((False, "#4c78a8", "not labelled fraud"), (True, "#e45756", "labelled fraud")):
        part = tx[fraud == flag]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["ts"], y=who[fraud == flag], mode="markers", name=name,
            marker=dict(color=colour, size=(6 + part["amount"].clip(lower=0) ** 0.5 / 3).clip(upper=30)),
            customdata=part[["transaction_id", "amount"]].astype(str).map(html.escape).to_numpy(),
            hovertemplate="%{x}<br>%{y}<br>%{customdata[0]} · amount %{customdata[1]}<extra></extra>"))
    fig.update_layout(title="Timeline of the ring's transactions", height=max(260, 28 * who.nunique() + 120),
                      margin=dict(l=10, r=10, t=40, b=10), yaxis_title=None, legend_orientation="h")
    return fig
