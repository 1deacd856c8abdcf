"""Canonical columns, column-mapping detection (by name and type) and presets for common public fraud layouts.

>>> m = detect_mapping(["trans_date_trans_time", "cc_num", "amt", "is_fraud"])
>>> m.preset, m.columns["amount"], m.columns["card_id"]
('card simulator (trans_date_trans_time, cc_num, amt)', 'amt', 'cc_num')
>>> detect_mapping(["Txn Time", "AMOUNT ", "Customer"]).columns
{'ts': 'Txn Time', 'amount': 'AMOUNT ', 'customer_id': 'Customer'}
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from fraudlab.errors import MappingError
from fraudlab.workspace import CANONICAL_COLUMNS

REQUIRED = ("ts", "amount")
OPTIONAL_EXTRA = {"label_ts": "TIMESTAMP"}
ALL_TARGETS = tuple(CANONICAL_COLUMNS) + tuple(OPTIONAL_EXTRA)
DEFAULT_ORIGIN = "2026-01-01 00:00:00"
EPOCH = "1970-01-01 00:00:00"


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column feeds each canonical column, and how to read the time column."""

    columns: dict[str, str] = field(default_factory=dict)
    ts_unit_seconds: float | None = None  # set when ts is a numeric offset (seconds, hours, steps)
    ts_origin: str = DEFAULT_ORIGIN
    preset: str | None = None

    def with_column(self, target: str, source: str | None) -> "ColumnMapping":
        """A copy with one canonical column remapped (None removes it)."""
        if target not in ALL_TARGETS:
            raise MappingError(f"unknown target column {target!r}; choose one of: {', '.join(ALL_TARGETS)}")
        cols = {k: v for k, v in self.columns.items() if k != target}
        if source:
            cols[target] = source
        return replace(self, columns=cols)

    def with_time(self, unit_seconds: float | None, origin: str | None = None) -> "ColumnMapping":
        """A copy reading ts as an offset of `unit_seconds` from `origin` (None: ts holds dates/times)."""
        return replace(self, ts_unit_seconds=unit_seconds, ts_origin=origin or self.ts_origin)

    def to_dict(self) -> dict:
        """JSON-friendly form, stored with each ingest."""
        return {"columns": dict(self.columns), "ts_unit_seconds": self.ts_unit_seconds,
                "ts_origin": self.ts_origin, "preset": self.preset}

    @classmethod
    def from_dict(cls, data: dict) -> "ColumnMapping":
        """Inverse of to_dict (e.g. to reuse the mapping of an earlier ingest)."""
        return cls(columns=dict(data.get("columns") or {}), ts_unit_seconds=data.get("ts_unit_seconds"),
                   ts_origin=data.get("ts_origin") or DEFAULT_ORIGIN, preset=data.get("preset"))


@dataclass(frozen=True)
class ColumnProfile:
    """What a sample says about one source column: its type and how its values read."""

    name: str
    sqltype: str
    non_null: int = 0
    numeric: int = 0  # values that read as numbers
    timelike: int = 0  # values that read as dates / times
    minimum: float | None = None
    maximum: float | None = None
    binary: int = 0  # values that read as a yes/no flag (0/1, true/false, yes/no)
    positives: int = 0  # ... of which read as yes

    @property
    def is_flag(self) -> bool:
        """Every sampled value reads as a yes/no flag and both kinds occur, the yes ones a minority (a label's shape)."""
        return self.non_null > 0 and self.binary == self.non_null and 0 < self.positives < self.non_null / 2

    @property
    def is_numeric(self) -> bool:
        """All non-empty sampled values are numbers (and there is at least one)."""
        return self.non_null > 0 and self.numeric == self.non_null

    @property
    def is_time(self) -> bool:
        """A typed date/time column, or text whose sampled values nearly all read as times."""
        if self.sqltype.upper().startswith(("TIMESTAMP", "DATE")):
            return True
        return self.non_null > 0 and not self.is_numeric and self.timelike >= 0.95 * self.non_null


