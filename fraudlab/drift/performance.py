"""Label-mix, performance and prediction drift, using labels matured by the time asked."""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraudlab.drift.settings import (
    ALPHA,
    FRAUD_RATE_CHANGE,
    LABEL_MIX_GROWTH,
    LABEL_MIX_THRESHOLD,
    PERF_DROP,
)
from fraudlab.drift.stats import categorical_stats, two_proportion_p
from fraudlab.drift.windows import Window
from fraudlab.labels import label_maturity_days, resolved_sql
from fraudlab.workspace import Workspace, quote_ident, utcnow


def labels_as_of(ws: Workspace) -> datetime:
    """What is known now: the newest transaction or label time (never later than the clock)."""
    hi = ws.scalar("SELECT greatest(max(ts), (SELECT max(label_ts) FROM labels)) FROM transactions")
    return min(pd.Timestamp(hi).to_pydatetime(), utcnow()) if hi is not None else utcnow()


def maturity_days(ws: Workspace) -> float:
    """Days until source labels have matured (see :func:`fraudlab.labels.label_maturity_days`)."""
    return label_maturity_days(ws)


def label_drift(ws: Workspace, reference: Window, current: Window, as_of: datetime, maturity_days: float) -> dict:
    """Fraud rate and fraud mix (by category, channel, country) on matured labels: a new pattern shows here."""
    if not ws.scalar("SELECT count(*) FROM labels"):
        return {}
    tcols = set(ws.columns("transactions"))
    groups = [c for c in ("category", "channel", "country") if c in tcols]
    mature = as_of - timedelta(days=maturity_days)
    out: dict[str, Any] = {"as_of": as_of, "matured_before": mature, "mix": []}
    frames = {}
    for name, w in (("reference", reference), ("current", current)):
        where, params = w.where("t")
        gs = ", ".join(f"({quote_ident(g)})" for g in groups) + ", ()" if groups else "()"
        sel = ", ".join(quote_ident(g) for g in groups)
        frames[name] = ws.df(f"""SELECT {sel + ',' if sel else ''} grouping_id({sel or "1"}) AS gid,
                count(*) AS n, count(*) FILTER (WHERE l.label) AS frauds
            FROM transactions t JOIN ({resolved_sql()}) l USING (transaction_id)
            WHERE {where} AND t.ts <= $mature GROUP BY GROUPING SETS ({gs})""", {**params, "as_of": as_of, "mature": mature})
    r_all = frames["reference"][frames["reference"][groups].isna().all(axis=1)] if groups else frames["reference"]
    c_all = frames["current"][frames["current"][groups].isna().all(axis=1)] if groups else frames["current"]
    rn, rf = (int(r_all["n"].sum()), int(r_all["frauds"].sum()))
    cn, cf = (int(c_all["n"].sum()), int(c_all["frauds"].sum()))
    out.update(ref_labelled=rn, ref_frauds=rf, cur_labelled=cn, cur_frauds=cf,
               ref_fraud_rate=rf / rn if rn else None, cur_fraud_rate=cf / cn if cn else None)
    if rn and cn and rf and cf:
        p = two_proportion_p(rf, rn, cf, cn)
        change = (cf / cn) / (rf / rn) - 1
        out.update(fraud_rate_change=change, fraud_rate_p=p,
                   fraud_rate_drift=bool(p < ALPHA and abs(change) >= FRAUD_RATE_CHANGE))
        for g in groups:
            rr = frames["reference"].dropna(subset=[g]).set_index(g)["frauds"]
            cc = frames["current"].dropna(subset=[g]).set_index(g)["frauds"]
            s = categorical_stats(rr.to_dict(), cc.to_dict(), True)
            if not s:
                continue
            rshare, cshare = rr / max(rr.sum(), 1), cc / max(cc.sum(), 1)
            moved = (cshare.reindex(cshare.index.union(rshare.index), fill_value=0)
                     - rshare.reindex(cshare.index.union(rshare.index), fill_value=0)).sort_values(ascending=False)
            out["mix"].append({"column": g, "jensenshannon": s["jensenshannon"], "chi2_p": s["chi2_p"],
                               "drift": bool(s["jensenshannon"] >= LABEL_MIX_THRESHOLD and s["chi2_p"] < ALPHA
                                             and len(moved) and moved.iloc[0] >= LABEL_MIX_GROWTH),
                               "grew": str(moved.index[0]) if len(moved) else None,
                               "grew_by": float(moved.iloc[0]) if len(moved) else None})
    out["drift"] = bool(out.get("fraud_rate_drift") or any(m["drift"] for m in out["mix"]))
    return out


