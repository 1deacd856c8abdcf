"""Cached reads and charts for the Fraud rings page (keyed on the workspace version)."""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from fraudlab import rings
from ui.state import _workspace_for

RING_COLUMNS = ["ring_id", "ring_score", "size", "shared_identifiers", "fraud_share", "score_mean", "amount",
                "transactions", "active_days", "new_accounts", *rings.PART_COLUMNS]


@st.cache_data(show_spinner="Finding rings…", max_entries=8)
def find(path: str, version: int, hub_threshold: int, min_size: int, kinds: tuple[str, ...],
         merchant_window_hours: float | None = None) -> rings.RingResult:
    return rings.find_rings(_workspace_for(path), hub_threshold, min_size, kinds=kinds,
                            merchant_window_hours=merchant_window_hours)


@st.cache_data(show_spinner=False, max_entries=32)
def members(path: str, version: int, customers: tuple[str, ...]) -> pd.DataFrame:
    return rings.ring_members(_workspace_for(path), list(customers))


@st.cache_data(show_spinner=False, max_entries=32)
def transactions(path: str, version: int, customers: tuple[str, ...]) -> pd.DataFrame:
    return rings.ring_transactions(_workspace_for(path), list(customers))


@st.cache_data(show_spinner=False, max_entries=32)
def case_ids(path: str, version: int, customers: tuple[str, ...], scope: str) -> list[str]:
    return rings.ring_case_ids(_workspace_for(path), list(customers), scope)


def ring_table(result: rings.RingResult) -> pd.DataFrame:
    """The ranked ring list as shown: score, facts, then the score's parts."""
    table = result.rings[[c for c in RING_COLUMNS if c in result.rings.columns]]
    return table.round({c: 3 for c in table.columns if c not in ("amount", "active_days")}).round(
        {"amount": 2, "active_days": 1})


def parts_figure(score: rings.RingScore) -> go.Figure:
    """Horizontal bars of one ring's score parts (0–1), with their weights in the hover."""
    names = list(score.parts)
    fig = go.Figure(go.Bar(x=[score.parts[n] for n in names], y=names, orientation="h",
                           customdata=[score.weights[n] for n in names],
                           hovertemplate="%{y}: %{x:.2f} (weight %{customdata})<extra></extra>"))
    fig.update_layout(title=f"Ring {score.ring_id}: score {score.ring_score:.2f}", xaxis_range=[0, 1],
                      height=280, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def timeline_figure(tx: pd.DataFrame) -> go.Figure:
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
