"""Canonical columns, column-name detection and presets for common public fraud data layouts."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from fraudlab.errors import MappingError
from fraudlab.workspace import CANONICAL_COLUMNS

REQUIRED = ("ts", "amount")
OPTIONAL_EXTRA = {"label_ts": "TIMESTAMP"}
ALL_TARGETS = tuple(CANONICAL_COLUMNS) + tuple(OPTIONAL_EXTRA)


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column feeds each canonical column, and how to read the time column."""

    columns: dict[str, str] = field(default_factory=dict)
    ts_unit_seconds: float | None = None  # set when ts is a numeric offset (seconds, hours, steps)
    ts_origin: str = "2026-01-01 00:00:00"
    preset: str | None = None

    def with_column(self, target: str, source: str | None) -> "ColumnMapping":
        """A copy with one canonical column remapped (None removes it)."""
        cols = {k: v for k, v in self.columns.items() if k != target}
        if source:
            cols[target] = source
        return replace(self, columns=cols)

    def to_dict(self) -> dict:
        """JSON-friendly form, stored with each ingest."""
        return {"columns": dict(self.columns), "ts_unit_seconds": self.ts_unit_seconds,
                "ts_origin": self.ts_origin, "preset": self.preset}


# Name synonyms, compared after lower-casing and stripping non-alphanumerics.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "transaction_id": ("transactionid", "transid", "transnum", "txid", "txnid", "id", "trxid", "tranid"),
    "ts": ("ts", "timestamp", "transdatetranstime", "datetime", "transactiondatetime", "transactiondate",
           "eventtime", "time", "date", "txtime", "createdat", "trxdate"),
    "amount": ("amount", "amt", "transactionamt", "transactionamount", "value", "txamount", "sum"),
    "customer_id": ("customerid", "customer", "nameorig", "clientid", "userid", "accountid", "account",
                    "cust", "custid", "uid"),
    "card_id": ("cardid", "ccnum", "cardnumber", "card", "pan", "card1"),
    "device_id": ("deviceid", "device", "deviceinfo", "devicefingerprint"),
    "ip": ("ip", "ipaddress", "ipaddr", "clientip"),
    "email": ("email", "emaildomain", "pemaildomain", "mail"),
    "merchant_id": ("merchantid", "merchant", "namedest", "merchantname", "terminalid"),
    "category": ("category", "mcc", "merchantcategory", "productcd", "type"),
    "channel": ("channel", "txchannel", "paymentchannel"),
    "country": ("country", "countrycode", "billingcountry"),
    "currency": ("currency", "ccy", "currencycode"),
    "lat": ("lat", "latitude", "customerlat"),
    "lon": ("lon", "long", "lng", "longitude", "customerlon"),
    "merchant_lat": ("merchantlat", "merchlat"),
    "merchant_lon": ("merchantlon", "merchlong", "merchantlong"),
    "is_fraud": ("isfraud", "fraud", "class", "label", "fraudflag", "target"),
    "label_ts": ("labelts", "labeltime", "chargebackdate", "labeldate"),
}

PRESETS: dict[str, ColumnMapping] = {
    "fraudlab simulator": ColumnMapping(
        columns={c: c for c in ALL_TARGETS}, preset="fraudlab simulator"),
    "card simulator (trans_date_trans_time, cc_num, amt)": ColumnMapping(
        columns={"transaction_id": "trans_num", "ts": "trans_date_trans_time", "amount": "amt",
                 "card_id": "cc_num", "customer_id": "cc_num", "merchant_id": "merchant", "category": "category",
                 "lat": "lat", "lon": "long", "merchant_lat": "merch_lat", "merchant_lon": "merch_long",
                 "is_fraud": "is_fraud"},
        preset="card simulator (trans_date_trans_time, cc_num, amt)"),
    "mobile money (step, nameOrig, isFraud)": ColumnMapping(
        columns={"ts": "step", "amount": "amount", "customer_id": "nameOrig", "merchant_id": "nameDest",
                 "category": "type", "is_fraud": "isFraud"},
        ts_unit_seconds=3600.0, preset="mobile money (step, nameOrig, isFraud)"),
    "anonymised PCA (Time, V1..V28, Amount, Class)": ColumnMapping(
        columns={"ts": "Time", "amount": "Amount", "is_fraud": "Class"},
        ts_unit_seconds=1.0, preset="anonymised PCA (Time, V1..V28, Amount, Class)"),
    "e-commerce (TransactionDT, TransactionAmt, isFraud)": ColumnMapping(
        columns={"transaction_id": "TransactionID", "ts": "TransactionDT", "amount": "TransactionAmt",
                 "card_id": "card1", "email": "P_emaildomain", "category": "ProductCD", "device_id": "DeviceInfo",
                 "is_fraud": "isFraud"},
        ts_unit_seconds=1.0, ts_origin="2017-12-01 00:00:00",
        preset="e-commerce (TransactionDT, TransactionAmt, isFraud)"),
}

# Columns whose names mark them as derived from the label; never used as features.
LABEL_DERIVED = re.compile(r"(fraud|chargeback|scenario|is_?flagged|class$|label)", re.IGNORECASE)


def normalise_name(name: str) -> str:
    """Lower-case a column name and drop everything but letters and digits, for matching."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def detect_mapping(columns: list[str], numeric_columns: set[str] | None = None) -> ColumnMapping:
    """Guess the mapping for a source's columns: a matching preset first, else name synonyms."""
    present = set(columns)
    for preset in PRESETS.values():
        needed = {preset.columns["ts"], preset.columns["amount"]}
        if preset.preset != "fraudlab simulator" and needed <= present:
            cols = {k: v for k, v in preset.columns.items() if v in present}
            return replace(preset, columns=cols)
    by_norm: dict[str, str] = {}
    for col in columns:
        by_norm.setdefault(normalise_name(col), col)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for target in ALL_TARGETS:
        for synonym in (normalise_name(target),) + SYNONYMS.get(target, ()):
            source = by_norm.get(synonym)
            if source is not None and source not in used:
                mapping[target] = source
                used.add(source)
                break
    ts_unit = None
    if numeric_columns and mapping.get("ts") in numeric_columns:
        ts_unit = 1.0
    return ColumnMapping(columns=mapping, ts_unit_seconds=ts_unit)


def check_mapping(mapping: ColumnMapping, columns: list[str]) -> None:
    """Raise MappingError naming what is missing or wrong in a mapping for these source columns."""
    missing = [t for t in REQUIRED if t not in mapping.columns]
    if missing:
        raise MappingError(
            f"no column mapped to required {', '.join(missing)}; source columns are: {', '.join(map(str, columns))}")
    absent = sorted({s for s in mapping.columns.values() if s not in columns})
    if absent:
        raise MappingError(f"mapping names column(s) not in the file: {', '.join(absent)}")
    unknown = sorted(set(mapping.columns) - set(ALL_TARGETS))
    if unknown:
        raise MappingError(f"unknown target column(s): {', '.join(unknown)}")
