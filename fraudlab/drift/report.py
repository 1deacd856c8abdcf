"""The drift report: run every check between two windows and reach one verdict."""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from fraudlab.drift.columns import ColumnSpec, left_out_columns, monitored_columns
from fraudlab.drift.grids import Grid
from fraudlab.drift.multivariate import column_weights, multivariate
from fraudlab.drift.per_column import column_row, decide, vanished
from fraudlab.drift.performance import (
    label_drift,
    labels_as_of,
    maturity_days,
    performance_drift,
    prediction_drift,
)
from fraudlab.drift.profile import freeze_profile, reference_profile
from fraudlab.drift.scans import scan_of
from fraudlab.drift.settings import (
    DATASET_SHARE,
    DISTANCE_THRESHOLD,
    RECOMMEND,
)
from fraudlab.drift.stats import empty_entry, mean_std, total_of
from fraudlab.drift.timeline import chunk_thresholds, classify_column, timeline_of
from fraudlab.drift.windows import Window
from fraudlab.errors import FraudlabError
from fraudlab.jobs import Progress
from fraudlab.workspace import Workspace, utcnow


@dataclass
class DriftReport:
    """Everything one drift run found; `columns` is the per-column table, `findings` what to do about it."""

    reference: Window
    current: Window
    period: str
    columns: pd.DataFrame
    findings: pd.DataFrame
    timeline: pd.DataFrame
    distributions: dict[str, dict]
    verdict: dict
    multivariate: dict = field(default_factory=dict)
    prediction: dict = field(default_factory=dict)
    performance: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    run_id: int | None = None
    left_out: dict = field(default_factory=dict)  # column -> why it is never tested (time index, warm-up, ...)

    def drifted(self) -> list[str]:
        """Names of the columns with any drift signal."""
        return self.columns.loc[self.columns["drifted"], "column"].tolist()

    def to_json(self) -> str:
        return json.dumps({
            "reference": self.reference.to_dict(), "current": self.current.to_dict(), "period": self.period,
            "columns": _records(self.columns), "findings": _records(self.findings), "timeline": _records(self.timeline),
            "distributions": self.distributions, "verdict": self.verdict,
            "multivariate": {k: (_records(v) if isinstance(v, pd.DataFrame) else v) for k, v in self.multivariate.items()},
            "prediction": self.prediction,
            "performance": {k: (_records(v) if isinstance(v, pd.DataFrame) else v) for k, v in self.performance.items()},
            "labels": self.labels, "timings": self.timings, "created_at": self.created_at.isoformat(),
            "left_out": self.left_out},
            default=_json_default)

    @classmethod
    def from_json(cls, text: str, run_id: int | None = None) -> "DriftReport":
        d = json.loads(text)

        def frame(records, dates=("period", "week", "since")):
            f = pd.DataFrame(records)
            for c in dates:
                if c in f:
                    f[c] = pd.to_datetime(f[c])
            return f
        mv = dict(d.get("multivariate") or {})
        if "pca" in mv:
            mv["pca"] = frame(mv["pca"])
        perf = dict(d.get("performance") or {})
        if "weeks" in perf:
            perf["weeks"] = frame(perf["weeks"])
        return cls(Window.from_dict(d["reference"]), Window.from_dict(d["current"]), d["period"], frame(d["columns"]),
                   frame(d["findings"]), frame(d["timeline"]), d["distributions"], d["verdict"], mv,
                   d.get("prediction") or {}, perf, d.get("labels") or {}, d.get("timings") or {},
                   datetime.fromisoformat(d["created_at"]), run_id, d.get("left_out") or {})


def _json_default(v):
    if isinstance(v, (datetime, pd.Timestamp)):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, pd.DataFrame):
        return _records(v)
    raise TypeError(f"cannot serialise {type(v)}")


