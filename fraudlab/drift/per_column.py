"""Per-column drift rows: the test for each column kind, vanished categories, the drifted decision."""
from __future__ import annotations

from typing import Any

import numpy as np

from fraudlab.drift.columns import ColumnSpec
from fraudlab.drift.grids import Grid
from fraudlab.drift.profile import ReferenceProfile
from fraudlab.drift.settings import (
    ALPHA,
    DISTANCE_THRESHOLD,
    MIN_PERIOD_ROWS,
    MISSING_THRESHOLD,
    OTHER,
    PSI_DRIFT,
    PSI_WARN,
    SMALL_EFFECT,
    SMALL_SAMPLE,
    TOP_K,
    UNSEEN_THRESHOLD,
)
from fraudlab.drift.stats import (
    _js_only,
    benjamini_hochberg,
    categorical_stats,
    mean_std,
    numeric_stats,
    two_proportion_p,
)


def period_stat(spec: ColumnSpec, grid: Grid | None, ref_total: dict, part: dict, ref_std: float,
                 complete: bool) -> float | None:
    """The column's effect statistic for one period against the whole reference (None if too few rows)."""
    if part["n"] < MIN_PERIOD_ROWS or ref_total["n"] == 0:
        return None
    if spec.kind == "numeric":
        return numeric_stats(grid, ref_total, part, ref_std, light=True).get("wasserstein_norm")
    if spec.kind == "categorical":
        return _js_only(ref_total["counts"], part["counts"])
    return None


def column_row(spec: ColumnSpec, profile: ReferenceProfile, ref: dict, cur: dict) -> dict:
    """Window-level statistics of one column (before the multiple-testing correction decides)."""
    grid = profile.grids.get(spec.name)
    row: dict[str, Any] = {"column": spec.name, "source": spec.source, "kind": spec.kind,
                           "ref_rows": int(ref["rows"]), "cur_rows": int(cur["rows"]),
                           "missing_ref": (1 - ref["n"] / ref["rows"]) if ref["rows"] else None,
                           "missing_cur": (1 - cur["n"] / cur["rows"]) if cur["rows"] else None,
                           "test": None, "statistic": None, "threshold": None, "p_value": None, "psi": None,
                           "unseen_rate": None, "detail": ""}
    row["missing_p"] = two_proportion_p(ref["rows"] - ref["n"], ref["rows"], cur["rows"] - cur["n"], cur["rows"])
    small = min(ref["n"], cur["n"]) <= SMALL_SAMPLE
    if spec.kind == "id":
        row["test"], row["status"] = "missing rate only", "ok"
        return row
    if cur["rows"] == 0 or ref["rows"] == 0:
        row["status"] = "empty window"
        return row
    if ref["n"] == 0 and cur["n"] == 0:
        row["status"] = "all null"
        return row
    if ref["n"] == 0 or cur["n"] == 0:
        row["status"] = "all null in " + ("reference" if ref["n"] == 0 else "current")
        row["p_value"], row["effect"] = 0.0, 1.0
        return row
    if spec.kind == "numeric":
        if ref["min"] == ref["max"] == cur["min"] == cur["max"]:
            row["status"], row["detail"] = "constant", f"always {ref['min']:g}"
            return row
        mean, std = mean_std(ref)
        s = numeric_stats(grid, ref, cur, std)
        cmean, _ = mean_std(cur)
        row.update(psi=s["psi"], ks=s["ks"], wasserstein_norm=s["wasserstein_norm"], ref_mean=mean, cur_mean=cmean)
        row["p_value"], row["effect"] = s["ks_p"], s["wasserstein_norm"]
        if small:
            row["test"], row["statistic"], row["threshold"] = "ks", s["ks_p"], ALPHA
        else:
            row["test"], row["statistic"], row["threshold"] = "wasserstein_norm", s["wasserstein_norm"], DISTANCE_THRESHOLD
    else:
        complete = profile.categories.get(spec.name) is None
        if len(ref["counts"]) == 1 and set(cur["counts"]) == set(ref["counts"]):
            row["status"], row["detail"] = "constant", f"always {next(iter(ref['counts']))}"
            return row
        s = categorical_stats(ref["counts"], cur["counts"], complete)
        row.update(psi=s["psi"], jensenshannon=s["jensenshannon"], unseen_rate=s["unseen_rate"])
        row["p_value"], row["effect"] = s["chi2_p"], s["jensenshannon"]
        row["unseen"], row["vanished"] = s["unseen"], s["vanished"]
        if small:
            row["test"], row["statistic"], row["threshold"] = "chi2", s["chi2_p"], ALPHA
        else:
            row["test"], row["statistic"], row["threshold"] = "jensenshannon", s["jensenshannon"], DISTANCE_THRESHOLD
        if not complete:
            row["detail"] = f"high cardinality: top {TOP_K} + {OTHER}"
    row["small_sample"] = small
    row["status"] = None  # decided after the correction
    return row


