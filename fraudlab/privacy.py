"""Masking of card numbers for anything shown to users: only the last four digits stay readable.

>>> mask_cards(pd.Series(["4111111111111111", None, "12"])).tolist()
['•••• 1111', None, '•••• 12']
"""
from __future__ import annotations

import re

import pandas as pd

CARD_COLUMNS = re.compile(r"(^card_id$|card.?num|cc.?num|^pan$|card$)", re.IGNORECASE)


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


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas (a leading =, +, -, @, tab or CR gets a ')."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype).startswith(("string", "str")):
            text = out[col].astype("string")
            risky = text.str.startswith(FORMULA_START).fillna(False)
            out[col] = out[col].astype(object).where(~risky, "'" + text.astype(object))
    return out