def _records(frame: pd.DataFrame) -> list[dict]:
    """DataFrame rows as JSON-safe dicts: NaN/inf become None, timestamps ISO text."""
    if frame is None or frame.empty:
        return []
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%dT%H:%M:%S")
    out = out.astype(object).where(pd.notna(out), None)
    recs = out.to_dict("records")
    for r in recs:
        for k, v in r.items():
            if isinstance(v, float) and not math.isfinite(v):
                r[k] = None
    return recs


def _distribution(spec: ColumnSpec, grid: Grid | None, ref: dict, cur: dict, top: int = 25) -> dict:
    """Shares per bin (numeric, on the reference grid, tails apart) or per category, for overlaid charts."""
    if spec.kind == "numeric" and ref["n"] and cur["n"]:
        r, c = ref["hist"] / max(ref["hist"].sum(), 1), cur["hist"] / max(cur["hist"].sum(), 1)
        # merge the 100 fine bins into 25 for drawing
        k = 4
        inner_r, inner_c = r[1:-1].reshape(-1, k).sum(axis=1), c[1:-1].reshape(-1, k).sum(axis=1)
        centres = grid.centres().reshape(-1, k).mean(axis=1)
        lo, hi = grid.inverse(np.array([grid.lo, grid.hi]))
        x = [f"< {lo:,.4g}"] + [f"{v:,.4g}" for v in centres] + [f"≥ {hi:,.4g}"]
        return {"kind": "numeric", "x": x, "reference": [r[0], *inner_r, r[-1]], "current": [c[0], *inner_c, c[-1]]}
    if spec.kind == "categorical" and ref["n"] and cur["n"]:
        keys = sorted(set(ref["counts"]) | set(cur["counts"]),
                      key=lambda k: -(ref["counts"].get(k, 0) / ref["n"] + cur["counts"].get(k, 0) / cur["n"]))[:top]
        return {"kind": "categorical", "x": [str(k) + ("" if k in ref["counts"] else " (new)") for k in keys],
                "reference": [ref["counts"].get(k, 0) / ref["n"] for k in keys],
                "current": [cur["counts"].get(k, 0) / cur["n"] for k in keys]}
    return {"kind": spec.kind, "x": ["missing", "present"],
            "reference": [1 - ref["n"] / ref["rows"] if ref["rows"] else 0, ref["n"] / ref["rows"] if ref["rows"] else 0],
            "current": [1 - cur["n"] / cur["rows"] if cur["rows"] else 0, cur["n"] / cur["rows"] if cur["rows"] else 0]}


def _recommend(kind: str, row: dict, weight: float, median_weight: float) -> str:
    if kind == "pipeline break":
        return RECOMMEND["pipeline"]
    strong = (row.get("effect") or 0) >= 2 * (row.get("threshold") or DISTANCE_THRESHOLD)
    if kind == "sudden" or strong or weight > median_weight:
        return RECOMMEND["retrain"]
    return RECOMMEND["watch"]


