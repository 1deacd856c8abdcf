"""Plotly figures of a drift report and its self-contained HTML export (pure: report in, figure or text out)."""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from fraudlab.drift import DriftReport

REF_COLOR, CUR_COLOR = "#4C78A8", "#F58518"


def _layout(fig: go.Figure, title: str, height: int = 340) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=40, r=20, t=50, b=40), legend=dict(orientation="h"))
    return fig


def distribution_figure(report: DriftReport, column: str) -> go.Figure:
    """Reference and current shares per bin (numeric, on the frozen reference grid) or per category, overlaid."""
    d = report.distributions.get(column) or {"x": [], "reference": [], "current": []}
    fig = go.Figure([go.Bar(x=d["x"], y=d["reference"], name="reference", marker_color=REF_COLOR, opacity=0.65),
                     go.Bar(x=d["x"], y=d["current"], name="current", marker_color=CUR_COLOR, opacity=0.65)])
    fig.update_layout(barmode="overlay", bargap=0.05, yaxis_tickformat=".0%")
    fig.update_xaxes(type="category", title="bin centre (tails apart)" if d.get("kind") == "numeric" else None)
    return _layout(fig, f"{column}: reference vs current")


def column_timeline_figure(report: DriftReport, column: str) -> go.Figure:
    """A column's drift statistic per period (vs the whole reference) with its learned threshold and missing rate."""
    tl = report.timeline[report.timeline["column"] == column].sort_values("period")
    fig = go.Figure()
    for window, color in (("reference", REF_COLOR), ("current", CUR_COLOR)):
        part = tl[tl["window"] == window]
        fig.add_trace(go.Scatter(x=part["period"], y=part["stat"], mode="lines+markers", name=f"drift ({window})",
                                 line=dict(color=color)))
    if "threshold" in tl and tl["threshold"].notna().any():
        fig.add_trace(go.Scatter(x=tl["period"], y=tl["threshold"], mode="lines", name="threshold (ref mean + 3σ)",
                                 line=dict(color="crimson", dash="dash")))
    if tl["missing_rate"].fillna(0).max() > 0:
        fig.add_trace(go.Scatter(x=tl["period"], y=tl["missing_rate"], mode="lines", name="missing rate",
                                 yaxis="y2", line=dict(color="grey", dash="dot")))
        fig.update_layout(yaxis2=dict(overlaying="y", side="right", tickformat=".0%", range=[0, 1]))
    return _layout(fig, f"{column}: drift per {report.period}")


def heatmap_figure(report: DriftReport, columns: list[str] | None = None) -> go.Figure:
    """Drift statistic per column and period relative to its threshold (1 = at threshold)."""
    tl = report.timeline.copy()
    if columns:
        tl = tl[tl["column"].isin(columns)]
    tl = tl[tl["stat"].notna()]
    if tl.empty:
        return _layout(go.Figure(), "no per-period statistics")
    tl["ratio"] = tl["stat"] / tl["threshold"].where(tl["threshold"] > 0)
    grid = tl.pivot_table(index="column", columns="period", values="ratio")
    fig = go.Figure(go.Heatmap(z=grid.values, x=grid.columns, y=grid.index, colorscale="OrRd", zmin=0, zmax=3,
                               colorbar=dict(title="× threshold")))
    return _layout(fig, f"Drift per {report.period} (statistic / threshold)", height=max(300, 22 * len(grid) + 120))


def pca_figure(report: DriftReport) -> go.Figure:
    """PCA reconstruction error per period with the reference mean + 3σ bound."""
    pcs = report.multivariate.get("pca")
    fig = go.Figure()
    if isinstance(pcs, pd.DataFrame) and not pcs.empty:
        for window, color in (("reference", REF_COLOR), ("current", CUR_COLOR)):
            part = pcs[pcs["window"] == window]
            fig.add_trace(go.Scatter(x=part["period"], y=part["error"], mode="lines+markers", name=window,
                                     line=dict(color=color)))
        fig.add_trace(go.Scatter(x=pcs["period"], y=pcs["upper"], mode="lines", name="upper bound",
                                 line=dict(color="crimson", dash="dash")))
    return _layout(fig, "Multivariate: PCA reconstruction error")


