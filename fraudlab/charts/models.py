"""Models page figures: curves, cost, importance, SHAP beeswarm and dependence."""
from __future__ import annotations

import html

import numpy as np
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


MISSING = -0.1  # colour value of a missing feature value (grey band below "low")
VALUE_COLOURS = [[0.0, "#bbbbbb"], [0.08, "#bbbbbb"], [0.0909, "#1e88e5"], [0.55, "#7c52c8"], [1.0, "#ff0d57"]]
COLOURBAR = {"tickvals": [MISSING, 0, 1], "ticktext": ["missing", "low", "high"], "thickness": 12, "len": 0.6}


def scaled(values: np.ndarray) -> np.ndarray:
    """Values scaled to 0-1 between their 5th and 95th percentiles (clipped); missing values are MISSING."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.full(len(values), MISSING)
    low, high = np.percentile(finite, [5, 95])
    if high <= low:
        low, high = finite.min(), finite.max()
    out = (values - low) / (high - low) if high > low else np.full(len(values), 0.5)
    return np.where(np.isfinite(values), np.clip(out, 0, 1), MISSING)


def _shown(explanation, j: int) -> np.ndarray:
    """What to show for column j's values: the category for a categorical, else the number."""
    display = getattr(explanation, "display_data", None)
    return np.asarray(explanation.data)[:, j] if display is None else np.asarray(display)[:, j]


def _value_text(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "missing"
    return html.escape(f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value))


def _jitter(x: np.ndarray, rng: np.random.Generator, width: float = 0.4) -> np.ndarray:
    """Vertical offsets that grow with how many points share a stretch of the x axis (a beeswarm's shape)."""
    if len(x) < 2 or np.ptp(x) == 0:
        return rng.uniform(-width, width, len(x)) * 0.5
    counts, edges = np.histogram(x, bins=40)
    density = counts[np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(counts) - 1)] / counts.max()
    return rng.uniform(-1, 1, len(x)) * width * np.sqrt(density)


def beeswarm_figure(explanation, top: int = 15, title: str = "How each feature moves the score") -> go.Figure:
    """One row of points per feature (largest mean |SHAP| on top): x its SHAP value, colour its value (5-95%)."""
    values = np.asarray(explanation.values, dtype=float)
    order = np.argsort(-np.abs(values).mean(axis=0), kind="stable")[:top]
    rng = np.random.default_rng(0)
    fig = go.Figure()
    labels = []
    for row, j in enumerate(order[::-1]):  # the strongest feature is drawn last, on the top row
        name = html.escape(str(explanation.feature_names[j]))
        labels.append(name)
        x = values[:, j]
        text = [f"<b>{name}</b><br>value: {_value_text(v)}<br>SHAP: {s:+.3f}" for v, s in zip(_shown(explanation, j), x)]
        fig.add_scattergl(x=x, y=row + _jitter(x, rng), mode="markers", name=name, text=text, showlegend=False,
                          hovertemplate="%{text}<extra></extra>",
                          marker={"size": 4, "opacity": 0.7, "color": scaled(np.asarray(explanation.data)[:, j]),
                                  "colorscale": VALUE_COLOURS, "cmin": MISSING, "cmax": 1,
                                  "showscale": row == len(order) - 1,
                                  "colorbar": {**COLOURBAR, "title": {"text": "feature value"}}})
    fig.add_vline(x=0, line_color="#999", line_width=1)
    fig.update_yaxes(tickvals=list(range(len(labels))), ticktext=labels, range=[-0.6, len(labels) - 0.4],
                     zeroline=False)
    fig.update_xaxes(title_text="SHAP value (log-odds; right raises the risk)")
    return titled(fig, title, height=max(300, 28 * len(labels) + 90))


def dependence_figure(explanation, feature: str, colour_by: str | None = None) -> go.Figure:
    """A feature's value (x) against its SHAP value (y), coloured by another feature's value (5-95% scaled)."""
    names = list(explanation.feature_names)
    j = names.index(feature)
    data = np.asarray(explanation.data, dtype=float)
    x, y = data[:, j], np.asarray(explanation.values, dtype=float)[:, j]
    present = np.isfinite(x)
    name = html.escape(str(feature))
    shown = _shown(explanation, j)
    marker: dict = {"size": 5, "opacity": 0.75, "color": "#47a"}
    text = [f"{name}: {_value_text(v)}<br>SHAP: {s:+.3f}" for v, s in zip(shown, y)]
    if colour_by is not None:
        k = names.index(colour_by)
        other = html.escape(str(colour_by))
        marker = {**marker, "color": scaled(data[:, k])[present], "colorscale": VALUE_COLOURS, "cmin": MISSING,
                  "cmax": 1, "showscale": True, "colorbar": {**COLOURBAR, "title": {"text": other}}}
        text = [f"{t}<br>{other}: {_value_text(v)}" for t, v in zip(text, _shown(explanation, k))]
    fig = go.Figure(go.Scattergl(x=x[present], y=y[present], mode="markers", marker=marker,
                                 text=np.asarray(text, dtype=object)[present].tolist(),
                                 hovertemplate="%{text}<extra></extra>", showlegend=False))
    categories = {int(c): str(v) for c, v in zip(x[present], shown[present]) if isinstance(v, str)}
    if categories:  # a categorical feature: its codes on the axis read as the categories
        fig.update_xaxes(tickvals=sorted(categories), ticktext=[html.escape(categories[c]) for c in sorted(categories)])
    fig.add_hline(y=0, line_color="#999", line_width=1)
    missing = int((~present).sum())
    fig.update_xaxes(title_text=name + (f" ({missing:,} missing values not shown)" if missing else ""))
    fig.update_yaxes(title_text=f"SHAP value of {name} (log-odds)")
    by = f", coloured by {html.escape(str(colour_by))}" if colour_by is not None else ""
    return titled(fig, f"How {name} moves the score{by}", height=380)
