"""Privacy: card numbers masked to their last four digits; exported cells never run as spreadsheet formulas."""
from __future__ import annotations

import duckdb
import pandas as pd

from fraudlab.privacy import csv_safe, mask_card, mask_card_sql


def test_csv_safe_prefixes_formula_cells_and_headers_and_leaves_the_rest():
    frame = pd.DataFrame({"a": ["=1+1", "+x", "-2", "@SUM(A1)", "\tt", "\rr", "ok", None],
                          "n": [-1, 2, 3, 4, 5, 6, 7, 8], "=head": ["x"] * 8})
    safe = csv_safe(frame)
    assert safe["a"].tolist()[:7] == ["'=1+1", "'+x", "'-2", "'@SUM(A1)", "'\tt", "'\rr", "ok"]
    assert pd.isna(safe["a"].iloc[7]) and safe["n"].tolist() == frame["n"].tolist()
    assert list(safe.columns) == ["a", "n", "'=head"] and frame["a"].iloc[0] == "=1+1"  # a copy


def test_sql_card_mask_matches_the_python_mask():
    con = duckdb.connect()
    for value in ("4111111111111111", "4111-1111-1111-1234", "12", "", None):
        assert con.execute(f"SELECT {mask_card_sql('$v')}", {"v": value}).fetchone()[0] == mask_card(value)