@dataclass(frozen=True)
class Preset:
    """A known public layout: recognised when all `signature` columns are present."""

    name: str
    signature: tuple[str, ...]
    columns: dict[str, str]
    ts_unit_seconds: float | None = None
    ts_origin: str = DEFAULT_ORIGIN


# Name synonyms, compared after lower-casing and stripping non-alphanumerics.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "transaction_id": ("transactionid", "transid", "transnum", "txid", "txnid", "id", "trxid", "tranid",
                       "transactionnumber", "txnref", "reference"),
    "ts": ("ts", "timestamp", "transdatetranstime", "datetime", "transactiondatetime", "transactiondate",
           "transactiontime", "txntime", "txtime", "eventtime", "time", "date", "createdat", "trxdate"),
    "amount": ("amount", "amt", "transactionamt", "transactionamount", "txnamount", "txamount", "value", "sum"),
    "customer_id": ("customerid", "customer", "nameorig", "clientid", "client", "userid", "user", "accountid",
                    "account", "cust", "custid", "uid"),
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
    "is_fraud": ("isfraud", "fraud", "class", "label", "fraudflag", "target", "fraudlabel"),
    "label_ts": ("labelts", "labeltime", "chargebackdate", "labeldate"),
}

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("card simulator (trans_date_trans_time, cc_num, amt)",
           ("transdatetranstime", "ccnum", "amt"),
           {"transaction_id": "trans_num", "ts": "trans_date_trans_time", "amount": "amt",
            "card_id": "cc_num", "customer_id": "cc_num", "merchant_id": "merchant", "category": "category",
            "lat": "lat", "lon": "long", "merchant_lat": "merch_lat", "merchant_lon": "merch_long",
            "is_fraud": "is_fraud"}),
    Preset("mobile money (step, nameOrig, isFraud)", ("step", "nameorig", "amount"),
           {"ts": "step", "amount": "amount", "customer_id": "nameOrig", "merchant_id": "nameDest",
            "category": "type", "is_fraud": "isFraud"}, ts_unit_seconds=3600.0),
    Preset("e-commerce (TransactionDT, TransactionAmt, isFraud)", ("transactiondt", "transactionamt"),
           {"transaction_id": "TransactionID", "ts": "TransactionDT", "amount": "TransactionAmt",
            "card_id": "card1", "email": "P_emaildomain", "category": "ProductCD", "device_id": "DeviceInfo",
            "is_fraud": "isFraud"}, ts_unit_seconds=1.0, ts_origin="2017-12-01 00:00:00"),
    Preset("anonymised PCA (Time, V1..V28, Amount, Class)", ("time", "v1", "v2", "amount"),
           {"ts": "Time", "amount": "Amount", "is_fraud": "Class"}, ts_unit_seconds=1.0),
)}

# Words that mark a column as the fraud label when its values are a yes/no flag with a minority of yes.
LABEL_TOKENS = {"fraud", "fraudulent", "class", "label", "target", "chargeback", "isfraud"}
# ... unless the name also says it is something else about fraud (a scenario, a score, a rate).
NOT_LABEL_TOKENS = {"scenario", "type", "score", "rate", "prob", "probability", "count", "amount", "reason", "ts",
                    "time", "date", "pred", "prediction"}
# What each canonical column switches on; said in the load report when a file lacks it.
NEEDED_FOR = {
    "customer_id": "customer history and velocity features, segments, rings and case grouping are off",
    "device_id": "device features (new device, customers per device), device reasons and device rings are off",
    "ip": "IP features (customers per IP) and IP rings are off",
    "card_id": "card features and card rings are off",
    "email": "e-mail rings are off",
    "merchant_id": "merchant features (volume, fraud rate known by then) are off",
    "is_fraud": "no labels: a model can be trained only after analysts decide cases",
    "country": "country features (new country) and country reasons are off",
    "lat": "distance features are off",
}

# Columns whose names mark them as derived from the label; never used as features.
LABEL_DERIVED = re.compile(r"(fraud|chargeback|scenario|is_?flagged|class$|label)", re.IGNORECASE)