def performance_drift(ws: Workspace, reference: Window, current: Window, as_of: datetime,
                      maturity_days: float) -> dict:
    """Weekly PR-AUC and recall at the daily alert budget on scored rows with matured labels (SQL ranks)."""
    if not (ws.has_table("scores") and ws.scalar("SELECT count(*) FROM scores") and ws.scalar("SELECT count(*) FROM labels")):
        return {}
    try:
        from fraudlab.model import ALERT_BUDGET_PER_DAY as budget
    except Exception:
        budget = 20
    mature = as_of - timedelta(days=maturity_days)
    frames = []
    for name, w in (("reference", reference), ("current", current)):
        where, params = w.where("t")
        frames.append(ws.df(f"""
            WITH x AS (
              SELECT date_trunc('week', t.ts) AS week, date_trunc('day', t.ts) AS day, s.score, l.label
              FROM transactions t JOIN scores s USING (transaction_id) JOIN ({resolved_sql()}) l USING (transaction_id)
              WHERE {where} AND t.ts <= $mature),
            d AS (SELECT week, count(DISTINCT day) AS days FROM x GROUP BY week),
            r AS (SELECT week, label,
                    row_number() OVER (PARTITION BY week ORDER BY score DESC) AS rk,
                    sum(label::INT) OVER (PARTITION BY week ORDER BY score DESC ROWS UNBOUNDED PRECEDING) AS tp
                  FROM x)
            SELECT r.week, count(*) AS rows, count(*) FILTER (WHERE label) AS frauds,
                   avg(tp / rk) FILTER (WHERE label) AS pr_auc,
                   count(*) FILTER (WHERE label AND rk <= d.days * {int(budget)}) AS caught,
                   any_value(d.days) * {int(budget)} AS alerts
            FROM r JOIN d USING (week) GROUP BY r.week ORDER BY r.week""",
                            {**params, "as_of": as_of, "mature": mature}).assign(window=name))
    weeks = pd.concat(frames, ignore_index=True)
    if weeks.empty:
        return {"note": "no scored rows with matured labels in these windows"}
    weeks["recall_at_budget"] = weeks["caught"] / weeks["frauds"].where(weeks["frauds"] > 0)
    ok = weeks[weeks["frauds"] >= 5]
    ref, cur = ok[ok["window"] == "reference"], ok[ok["window"] == "current"]
    out: dict[str, Any] = {"weeks": weeks, "budget_per_day": int(budget), "matured_before": mature}
    if len(ref) and len(cur):
        for metric in ("pr_auc", "recall_at_budget"):
            rm = float(np.average(ref[metric], weights=ref["frauds"]))
            cm = float(np.average(cur[metric], weights=cur["frauds"]))
            sd = float(ref[metric].std(ddof=1)) if len(ref) > 2 else 0.0
            out[metric] = {"reference": rm, "current": cm,
                           "drift": bool(cm < rm - max(3 * sd / math.sqrt(len(cur)), PERF_DROP * rm))}
        out["drift"] = bool(out["pr_auc"]["drift"] or out["recall_at_budget"]["drift"])
    else:
        out["note"] = "too few matured frauds per week in one of the windows"
    return out


def prediction_drift(ws: Workspace, reference: Window, current: Window) -> dict:
    """Alert rate at the champion's threshold in both windows (the score distribution is a monitored column)."""
    if not (ws.has_table("scores") and ws.scalar("SELECT count(*) FROM scores")):
        return {}
    try:
        from fraudlab.model import decision_threshold
        threshold = decision_threshold(ws)
    except Exception:
        threshold = 0.5
    out = {"threshold": threshold}
    for name, w in (("reference", reference), ("current", current)):
        where, params = w.where("t")
        n, a = ws.arrow(f"SELECT count(*) AS n, count(*) FILTER (WHERE s.score >= $th) AS a FROM transactions t "
                        f"JOIN scores s USING (transaction_id) WHERE {where}", {**params, "th": threshold}).to_pylist()[0].values()
        out[f"{name}_rows"], out[f"{name}_alert_rate"] = n, (a / n if n else None)
    rr, cr = out.get("reference_alert_rate"), out.get("current_alert_rate")
    if rr is not None and cr is not None and out["reference_rows"] and out["current_rows"]:
        p = two_proportion_p(rr * out["reference_rows"], out["reference_rows"], cr * out["current_rows"], out["current_rows"])
        change = (cr / rr - 1) if rr else (float("inf") if cr else 0.0)
        out.update(alert_rate_change=change, alert_rate_p=p, drift=bool(p < ALPHA and abs(change) >= 0.5))
    return out
