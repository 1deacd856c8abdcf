"""What ring finding returns (graph, scores, results) and its defaults."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fraudlab.errors import FraudlabError
from fraudlab.privacy import mask_cards

# transactions column -> identifier kind shown to users
IDENTIFIER_COLUMNS: dict[str, str] = {"device_id": "device", "ip": "ip", "card_id": "card", "email": "email"}
DEFAULT_HUB_THRESHOLD = 20
DEFAULT_MAX_RING_SIZE = 40
DEFAULT_NEW_ACCOUNT_DAYS = 30.0
DEFAULT_WEIGHTS: dict[str, float] = {
    "size": 1.0, "shared": 1.0, "fraud": 3.0, "model": 2.0, "amount": 0.5, "time": 1.0, "new_accounts": 1.0,
}
PART_COLUMNS = [f"part_{name}" for name in DEFAULT_WEIGHTS]
MAX_GRAPH_NODES = 300
MAX_PROJECTED_LINKS = 20_000_000  # customer–customer links Louvain may work on
MAX_SPLIT_DEPTH = 3


class RingError(FraudlabError):
    """Rings cannot be found or decided with what the workspace holds."""


@dataclass(frozen=True)
class EntityGraph:
    """Customers × identifiers incidence (codes index `customers` and the identifier arrays)."""

    customers: np.ndarray        # customer_id per customer code
    ident_kind: np.ndarray       # kind per identifier code
    ident_value: np.ndarray      # raw identifier value per identifier code
    pair_customer: np.ndarray    # customer code per (identifier, customer) pair
    pair_ident: np.ndarray       # identifier code per pair
    hubs: pd.DataFrame           # excluded identifiers: kind, identifier (cards masked), customers
    hub_threshold: int
    kinds: tuple[str, ...]

    def incidence(self) -> sp.csr_matrix:
        """Sparse customers × identifiers matrix with a 1 per pair."""
        data = np.ones(len(self.pair_customer), dtype=np.float32)
        shape = (len(self.customers), len(self.ident_kind))
        return sp.csr_matrix((data, (self.pair_customer, self.pair_ident)), shape=shape)


@dataclass(frozen=True)
class RingScore:
    """One ring's score and the parts it is made of (each part in [0, 1]; NaN when not measurable)."""

    ring_id: int
    ring_score: float
    parts: dict[str, float]
    weights: dict[str, float]
    facts: dict[str, float]


@dataclass(frozen=True)
class RingResult:
    """Ranked rings (ring_id 1 = most suspicious), their members and the identifier links inside each."""

    rings: pd.DataFrame      # one row per ring: ring_id, size, facts, part_* columns, ring_score
    members: pd.DataFrame    # ring_id, customer_id
    edges: pd.DataFrame      # ring_id, customer_id, kind, identifier (cards masked), ident_code
    hubs: pd.DataFrame       # kind, identifier (cards masked), customers
    hub_threshold: int
    weights: dict[str, float]
    stats: dict = field(default_factory=dict)

    def customers_of(self, ring_id: int) -> list[str]:
        """Customer ids of one ring."""
        return self.members.loc[self.members["ring_id"] == ring_id, "customer_id"].tolist()

    def score_of(self, ring_id: int) -> RingScore:
        """The score of one ring with each part shown."""
        row = self.rings.loc[self.rings["ring_id"] == ring_id]
        if row.empty:
            raise RingError(f"no ring {ring_id}; there are {len(self.rings)} rings")
        r = row.iloc[0]
        parts = {name: float(r[f"part_{name}"]) for name in self.weights}
        facts = {c: float(r[c]) for c in FACT_COLUMNS if c in r}
        return RingScore(int(ring_id), float(r["ring_score"]), parts, dict(self.weights), facts)


FACT_COLUMNS = ["size", "shared_identifiers", "transactions", "amount", "fraud_members", "fraud_share",
                "score_mean", "score_max", "active_days", "new_accounts"]


def noop(_fraction: float, _message: str) -> None:
    return None


def display_identifier(kind: pd.Series, value: pd.Series) -> pd.Series:
    """Identifier values as shown to users: card numbers masked, others as they are."""
    value = value.astype("string")
    return value.where(kind.to_numpy() != "card", mask_cards(value).astype("string"))