def vanished(ref_total: dict, cur_entry: dict) -> tuple[list[str], Any]:
    """Common reference categories (>= 1%) absent from the last periods of the current window, and since when.

    The absent stretch must hold at least 20 expected rows of the category, so rare values do not count.
    """
    counts, rows = cur_entry.get("counts") or [], cur_entry.get("rows") or []
    if not ref_total.get("n") or not counts:
        return [], None
    gone, since = [], None
    for key, c in ref_total["counts"].items():
        share = c / ref_total["n"]
        if share < 0.01 or key == OTHER:
            continue
        expected, start = 0.0, None
        for i in range(len(counts) - 1, -1, -1):
            if counts[i].get(key, 0):
                break
            expected += share * (rows[i] or 0)
            start = i
        if start is not None and expected >= 20:
            gone.append(key)
            since = cur_entry["periods"][start] if since is None else min(since, cur_entry["periods"][start])
    return gone, since


def decide(rows: list[dict], chunk_thresholds: dict[str, float], threshold_mode: str) -> None:
    """Benjamini-Hochberg across every p-value of the report, then effect size AND significance decide."""
    pvals = []
    for r in rows:
        pvals.append(r["p_value"] if r.get("status") is None else np.nan)
        pvals.append(r["missing_p"])
    adj = benjamini_hochberg(np.array([np.nan if v is None else v for v in pvals], dtype=float))
    for i, r in enumerate(rows):
        r["p_adj"] = None if np.isnan(adj[2 * i]) else float(adj[2 * i])
        r["missing_p_adj"] = None if np.isnan(adj[2 * i + 1]) else float(adj[2 * i + 1])
        if threshold_mode == "reference_chunks" and r["column"] in chunk_thresholds and not r.get("small_sample"):
            r["threshold"] = max(chunk_thresholds[r["column"]], 0.01)
        if r.get("status") is None:
            significant = r["p_adj"] is not None and r["p_adj"] < ALPHA
            effect = r.get("effect") or 0.0
            psi = r.get("psi") or 0.0
            if r.get("small_sample"):
                drift = significant and effect >= SMALL_EFFECT
            else:
                drift = significant and effect >= r["threshold"]
            if drift:
                r["status"] = "drift"
            elif (significant and (psi >= PSI_WARN or effect >= r["threshold"] / 2)) or psi >= PSI_DRIFT:
                r["status"] = "warning"
            else:
                r["status"] = "ok"
        # missing rate: its own signal (absolute change and significance)
        mr, mc = r.get("missing_ref"), r.get("missing_cur")
        if mr is None or mc is None:
            r["missing_status"] = "ok"
        else:
            moved = abs(mc - mr) >= MISSING_THRESHOLD
            significant = r["missing_p_adj"] is not None and r["missing_p_adj"] < ALPHA
            r["missing_status"] = "drift" if moved and significant else "ok"
        # unseen categories: share of current rows with a category the reference never had
        ur = r.get("unseen_rate")
        r["unseen_status"] = ("drift" if ur is not None and ur >= UNSEEN_THRESHOLD
                              and ur * (r["cur_rows"] or 0) >= 10 else "ok")
        r["drifted"] = (r["status"] in ("drift", "all null in current", "all null in reference")
                        or r["missing_status"] == "drift" or r["unseen_status"] == "drift" or bool(r.get("vanished")))