def run_report(ws: Workspace, reference: Window, current: Window, *, overrides: dict[str, str] | None = None,
               columns: list[str] | None = None, threshold_mode: str = "default", multivariate_checks: bool = True,
               performance_checks: bool = True, as_of: datetime | None = None, seed: int = 42,
               progress: Progress | None = None) -> DriftReport:
    """Compare the current window with the (frozen) reference profile; return the full drift report.

    threshold_mode: 'default' (the common open-source thresholds) or 'reference_chunks' (mean + 3σ of the
    statistic across reference periods). `columns` limits the monitored columns by name.
    """
    progress = progress or (lambda f, m: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    reference_start = reference.start or ws.scalar(f"SELECT min(ts) FROM transactions t WHERE {reference.where('t')[0]}",
                                                   reference.where("t")[1])
    specs = monitored_columns(ws, overrides, reference_start=reference_start, reference_end=reference.end)
    if columns is not None:
        specs = [s for s in specs if s.name in set(columns)]
    if not specs:
        raise FraudlabError("no columns to monitor: the transactions table has no usable columns")
    progress(0.02, "reference profile")
    profile, fresh = reference_profile(ws, reference, specs, progress=lambda f, m: progress(0.02 + 0.3 * f, m))
    timings["reference_profile"] = time.perf_counter() - t0
    t = time.perf_counter()
    progress(0.35, "scanning the current window")
    cur_data = scan_of(ws, current, specs, profile.grids, profile.categories, profile.period)
    timings["current_scan"] = time.perf_counter() - t
    t = time.perf_counter()
    progress(0.55, "tests per column")
    ref_tot, cur_tot, ref_std = {}, {}, {}
    for s in specs:
        rd = profile.data.get(s.name) or empty_entry(s.kind, profile.grids.get(s.name))
        cd = cur_data.get(s.name) or empty_entry(s.kind, profile.grids.get(s.name))
        ref_tot[s.name], cur_tot[s.name] = total_of(rd, s.kind), total_of(cd, s.kind)
        if s.kind == "numeric":
            ref_std[s.name] = mean_std(ref_tot[s.name])[1]
    rows = [column_row(s, profile, ref_tot[s.name], cur_tot[s.name]) for s in specs]
    for s, r in zip(specs, rows):
        if s.kind == "categorical" and s.name in cur_data:
            gone, since = vanished(ref_tot[s.name], cur_data[s.name])
            if gone:
                r["vanished"], r["vanished_since"] = gone, since
    timeline = timeline_of(profile, cur_data, ref_tot, ref_std)
    chunk = chunk_thresholds(timeline)
    decide(rows, chunk, threshold_mode)
    weights, weight_source = column_weights(ws, specs)
    for r in rows:
        r["chunk_threshold"] = chunk.get(r["column"])
        r["importance"] = weights.get(r["column"], 1.0)
    if not timeline.empty:
        timeline["threshold"] = timeline["column"].map(chunk)
        timeline["alert"] = (timeline["window"] == "current") & (timeline["stat"] > timeline["threshold"])
    timings["tests"] = time.perf_counter() - t

    t = time.perf_counter()
    median_w = float(np.median(list(weights.values()))) if weights else 1.0
    findings = []
    for r in rows:
        if not r["drifted"]:
            r["finding"] = ""
            continue
        c = classify_column(r, timeline[timeline["column"] == r["column"]])
        rec = _recommend(c["kind"], r, r["importance"], median_w)
        r["finding"] = c["kind"]
        findings.append({"column": r["column"], "kind": c["kind"], "since": c.get("since"), "what": c["what"],
                         "effect": r.get("effect"), "recommendation": rec})
    multi = multivariate(ws, reference, current, specs, profile.period, seed=seed) if multivariate_checks else {}
    timings["multivariate"] = time.perf_counter() - t
    t = time.perf_counter()
    pred, perf, labels = {}, {}, {}
    if performance_checks:
        progress(0.8, "prediction, label and performance drift")
        as_of = as_of or labels_as_of(ws)
        maturity = maturity_days(ws)
        pred = prediction_drift(ws, reference, current)
        labels = label_drift(ws, reference, current, as_of, maturity)
        perf = performance_drift(ws, reference, current, as_of, maturity)
        if labels.get("drift"):
            mix = [m for m in labels["mix"] if m["drift"]]
            what = "; ".join(f"frauds moved towards {m['column']} = {m['grew']} (+{m['grew_by']:.0%} of frauds)" for m in mix)
            if labels.get("fraud_rate_drift"):
                what = (f"fraud rate {labels['ref_fraud_rate']:.3%} → {labels['cur_fraud_rate']:.3%}; " + what).strip("; ")
            findings.append({"column": "(labels)", "kind": "new fraud pattern", "since": None, "what": what,
                             "effect": max([m["jensenshannon"] for m in mix] or [abs(labels.get("fraud_rate_change", 0))]),
                             "recommendation": RECOMMEND["retrain"]})
        if perf.get("drift"):
            findings.append({"column": "(model)", "kind": "performance drop", "since": None,
                             "what": f"weekly PR-AUC {perf['pr_auc']['reference']:.3f} → {perf['pr_auc']['current']:.3f}, "
                                     f"recall at budget {perf['recall_at_budget']['reference']:.2f} → "
                                     f"{perf['recall_at_budget']['current']:.2f}",
                             "effect": None, "recommendation": RECOMMEND["retrain"]})
        if pred.get("drift"):
            findings.append({"column": "(scores)", "kind": "prediction drift", "since": None,
                             "what": f"alert rate {pred['reference_alert_rate']:.3%} → {pred['current_alert_rate']:.3%}",
                             "effect": pred.get("alert_rate_change"), "recommendation": RECOMMEND["watch"]})
    timings["labels_performance"] = time.perf_counter() - t
    if multi.get("domain_drift"):
        top = ", ".join(f["feature"] for f in multi["separating"][:3])
        findings.append({"column": "(all)", "kind": "multivariate drift", "since": None,
                         "what": f"a classifier tells the windows apart (AUC {multi['domain_auc']:.2f}); most: {top}",
                         "effect": multi["domain_auc"], "recommendation": RECOMMEND["watch"]})
    table = pd.DataFrame(rows)
    keep = ["column", "source", "kind", "test", "statistic", "threshold", "p_value", "p_adj", "psi", "status",
            "missing_ref", "missing_cur", "missing_status", "unseen_rate", "unseen_status", "drifted", "finding",
            "importance", "chunk_threshold", "effect", "ref_rows", "cur_rows", "detail"]
    table = table.reindex(columns=keep)
    dists = {s.name: _distribution(s, profile.grids.get(s.name), ref_tot[s.name], cur_tot[s.name]) for s in specs}
    fcols = ["column", "kind", "since", "what", "effect", "recommendation"]
    findings_df = pd.DataFrame(findings, columns=fcols)
    verdict = _verdict(table, findings_df, weight_source)
    timings["total"] = time.perf_counter() - t0
    progress(1.0, "done")
    if fresh:  # frozen only now: a run that failed half-way leaves nothing behind
        freeze_profile(ws, profile)
    left_out = left_out_columns(ws, reference_start, reference.end)
    if left_out:
        verdict["left_out"] = ("Not tested, as they drift by construction or cover part of the data: " +
                               ", ".join(sorted(left_out)) + ".")
    return DriftReport(reference, current, profile.period, table, findings_df, timeline, dists, verdict, multi,
                       pred, perf, labels, timings, left_out=left_out)


def _verdict(table: pd.DataFrame, findings: pd.DataFrame, weight_source: str) -> dict:
    """Dataset verdict: importance-weighted share of drifted columns and the most urgent recommendation."""
    w = table["importance"].astype(float).fillna(1.0)
    drifted = table["drifted"].astype(bool)
    share = float(w[drifted].sum() / w.sum()) if w.sum() else 0.0
    kinds = set(findings["kind"]) if not findings.empty else set()
    if "pipeline break" in kinds:
        status = "pipeline break"
    elif share >= DATASET_SHARE:
        status = "dataset drift"
    elif kinds & {"new fraud pattern", "performance drop"}:
        status = "concept drift"
    elif drifted.any() or kinds:
        status = "drift in some columns"
    else:
        status = "no drift"
    recs = set(findings["recommendation"]) if not findings.empty else set()
    action = next((RECOMMEND[k] for k in ("pipeline", "retrain", "watch") if RECOMMEND[k] in recs), "nothing to do")
    names = table.loc[drifted, "column"].tolist()
    headline = ("No drift: every monitored column and signal is within its threshold." if status == "no drift" else
                f"{status.capitalize()}: {len(names)} of {len(table)} columns drifted "
                f"({share:.0%} by {weight_source}).")
    return {"status": status, "drifted_columns": names, "n_drifted": len(names), "n_columns": int(len(table)),
            "weighted_share": share, "share": float(drifted.mean()) if len(drifted) else 0.0,
            "weights": weight_source, "headline": headline, "action": action}