def performance_figure(report: DriftReport) -> go.Figure:
    """Weekly PR-AUC and recall at the alert budget on matured labels."""
    weeks = report.performance.get("weeks")
    fig = go.Figure()
    if isinstance(weeks, pd.DataFrame) and not weeks.empty:
        for metric, dash in (("pr_auc", "solid"), ("recall_at_budget", "dot")):
            fig.add_trace(go.Scatter(x=weeks["week"], y=weeks[metric], mode="lines+markers", name=metric,
                                     line=dict(dash=dash)))
    return _layout(fig, "Model performance per week (matured labels)")


def late_share_figure(daily: pd.DataFrame) -> go.Figure:
    """Share of each event day's transactions that arrived late, within and beyond the lateness horizon (stacked
    bars; `daily` as :func:`fraudlab.incremental.late_share_by_day` returns it)."""
    total = daily["transactions"].clip(lower=1)
    fig = go.Figure()
    fig.add_bar(x=daily["day"], y=daily["late"] / total, name="Late, within the horizon", marker_color=REF_COLOR)
    fig.add_bar(x=daily["day"], y=daily["beyond_horizon"] / total, name="Late, beyond the horizon",
                marker_color=CUR_COLOR)
    fig.update_layout(barmode="stack", yaxis=dict(title="Share of the day's transactions", tickformat=".1%"),
                      xaxis_title="Event day")
    return _layout(fig, "Late arrivals per event day", height=280)


def _table_html(frame: pd.DataFrame) -> str:
    """An HTML table with every data-derived string escaped."""
    if frame is None or frame.empty:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                text = "" if pd.isna(v) else f"{v:.4g}"
            elif v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v)):
                text = ""
            else:
                text = str(v)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def report_html(report: DriftReport, max_columns: int = 40) -> str:
    """A self-contained HTML report (plotly.js inlined once, works offline) of the verdict, tables and charts."""
    v = report.verdict
    figs = [heatmap_figure(report)]
    shown = report.columns.sort_values(["drifted", "importance"], ascending=[False, False])["column"].tolist()
    for col in shown[:max_columns]:
        if report.columns.loc[report.columns["column"] == col, "drifted"].any():
            figs += [distribution_figure(report, col), column_timeline_figure(report, col)]
    if "pca" in report.multivariate:
        figs.append(pca_figure(report))
    if "weeks" in report.performance:
        figs.append(performance_figure(report))
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figs)]
    table = report.columns[["column", "source", "kind", "test", "statistic", "threshold", "p_adj", "psi", "status",
                            "missing_ref", "missing_cur", "unseen_rate", "finding", "importance"]]
    multi = report.multivariate
    mv = (f"<p>Domain classifier AUC {multi['domain_auc']:.3f} (3-fold); most separating: "
          f"{html.escape(', '.join(f['feature'] for f in multi['separating'][:5]))}.</p>" if "domain_auc" in multi else "")
    labels = report.labels
    lab = (f"<p>Matured labels: fraud rate {labels['ref_fraud_rate']:.3%} → {labels['cur_fraud_rate']:.3%}.</p>"
           if labels.get("ref_fraud_rate") is not None and labels.get("cur_fraud_rate") is not None else "")
    style = ("body{font-family:sans-serif;margin:24px;max-width:1200px}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ddd;padding:3px 6px}th{background:#f3f3f3}.verdict{font-size:20px;padding:10px;"
             "background:#fff4e5;border-left:6px solid #F58518}")
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>fraudlab drift report</title>
<style>{style}</style></head><body>
<h1>Drift report</h1>
<p>Reference: {html.escape(report.reference.label)} · Current: {html.escape(report.current.label)} ·
created {html.escape(str(report.created_at)[:19])} UTC{f" · run {report.run_id}" if report.run_id else ""}</p>
<div class="verdict"><b>{html.escape(v['status'])}</b> — {html.escape(v['headline'])}<br>
Recommended: {html.escape(v['action'])}</div>
<h2>Findings</h2>{_table_html(report.findings)}
<h2>Columns</h2>{_table_html(table)}
<h2>Multivariate, labels, performance</h2>{mv}{lab}
{''.join(parts)}
</body></html>"""
