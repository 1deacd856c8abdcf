"""Overview page figures."""
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
