"""Masking of card numbers for anything shown to users: only the last four digits stay readable.

>>> mask_cards(pd.Series(["4111111111111111", None, "12"])).tolist()
['•••• 1111', None, '•••• 12']
"""
from __future__ import annotations

import re

import pandas as pd

CARD_COLUMNS = re.compile(r"(^card_id$|card.?num|cc.?num|^pan$|card$)", re.IGNORECASE)
# Cells a spreadsheet would run as a formula (CSV injection); such text gets a leading apostrophe on export.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# 13 to 19 digits, optionally grouped by spaces or dashes: a card number inside free text (a malformed CSV line).
_PAN_IN_TEXT = r"\b[0-9](?:[ -]?[0-9]){8,14}[ -]?([0-9]{4})\b"


def mask_card(value: object) -> str | None:
    """One card number as '•••• 1234' (None stays None)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    digits = re.sub(r"\D", "", str(value)) or str(value)
    return f"•••• {digits[-4:]}"


def mask_cards(values: pd.Series) -> pd.Series:
    """A column of card numbers masked to the last four digits (vectorised string ops)."""
    text = values.astype("string").str.replace(r"\.0$", "", regex=True)  # numbers read as floats
    digits = text.str.replace(r"\D", "", regex=True)
    digits = digits.where(digits.str.len() > 0, text)
    masked = "•••• " + digits.str[-4:]
    return masked.astype(object).where(values.notna(), None)


def mask_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every card-number column (card_id, cc_num, card_number, …) masked."""
    out = frame.copy()
    for col in out.columns:
        if CARD_COLUMNS.search(str(col)):
            out[col] = mask_cards(out[col])
    return out


def is_card_column(name: str, mapped_card: str | None = None) -> bool:
    """Whether a source column holds card numbers: by its name, or because it is mapped to card_id."""
    return name == mapped_card or bool(CARD_COLUMNS.search(str(name)))


def mask_card_sql(expr: str) -> str:
    """SQL masking one card-number value to '•••• 1234', as :func:`mask_card` does (NULL stays NULL)."""
    text = f"regexp_replace(CAST({expr} AS VARCHAR), '\\.0$', '')"
    return (f"(CASE WHEN {expr} IS NULL THEN NULL ELSE '•••• ' || "
            f"right(coalesce(nullif(regexp_replace({text}, '[^0-9]', '', 'g'), ''), {text}), 4) END)")


def mask_card_numbers_in_text_sql(expr: str) -> str:
    """SQL masking every card-number-like run of digits inside a text (keeps the last four of each)."""
    return f"regexp_replace({expr}, '{_PAN_IN_TEXT}', '•••• \\1', 'g')"


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy safe to open in a spreadsheet: text cells (and headers) starting with =, +, -, @, tab or CR get a '."""
    out = frame.copy()
    for col in out.columns:
        values = out[col]
        if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
            continue
        text = values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START)).astype(bool)
        out[col] = values.where(~text, "'" + values[text].astype(str)) if text.any() else values
    out.columns = ["'" + c if isinstance(c, str) and c.startswith(FORMULA_START) else c for c in out.columns]
    return out
