"""Plotly figure builders by page (pure: data in, figure out; no queries, no Streamlit).

One module per page: ``overview``, ``models``, ``cases``, ``rings``, ``segments``, ``drift``, ``data``.
"""
from __future__ import annotations

import plotly.graph_objects as go


def titled(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    """Title, height, tight margins and a horizontal legend: the layout every small chart shares."""
    fig.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h"})
    return fig