def name_tokens(name: str) -> list[str]:
    """Words of a column name: split at punctuation, spaces and camelCase, lower-cased.

    >>> name_tokens("TX_FRAUD"), name_tokens("isFraudTx"), name_tokens("fraud-flag")
    (['tx', 'fraud'], ['is', 'fraud', 'tx'], ['fraud', 'flag'])
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t]


def label_candidates(columns: list[str], profiles: dict[str, ColumnProfile]) -> list[tuple[str, bool]]:
    """Columns named like a fraud label, best first, each with whether its values confirm it (a minority-yes flag).

    >>> p = {"TX_FRAUD": ColumnProfile("TX_FRAUD", "BIGINT", 100, 100, binary=100, positives=3),
    ...      "TX_FRAUD_SCENARIO": ColumnProfile("TX_FRAUD_SCENARIO", "BIGINT", 100, 100, binary=90, positives=2)}
    >>> label_candidates(["TX_FRAUD_SCENARIO", "TX_FRAUD"], p)
    [('TX_FRAUD', True)]
    """
    found = []
    for col in columns:
        tokens = set(name_tokens(col))
        if not tokens & LABEL_TOKENS and normalise_name(col) not in LABEL_TOKENS or tokens & NOT_LABEL_TOKENS:
            continue
        profile = profiles.get(col)
        found.append((col, bool(profile and profile.is_flag), len(tokens)))
    found.sort(key=lambda c: (not c[1], c[2]))
    return [(col, confirmed) for col, confirmed, _ in found]


def mapping_notes(mapping: ColumnMapping, columns: list[str], profiles: dict[str, ColumnProfile]) -> list[str]:
    """What a user should know about a mapping: a label-like column left unmapped, what missing columns turn off."""
    notes = []
    if "is_fraud" not in mapping.columns:
        for col, confirmed in label_candidates(columns, profiles):
            how = "its values are a yes/no flag" if confirmed else "check its values"
            notes.append(f"column {col!r} looks like the fraud label ({how}) but is not mapped: map it with "
                         f"--map is_fraud={col} (or pick it as is_fraud on the Load data page)")
    absent = [t for t in NEEDED_FOR if t not in mapping.columns and t != "is_fraud" or
              (t == "is_fraud" and t not in mapping.columns and not notes)]
    notes += [f"no {target} column: {NEEDED_FOR[target]}" for target in absent]
    return notes


def normalise_name(name: str) -> str:
    """Lower-case a column name and drop everything but letters and digits, for matching."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def preset_names() -> list[str]:
    """Names of the shipped presets, for a picker."""
    return list(PRESETS)


