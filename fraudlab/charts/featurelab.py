"""Feature lab figures: a feature's distribution for fraud vs legitimate rows, and its PR-AUC per month."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from fraudlab.charts import titled


def distribution_figure(distribution: pd.DataFrame) -> go.Figure:
    """Share of fraud and of legitimate rows in each decile bin of the feature (bars side by side)."""
    fig = go.Figure([go.Bar(x=distribution["bin"], y=distribution[col], name=col) for col in ("fraud", "legitimate")])
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="feature value (decile bins)")
    fig.update_yaxes(title_text="share of rows of that kind", tickformat=".0%")
    return titled(fig, "Distribution: fraud vs legitimate")


def per_month_figure(per_month: pd.DataFrame) -> go.Figure:
    """Single-feature PR-AUC and ROC-AUC for each month (the feature alone as a score)."""
    fig = go.Figure([go.Scatter(x=per_month["month"], y=per_month[col], mode="lines+markers", name=label)
                     for col, label in (("pr_auc", "PR-AUC"), ("roc_auc", "ROC-AUC"))])
    fig.update_yaxes(title_text="score alone (0-1)", range=[0, 1.02])
    fig.update_xaxes(title_text="month", type="category")
    return titled(fig, "Quality per month")
