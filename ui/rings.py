"""Cached reads and charts for the Fraud rings page (keyed on the workspace version)."""
from __future__ import annotations

import pandas as pd

from fraudlab import rings

RING_COLUMNS = ["ring_id", "ring_score", "size", "shared_identifiers", "fraud_share", "score_mean", "amount",
                "transactions", "active_days", "new_accounts", *rings.PART_COLUMNS]


def ring_table(result: rings.RingResult) -> pd.DataFrame:
    """The ranked ring list as shown: score, facts, then the score's parts."""
    table = result.rings[[c for c in RING_COLUMNS if c in result.rings.columns]]
    return table.round({c: 3 for c in table.columns if c not in ("amount", "active_days")}).round(
        {"amount": 2, "active_days": 1})


