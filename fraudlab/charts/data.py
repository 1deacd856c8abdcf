"""Load data page figures."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def reason_figure(counts: pd.DataFrame) -> go.Figure:
    """Horizontal bar of quarantined rows per reason."""
    fig = px.bar(counts.iloc[::-1], x="rows", y="reason", orientation="h", text="rows")
    fig.update_layout(height=max(200, 40 * len(counts) + 80), margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      title="Quarantined rows per reason", yaxis_title=None)
    return fig
