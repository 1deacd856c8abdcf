"""Plain names for features and columns: one mapping that pages, reports and CSV exports share.

>>> plain_name("c_cnt_1h"), plain_name("m_fraud_rate_7d"), plain_name("case_id")
('Customer payments, previous hour', "Merchant's known fraud rate, previous 7 days + label delay", 'Case')
>>> plain_name("v12"), plain_name("some_new_thing")
('V12', 'Some new thing')
"""
from __future__ import annotations

import re

import pandas as pd

WINDOWS = {"5m": "5 minutes", "1h": "hour", "24h": "24 hours", "1d": "day", "7d": "7 days", "30d": "30 days"}

COLUMNS = {
    "case_id": "Case", "transaction_id": "Transaction", "ts": "Time", "amount": "Amount", "score": "Score",
    "expected_loss": "Expected loss", "status": "Status", "assignee": "Assigned to", "reason_family": "Leading reason",
    "top_reason": "Top reason feature", "customer_id": "Customer", "card_id": "Card", "device_id": "Device",
    "ip": "IP address", "email": "E-mail", "merchant_id": "Merchant", "category": "Category", "channel": "Channel",
    "country": "Country", "currency": "Currency", "scorer": "Scored by", "model_id": "Model",
    "decided_by": "Decided by", "decided_at": "Decided at", "age_hours": "Age (hours)", "sla_breached": "SLA breached",
    "segment": "Segment", "is_fraud": "Labelled fraud", "label_ts": "Label known at", "lat": "Latitude",
    "lon": "Longitude", "merchant_lat": "Merchant latitude", "merchant_lon": "Merchant longitude",
    "ingest_id": "Load", "alerts": "Alerts", "decision": "Decision", "analyst": "Analyst", "note": "Note",
    "kind": "Kind", "value": "Value", "customers": "Customers", "transactions": "Transactions", "fraud": "Frauds",
    "fraud_rate": "Fraud rate", "fraud_losses": "Fraud losses", "segment_name": "Segment", "segment_id": "Segment id",
    "pr_auc": "PR-AUC", "roc_auc": "ROC-AUC", "created_at": "Created", "train_from": "Trained from",
    "train_to": "Trained to", "data_hash": "Data hash", "precision_at_budget": "Precision at budget",
    "recall_at_budget": "Recall at budget", "alert_threshold": "Alert threshold", "feature": "Feature",
    "contribution": "Contribution (log-odds)", "text": "Reason", "first_ts": "First alert",
    "open_alerts": "Open alerts", "close_reason": "Close reason", "decided_after_sla": "Decided after SLA",
    "median_hours_to_decision": "Median hours to decision", "p90_hours_to_decision": "P90 hours to decision",
    "cases_first_decided": "Cases first decided", "checked_against_labels": "Checked against labels",
    "agreement_with_labels": "Agreement with labels", "alert_id": "Alert", "top_alert": "Riskiest alert",
}

FEATURES = {
    "amount": "Amount", "log_amount": "Amount (log)", "hour": "Hour of day (UTC)", "dow": "Day of week",
    "dist_merchant_km": "Distance to the merchant (km)", "c_hist_cnt": "Customer's earlier payments",
    "c_secs_since_prev": "Time since the customer's previous payment (s)", "c_tenure_s": "Customer's time on book (s)",
    "c_amt_mean": "Customer's usual amount (lifetime)", "c_amt_std": "Spread of the customer's amounts",
    "c_amt_ratio": "Amount against the customer's lifetime mean", "c_amt_z": "Amount in standard deviations",
    "c_new_merchant": "First payment at this merchant", "c_new_device": "First payment from this device",
    "c_new_country": "First payment in this country",
}

_PATTERNS = (
    (r"c_cnt_(\w+)", "Customer payments, previous {w}"),
    (r"c_sum_(\w+)", "Customer spend, previous {w}"),
    (r"c_amt_mean_(\w+)", "Customer's mean amount, previous {w}"),
    (r"c_amt_ratio_(\w+)", "Amount against the customer's mean, previous {w}"),
    (r"dev_customers_(\w+)", "Customers on this device, previous {w}"),
    (r"ip_customers_(\w+)", "Customers on this IP address, previous {w}"),
    (r"card_customers_(\w+)", "Customers on this card, previous {w}"),
    (r"m_cnt_(\w+)", "Merchant payments, previous {w}"),
    (r"m_dcnt_(\w+)", "Merchant payments, previous {w} before the label delay"),
    (r"m_fraud_rate_(\w+)", "Merchant's known fraud rate, previous {w} + label delay"),
    (r"m_fraud_(\w+)", "Merchant's known frauds, previous {w} + label delay"),
)


def plain_name(name: str) -> str:
    """What a person calls a feature or column."""
    if name in FEATURES:
        return FEATURES[name]
    if name in COLUMNS:
        return COLUMNS[name]
    for pattern, text in _PATTERNS:
        m = re.fullmatch(pattern, name)
        if m and m.group(1) in WINDOWS:
            return text.format(w=WINDOWS[m.group(1)])
    if re.fullmatch(r"v\d+", name):
        return name.upper()
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def plain_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with plain column names (for tables shown to people and CSV downloads)."""
    return frame.rename(columns={c: plain_name(str(c)) for c in frame.columns})
