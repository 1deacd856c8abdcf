"""One transaction posted as JSON: checked field by field into a row shaped like `transactions`, the rest kept.

A field the workspace has a column for is converted to that column's type (a value that cannot be is a 400 naming
the field); any other field is kept apart as `extra` (stored with the event, never fatal).

>>> row, extra = parse_event({"transaction_id": "t1", "ts": "2024-05-01T10:00:00+02:00", "amount": "12.5",
...                           "note": "hi"}, {"transaction_id": "VARCHAR", "ts": "TIMESTAMP", "amount": "DOUBLE"})
>>> row["ts"], row["amount"], extra
(datetime.datetime(2024, 5, 1, 8, 0), 12.5, {'note': 'hi'})
"""
from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from fraudlab.errors import FraudlabError
from fraudlab.privacy import mask_card

MAX_ID_CHARS = 200
MAX_TEXT_CHARS = 1_000
NUMERIC = ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT")
NOT_SETTABLE = ("ingest_id",)


class BadEvent(FraudlabError):
    """A posted transaction the API refuses (HTTP 400); `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_time(value: Any) -> datetime:
    """A timestamp as naive UTC: ISO 8601 text (with or without offset) or epoch seconds."""
    if isinstance(value, bool) or value is None or value == "":
        raise BadEvent("ts", "ts is required: the transaction time, e.g. \"2024-05-01T10:00:00Z\"")
    if isinstance(value, str):
        try:  # the usual ISO 8601 text, ten times faster than pandas' parser (which reads every other form)
            stamp = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return stamp if stamp.tzinfo is None else stamp.astimezone(timezone.utc).replace(tzinfo=None)
    try:
        stamp = pd.Timestamp(float(value), unit="s") if isinstance(value, (int, float)) else pd.Timestamp(str(value))
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadEvent("ts", f"ts {str(value)[:60]!r} is not a time (use ISO 8601, e.g. 2024-05-01T10:00:00Z, "
                             f"or epoch seconds)") from exc
    if stamp is pd.NaT:
        raise BadEvent("ts", "ts is not a time")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise BadEvent(name, f"{name} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise BadEvent(name, f"{name} {str(value)[:40]!r} is not a number") from exc
    if not math.isfinite(number):
        raise BadEvent(name, f"{name} must be a finite number")
    return number


def _boolean(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):  # 1.0 / 0.0 from clients that write every number as float
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "1.0", "true", "yes", "t", "y"):
        return True
    if text in ("0", "0.0", "false", "no", "f", "n"):
        return False
    raise BadEvent(name, f"{name} must be true or false")


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise BadEvent(name, f"{name} must be a single value, not a {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_TEXT_CHARS:
        raise BadEvent(name, f"{name} is longer than {MAX_TEXT_CHARS} characters")
    return text


def convert(name: str, sqltype: str, value: Any) -> Any:
    """One field converted to its column's type (BadEvent naming the field when it cannot be)."""
    kind = sqltype.upper()
    if kind.startswith(NUMERIC):
        return _number(name, value)
    if kind == "BOOLEAN":
        return _boolean(name, value)
    if kind.startswith("TIMESTAMP"):
        return None if value is None else parse_time(value)
    return _text(name, value)


def parse_event(payload: Any, column_types: dict[str, str]) -> tuple[dict, dict]:
    """(row for `transactions`, fields it has no column for) from a posted JSON object."""
    if not isinstance(payload, dict):
        raise BadEvent("body", "the body must be one JSON object (one transaction)")
    if payload.get("amount") is None:
        raise BadEvent("amount", "amount is required (a number >= 0)")
    row = {name: None for name in column_types if name not in NOT_SETTABLE}
    extra = {}
    for name, value in payload.items():
        if name == "ts":
            continue  # parsed below, present or not
        if name in row:
            row[name] = convert(name, column_types[name], value)
        else:
            extra[str(name)] = value
    row["ts"] = parse_time(payload.get("ts"))
    if row.get("card_id") is not None:  # stored masked, as every load stores it; features match on the masked value
        row["card_id"] = mask_card(row["card_id"])
    if row["amount"] < 0:
        raise BadEvent("amount", "amount must be >= 0")
    if row.get("transaction_id") in (None, ""):
        row["transaction_id"] = f"api-{uuid.uuid4().hex}"
    if len(row["transaction_id"]) > MAX_ID_CHARS:
        raise BadEvent("transaction_id", f"transaction_id is longer than {MAX_ID_CHARS} characters")
    return row, extra
