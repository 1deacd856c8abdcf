"""Exact TreeSHAP contributions and plain-language reason codes.

XGBoost's ``pred_contribs=True`` is exact TreeSHAP (it is what ``shap.TreeExplainer`` hands the work to);
contributions plus the bias add up to the model's margin (log-odds). "Why it was flagged" lists only what raised
the risk, each as a sentence with the customer's or the population's usual value; what lowered it is kept apart
("what speaks against"); a missing value is never evidence either way.
"""
from __future__ import annotations

import json
import math
from typing import Mapping

import numpy as np
import pandas as pd
import xgboost as xgb

from fraudlab.names import plain_name

TOP_REASONS = 5
TOP_AGAINST = 3
CATEGORY_WORDS = {"country": "made in country {}", "category": "merchant category {}", "channel": "{} channel",
                  "currency": "paid in {}"}
WINDOW_WORDS = {"5m": ("5 minutes", 300), "1h": ("hour", 3_600), "24h": ("24 hours", 86_400), "7d": ("7 days", 604_800),
                "1d": ("day", 86_400), "30d": ("30 days", 2_592_000)}


def contributions(booster: xgb.Booster, frame: pd.DataFrame, nthread: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact SHAP values (rows x features) and the bias per row, in log-odds (`nthread` 1 suits a single row)."""
    matrix = xgb.DMatrix(frame, enable_categorical=True, nthread=nthread)
    contribs = booster.predict(matrix, pred_contribs=True)
    return contribs[:, :-1], contribs[:, -1]


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "unknown"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value - round(value)) < 1e-9:
        return f"{int(round(value))}"
    return f"{value:.2f}"


def _usual_count(row: Mapping, seconds: float) -> str:
    """The customer's usual number of payments per window, from their history before this one."""
    hist, tenure = row.get("c_hist_cnt"), row.get("c_tenure_s")
    if hist is None or tenure is None or not np.isfinite(tenure) or tenure <= 0:
        return "no history before"
    return f"usually {hist * seconds / max(tenure, seconds):.1f}"


def reason_text(feature: str, value, row: Mapping) -> str:
    """One sentence an analyst can read for a feature's value, with the customer's own baseline where known."""
    v = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    if feature.startswith("c_cnt_"):
        words, secs = WINDOW_WORDS[feature[6:]]
        return f"{_fmt(v or 0)} payments in the last {words} before this one; {_usual_count(row, secs)}"
    if feature.startswith("c_sum_"):
        words, _ = WINDOW_WORDS[feature[6:]]
        return f"{_fmt(v or 0)} spent in the last {words} before this one"
    if feature in ("amount", "log_amount", "c_amt_ratio", "c_amt_z"):
        mean = row.get("c_amt_mean")
        usual = f"; the customer's usual amount is {_fmt(mean)}" if mean is not None and np.isfinite(mean) else \
            "; first payment of this customer"
        return f"amount {_fmt(row.get('amount'))}{usual}"
    if feature == "c_secs_since_prev":
        return "first payment seen from this customer" if v is None else f"{_fmt(v / 60)} minutes since the previous payment"
    if feature == "c_tenure_s":
        return "a new customer" if v is None else f"customer first seen {_fmt(v / 86_400)} days earlier"
    if feature == "c_hist_cnt":
        return f"{_fmt(v or 0)} earlier payments by this customer"
    if feature.startswith("c_new_"):
        what = feature[6:]
        return f"first time this customer uses this {what}" if v else f"a {what} this customer has used before"
    if "_customers_" in feature:
        kind, _, window = feature.partition("_customers_")
        noun = {"dev": "device", "ip": "IP address", "card": "card"}.get(kind, kind)
        n, words = int(v or 0), WINDOW_WORDS[window][0]
        if n == 0:
            return f"this {noun} was not used in the previous {words}"
        return f"{n} customer{'s' if n != 1 else ''} (this one included) used this {noun} in the previous {words}"
    if feature.startswith("m_fraud_rate_"):
        return f"merchant's known fraud rate over {WINDOW_WORDS[feature[13:]][0]}: {100 * (v or 0):.1f}%"
    if feature.startswith("m_fraud_"):
        return f"{_fmt(v or 0)} known frauds at this merchant in the previous {WINDOW_WORDS[feature[8:]][0]}"
    if feature.startswith("m_cnt_"):
        return f"{_fmt(v or 0)} payments at this merchant in the previous {WINDOW_WORDS[feature[6:]][0]}"
    if feature == "hour":
        return f"made at {int(v or 0):02d}:00 (UTC)"
    if feature == "dow":
        return f"made on {['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][int(v or 1) - 1]}"
    if feature == "dist_merchant_km":
        return f"{_fmt(v)} km between the customer and the merchant"
    if feature in CATEGORY_WORDS:
        return CATEGORY_WORDS[feature].format(v)
    return f"{feature} = {v if isinstance(v, str) else _fmt(v)}"


REASON_COLUMNS = ["feature", "name", "value", "contribution", "direction", "text"]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value)) or value is pd.NA


