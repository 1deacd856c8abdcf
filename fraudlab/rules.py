"""Rule engine: readable rules over point-in-time features; the last step of the scoring fallback chain.

A rule fires when all its conditions hold; a row's score is the highest weight among the rules it fires
(0 when none fires, so the model's alert threshold never turns "no rule fired" into an alert). Conditions are (feature, operator, value) triples, so analysts can write their own.

>>> import pandas as pd
>>> frame = pd.DataFrame({"c_cnt_5m": [0, 4], "amount": [30.0, 2.0], "c_cnt_1h": [0, 5]})
>>> score_rules(frame).score.round(2).tolist()
[0.0, 0.85]
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudlab.errors import FraudlabError

OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
             "!=": operator.ne}
FLOOR = 0.0  # no rule fired: below any alert threshold, so a rules-scored event alerts only when a rule fires


@dataclass(frozen=True)
class Rule:
    """A named rule: all conditions must hold; `weight` is the score it gives, in [0, 1]."""

    name: str
    description: str
    weight: float
    conditions: tuple[tuple[str, str, float], ...]

    def fires(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean array: where every condition holds (a missing feature never fires)."""
        hit = np.ones(len(frame), dtype=bool)
        for feature, op, value in self.conditions:
            if op not in OPERATORS:
                raise FraudlabError(f"rule {self.name!r}: unknown operator {op!r}")
            if feature not in frame:
                return np.zeros(len(frame), dtype=bool)
            column = pd.to_numeric(frame[feature], errors="coerce").to_numpy(dtype=float)
            hit &= np.nan_to_num(OPERATORS[op](column, value), nan=False).astype(bool)
        return hit


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("card_testing", "burst of tiny payments: 3+ in the last hour and this one under 5", 0.85,
         (("c_cnt_1h", ">=", 3), ("amount", "<", 5))),
    Rule("velocity", "3 or more payments in the 5 minutes before this one", 0.8, (("c_cnt_5m", ">=", 3),)),
    Rule("shared_device", "device used by 3+ customers in the last 24 hours", 0.75, (("dev_customers_24h", ">=", 3),)),
    Rule("new_device_new_country", "first payment from this device and this country", 0.7,
         (("c_new_device", "==", 1), ("c_new_country", "==", 1))),
    Rule("amount_spike", "amount 5x the customer's usual", 0.6, (("c_amt_ratio", ">=", 5),)),
    Rule("risky_merchant", "merchant with 10%+ known fraud in the last 7 days", 0.6, (("m_fraud_rate_7d", ">=", 0.1),)),
)


@dataclass(frozen=True)
class RuleScores:
    """Scores per row and, per row, the names of the rules that fired."""

    score: np.ndarray
    fired: list[list[str]]


def score_rules(frame: pd.DataFrame, rules: tuple[Rule, ...] = DEFAULT_RULES) -> RuleScores:
    """Score rows by the rules (vectorised per rule); rows firing none get the floor score."""
    hits = np.column_stack([rule.fires(frame) for rule in rules]) if rules else np.zeros((len(frame), 0), bool)
    weights = np.array([rule.weight for rule in rules])
    score = np.max(np.where(hits, weights, FLOOR), axis=1, initial=FLOOR) if len(rules) else np.full(len(frame), FLOOR)
    names = np.array([rule.name for rule in rules])
    fired = [names[row].tolist() for row in hits]
    return RuleScores(score, fired)


def describe(names: list[str], rules: tuple[Rule, ...] = DEFAULT_RULES) -> list[str]:
    """The descriptions of fired rules, for reason codes."""
    by_name = {rule.name: rule.description for rule in rules}
    return [by_name[n] for n in names if n in by_name]
