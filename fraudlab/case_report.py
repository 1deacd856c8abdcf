"""A self-contained HTML report of one case: facts, reasons, decisions and the charts (works offline)."""
from __future__ import annotations

import html

import pandas as pd

from fraudlab.cases import CaseDetail
from fraudlab.charts.cases import history_timeline_figure, waterfall_figure
from fraudlab.privacy import mask_cards, mask_frame

FACTS = ("case_id", "ts", "amount", "score", "scorer", "model_id", "status", "customer_id", "card_id", "merchant_id",
         "category", "channel", "country", "device_id", "ip")


def _table(frame: pd.DataFrame) -> str:
    """An HTML table with every cell escaped (pandas escapes by default; we say so explicitly)."""
    return mask_frame(frame).to_html(index=False, escape=True, border=0, classes="t")


def case_report_html(detail: CaseDetail, contributions: pd.DataFrame | None = None, base_value: float = 0.0) -> str:
    """The case as one HTML file: every data-derived string escaped, card numbers masked, plotly inlined."""
    case = detail.case
    facts = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_show(k, case.get(k)))}</td></tr>"
                    for k in FACTS if k in case.index)
    reasons = detail.reasons if contributions is None else contributions
    reason_items = "".join(f"<li>{html.escape(str(t))}</li>" for t in reasons.get("text", pd.Series(dtype=str)).head(8))
    charts = history_timeline_figure(detail.history).to_html(full_html=False, include_plotlyjs="inline")
    if contributions is not None and len(contributions):
        charts += waterfall_figure(contributions, base_value).to_html(full_html=False, include_plotlyjs=False)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Case {html.escape(str(case['case_id']))}</title>
<style>body{{font-family:sans-serif;margin:2em}} table.t,table.f{{border-collapse:collapse}}
td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}}</style></head><body>
<h1>Case {html.escape(str(case['case_id']))}</h1><table class="f">{facts}</table>
<h2>Reasons</h2><ul>{reason_items}</ul>{charts}
<h2>Decisions</h2>{_table(detail.decisions)}<h2>Linked entities</h2>{_table(detail.linked)}
<h2>Similar decided cases</h2>{_table(detail.similar)}</body></html>"""


def _show(key: str, value) -> str:
    if key == "card_id" and value is not None:
        return str(mask_cards(pd.Series([value])).iloc[0])
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)