def _with_usual(text: str, feature: str, value, usual: dict | None) -> str:
    """Append the population's usual value when it says something the sentence does not already say."""
    if not usual or feature not in usual or isinstance(value, str) or "usual" in text:
        return text
    return f"{text} (usually {_fmt(usual[feature])} across payments)"


def reason_frame(features: list[str], values: pd.Series, contribs: np.ndarray, top: int | None = None,
                 usual: dict | None = None) -> pd.DataFrame:
    """Contributions of one row, most risk-raising first, each with its plain name, direction and sentence.

    A feature whose value is missing is listed with direction "missing" (it moves the score, as XGBoost's default
    branch does, but it is not evidence to show an analyst).
    """
    order = np.argsort(-contribs, kind="stable")
    rows = []
    for i in order:
        name = features[i]
        value = values.get(name)
        value = value.item() if hasattr(value, "item") else value
        c = float(contribs[i])
        direction = "missing" if _missing(value) else ("raises" if c > 0 else "lowers" if c < 0 else "none")
        rows.append({"feature": name, "name": plain_name(name), "value": value if isinstance(value, str) else _num(value),
                     "contribution": c, "direction": direction,
                     "text": _with_usual(reason_text(name, value, values), name, value, usual)})
    frame = pd.DataFrame(rows, columns=REASON_COLUMNS)
    return frame.head(top) if top else frame


def raising_reasons(features: list[str] | tuple[str, ...], values: dict, contribs: np.ndarray,
                    top: int = TOP_REASONS, usual: dict | None = None) -> list[dict]:
    """The first `top` risk-raising rows of :func:`reason_frame` (same order, values and sentences), without building
    the whole frame: what a live answer needs for each of many rows."""
    out = []
    for i in np.argsort(-contribs, kind="stable"):
        c = float(contribs[i])
        if c <= 0 or len(out) >= top:
            break
        name = features[i]
        value = values.get(name)
        value = value.item() if hasattr(value, "item") else value
        if _missing(value):
            continue
        out.append({"feature": name, "name": plain_name(name), "value": value if isinstance(value, str) else _num(value),
                    "contribution": c, "text": _with_usual(reason_text(name, value, values), name, value, usual)})
    return out


def _by_sentence(table: pd.DataFrame) -> pd.Series:
    """Net contribution per sentence: features that say the same thing (amount, log amount) count once."""
    present = table[table["direction"].isin(["raises", "lowers"])]
    return present.groupby("text", sort=False)["contribution"].sum()


def flagged_because(table: pd.DataFrame, top: int = TOP_REASONS) -> list[str]:
    """Sentences of what raised the risk, strongest first (never a missing value)."""
    net = _by_sentence(table)
    return net[net > 0].sort_values(ascending=False).head(top).index.tolist()


def speaks_against(table: pd.DataFrame, top: int = TOP_AGAINST) -> list[str]:
    """Sentences of what lowered the risk, strongest first (never a missing value)."""
    net = _by_sentence(table)
    return net[net < 0].sort_values().head(top).index.tolist()


def _num(value):
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None if value is None else str(value)
    return f if math.isfinite(f) else None


def reasons_json(features: list[str], frame: pd.DataFrame, contribs: np.ndarray, top: int = TOP_REASONS,
                 usual: dict | None = None) -> list[str]:
    """Top risk-raising reasons of many rows as JSON text (for the scores table); missing values are skipped."""
    present = frame.reindex(columns=features).notna().to_numpy()
    ranked = np.where(present & (contribs > 0), contribs, -np.inf)
    order = np.argsort(-ranked, axis=1)[:, :top]
    out = []
    records = frame.to_dict("records")
    for r, row in enumerate(records):
        items = []
        for i in order[r]:
            if not np.isfinite(ranked[r, i]):
                break
            name = features[i]
            value = row.get(name)
            items.append({"feature": name, "name": plain_name(name),
                          "value": value if isinstance(value, str) else _num(value),
                          "contribution": round(float(contribs[r, i]), 6),
                          "text": _with_usual(reason_text(name, value, row), name, value, usual)})
        out.append(json.dumps(items))
    return out


def global_importance(features: list[str], contribs: np.ndarray) -> pd.DataFrame:
    """Mean absolute SHAP value per feature, largest first."""
    mean_abs = np.abs(contribs).mean(axis=0)
    return (pd.DataFrame({"feature": features, "mean_abs_shap": mean_abs})
            .sort_values("mean_abs_shap", ascending=False, ignore_index=True))