def apply_preset(name: str, columns: list[str]) -> ColumnMapping:
    """The mapping a preset gives for these source columns (names matched ignoring case and punctuation)."""
    if name not in PRESETS:
        raise MappingError(f"unknown preset {name!r}; presets are: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    by_norm = _by_normalised(columns)
    cols = {t: by_norm[normalise_name(s)] for t, s in preset.columns.items() if normalise_name(s) in by_norm}
    return ColumnMapping(columns=cols, ts_unit_seconds=preset.ts_unit_seconds, ts_origin=preset.ts_origin,
                         preset=name)


def _by_normalised(columns: list[str]) -> dict[str, str]:
    by_norm: dict[str, str] = {}
    for col in columns:
        by_norm.setdefault(normalise_name(col), col)
    return by_norm


def detect_mapping(columns: list[str], numeric_columns: set[str] | None = None,
                   profiles: dict[str, ColumnProfile] | None = None) -> ColumnMapping:
    """Guess the mapping for a source's columns: a matching preset first, else name synonyms, else types."""
    norms = {normalise_name(c) for c in columns}
    for preset in PRESETS.values():
        if set(preset.signature) <= norms:
            return apply_preset(preset.name, columns)
    by_norm = _by_normalised(columns)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for target in ALL_TARGETS:
        for synonym in (normalise_name(target),) + SYNONYMS.get(target, ()):
            source = by_norm.get(synonym)
            if source is not None and source not in used:
                mapping[target] = source
                used.add(source)
                break
    profiles = profiles or {}
    if "is_fraud" not in mapping:
        confirmed = [col for col, ok in label_candidates([c for c in columns if c not in used], profiles) if ok]
        if confirmed:
            mapping["is_fraud"] = confirmed[0]
            used.add(confirmed[0])
    if "ts" not in mapping:
        timelike = [c for c in columns if c not in used and c in profiles and profiles[c].is_time]
        if timelike:
            mapping["ts"] = timelike[0]
    numeric = set(numeric_columns or ()) | {c for c, p in profiles.items() if p.is_numeric}
    result = ColumnMapping(columns=mapping)
    if mapping.get("ts") in numeric:
        result = _numeric_time(result, profiles.get(mapping["ts"]))
    return result


def keep_earlier(detected: ColumnMapping, earlier: ColumnMapping | None, columns: list[str]) -> ColumnMapping:
    """The earlier load's mapping when this file has its layout: every column it maps is here and everything detected
    now agrees with it. Detection by values can miss on one day's file (a label column with no fraud that day, or
    mostly empty), and the file's labels must not be lost for that.

    >>> earlier = ColumnMapping({"ts": "TX_DATETIME", "amount": "TX_AMOUNT", "is_fraud": "TX_FRAUD"})
    >>> keep_earlier(ColumnMapping({"ts": "TX_DATETIME", "amount": "TX_AMOUNT"}), earlier,
    ...              ["TX_DATETIME", "TX_AMOUNT", "TX_FRAUD"]).columns["is_fraud"]
    'TX_FRAUD'
    >>> keep_earlier(ColumnMapping({"ts": "when", "amount": "amt"}), earlier, ["when", "amt"]).columns
    {'ts': 'when', 'amount': 'amt'}
    """
    if earlier is None or not set(earlier.columns.values()) <= set(columns):
        return detected
    agrees = all(earlier.columns.get(target) == source for target, source in detected.columns.items())
    return earlier if agrees and len(earlier.columns) > len(detected.columns) else detected


def _numeric_time(mapping: ColumnMapping, profile: ColumnProfile | None) -> ColumnMapping:
    """Numbers in the time column: Unix seconds / milliseconds when large, else seconds from an origin."""
    largest = profile.maximum if profile is not None and profile.maximum is not None else 0.0
    if largest > 1e11:
        return mapping.with_time(0.001, EPOCH)
    if largest > 1e8:
        return mapping.with_time(1.0, EPOCH)
    return mapping.with_time(1.0)


def check_mapping(mapping: ColumnMapping, columns: list[str]) -> None:
    """Raise MappingError naming what is missing or wrong in a mapping for these source columns."""
    unknown = sorted(set(mapping.columns) - set(ALL_TARGETS))
    if unknown:
        raise MappingError(f"unknown target column(s): {', '.join(unknown)}")
    absent = sorted({s for s in mapping.columns.values() if s not in columns})
    if absent:
        raise MappingError(f"mapping names column(s) not in the file: {', '.join(map(repr, absent))}; "
                           f"the file has: {_shortlist(columns)}")
    missing = [t for t in REQUIRED if t not in mapping.columns]
    if missing:
        hint = ""
        if columns and all(re.fullmatch(r"column\d+", str(c)) for c in columns):
            hint = " The file seems to have no header row: map the generated names column0, column1, … by hand."
        raise MappingError(f"no column mapped to required {' and '.join(missing)}; "
                           f"source columns are: {_shortlist(columns)}.{hint}")
    if mapping.ts_unit_seconds is not None and not mapping.ts_unit_seconds > 0:
        raise MappingError("the time unit must be a positive number of seconds")


def _shortlist(columns: list[str], limit: int = 30) -> str:
    names = ", ".join(repr(str(c))[:60] for c in columns[:limit])
    return names + (f", … ({len(columns)} in all)" if len(columns) > limit else "")
