"""Fraud rings: customers linked through shared identifiers, split into rings, scored and drawn.

The entity graph is bipartite (customers — identifiers). DuckDB reduces the transactions to distinct
(identifier, customer) pairs with integer codes; scipy.sparse holds the incidence matrix and finds its
connected components; only components too large to be one ring go through Louvain (networkx), on their
own subgraph. Identifiers shared by more than ``hub_threshold`` customers (a public Wi-Fi IP, a
placeholder e-mail) are hubs: they are excluded and reported, so they do not glue everyone together.
"""
from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from fraudlab.errors import FraudlabError
from fraudlab.privacy import mask_cards
from fraudlab.workspace import Workspace

Progress = Callable[[float, str], None]

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


def _noop(_fraction: float, _message: str) -> None:
    return None


def _display_identifier(kind: pd.Series, value: pd.Series) -> pd.Series:
    """Identifier values as shown to users: card numbers masked, others as they are."""
    value = value.astype("string")
    return value.where(kind.to_numpy() != "card", mask_cards(value).astype("string"))


# ---------------------------------------------------------------------------------------------- graph

def _pairs_sql(kinds: Sequence[str], merchant_window_hours: float | None) -> tuple[str, list]:
    """SQL for the distinct (kind, ident, customer_id) pairs, with its parameters."""
    parts, params = [], []
    for col, kind in IDENTIFIER_COLUMNS.items():
        if kind in kinds:
            parts.append(f"SELECT DISTINCT '{kind}' AS kind, {col} AS ident, customer_id FROM transactions "
                         f"WHERE {col} IS NOT NULL AND customer_id IS NOT NULL")
    if merchant_window_hours:
        parts.append("SELECT DISTINCT 'merchant' AS kind, merchant_id || ' @ ' || "
                     "strftime(to_timestamp(floor(epoch(ts) / ?) * ?)::TIMESTAMP, '%Y-%m-%d %H:%M') AS ident, "
                     "customer_id FROM transactions WHERE merchant_id IS NOT NULL AND customer_id IS NOT NULL")
        seconds = float(merchant_window_hours) * 3600.0
        params += [seconds, seconds]
    if not parts:
        raise RingError("no identifier kinds selected: choose at least one of " + ", ".join(IDENTIFIER_COLUMNS.values()))
    return " UNION ALL ".join(parts), params


GRAPH_STEPS_SQL = [
    "CREATE OR REPLACE TEMP TABLE _rg_ident AS SELECT kind, ident, count(*) AS customers "
    "FROM _rg_pairs GROUP BY kind, ident",
    "CREATE OR REPLACE TEMP TABLE _rg_kept AS SELECT kind, ident, "
    "CAST(row_number() OVER (ORDER BY kind, ident) - 1 AS INTEGER) AS icode "
    "FROM _rg_ident WHERE customers BETWEEN 2 AND ?",
    "CREATE OR REPLACE TEMP TABLE _rg_edges AS SELECT p.customer_id, k.icode "
    "FROM _rg_pairs p JOIN _rg_kept k USING (kind, ident)",
    "CREATE OR REPLACE TEMP TABLE _rg_cust AS SELECT customer_id, "
    "CAST(row_number() OVER (ORDER BY customer_id) - 1 AS INTEGER) AS ccode "
    "FROM (SELECT DISTINCT customer_id FROM _rg_edges)",
]


def build_graph(ws: Workspace, hub_threshold: int = DEFAULT_HUB_THRESHOLD, *,
                kinds: Iterable[str] | None = None, merchant_window_hours: float | None = None) -> EntityGraph:
    """Build the customer–identifier graph in DuckDB: distinct pairs, hubs excluded, integer codes."""
    if hub_threshold < 2:
        raise RingError(f"hub threshold {hub_threshold} is too low: an identifier links customers only "
                        "when at least 2 share it")
    kinds = tuple(kinds) if kinds is not None else tuple(IDENTIFIER_COLUMNS.values())
    pairs_sql, params = _pairs_sql(kinds, merchant_window_hours)
    cur = ws.cursor()
    try:
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _rg_pairs AS {pairs_sql}", params)
        cur.execute(GRAPH_STEPS_SQL[0])
        hubs = cur.sql("SELECT kind, ident AS identifier, customers FROM _rg_ident WHERE customers > ? "
                       "ORDER BY customers DESC, kind, ident", params=[int(hub_threshold)]).to_arrow_table()
        cur.execute(GRAPH_STEPS_SQL[1], [int(hub_threshold)])
        for step in GRAPH_STEPS_SQL[2:]:
            cur.execute(step)
        idents = cur.sql("SELECT kind, ident FROM _rg_kept ORDER BY icode").to_arrow_table()
        customers = cur.sql("SELECT customer_id FROM _rg_cust ORDER BY ccode").to_arrow_table()
        pairs = cur.sql("SELECT c.ccode, e.icode FROM _rg_edges e JOIN _rg_cust c USING (customer_id)"
                        ).to_arrow_table()
    finally:
        cur.close()
    hubs_df = hubs.to_pandas()
    hubs_df["identifier"] = _display_identifier(hubs_df["kind"], hubs_df["identifier"])
    return EntityGraph(
        customers=np.asarray(customers.column(0).to_pylist(), dtype=object),
        ident_kind=idents.column(0).to_numpy(zero_copy_only=False).astype(object),
        ident_value=idents.column(1).to_numpy(zero_copy_only=False).astype(object),
        pair_customer=pairs.column(0).to_numpy().astype(np.int32),
        pair_ident=pairs.column(1).to_numpy().astype(np.int32),
        hubs=hubs_df, hub_threshold=int(hub_threshold), kinds=kinds,
    )


def components(graph: EntityGraph) -> np.ndarray:
    """Connected-component label per customer code (scipy.sparse.csgraph on the bipartite graph)."""
    nc = len(graph.customers)
    if nc == 0:
        return np.zeros(0, dtype=np.int64)
    incidence = graph.incidence()
    bipartite = sp.bmat([[None, incidence], [incidence.T, None]], format="csr")
    _, labels = connected_components(bipartite, directed=False)
    _, compact = np.unique(labels[:nc], return_inverse=True)
    return compact.astype(np.int64)


def _louvain(incidence: sp.csr_matrix, rows: np.ndarray, seed: int) -> list[np.ndarray]:
    """Louvain communities of one component's customer projection (weights = identifiers shared)."""
    sub = incidence[rows]
    shared = (sub @ sub.T).tocoo()
    upper = shared.row < shared.col
    graph = nx.Graph()
    graph.add_nodes_from(range(len(rows)))
    graph.add_weighted_edges_from(zip(shared.row[upper].tolist(), shared.col[upper].tolist(),
                                      shared.data[upper].tolist()))
    communities = nx.community.louvain_communities(graph, weight="weight", seed=seed)
    return [rows[np.fromiter(c, dtype=np.int64)] for c in communities]


def split_large(graph: EntityGraph, comp: np.ndarray, max_ring_size: int = DEFAULT_MAX_RING_SIZE,
                seed: int = 0, max_links: float = MAX_PROJECTED_LINKS) -> tuple[np.ndarray, int]:
    """Ring label per customer: components as they are, those above max_ring_size split by Louvain."""
    labels = comp.copy()
    if len(comp) == 0:
        return labels, 0
    sizes = np.bincount(comp)
    big = np.flatnonzero(sizes > max_ring_size)
    if len(big) == 0:
        return labels, 0
    incidence = graph.incidence()
    degree = np.bincount(graph.pair_ident, minlength=len(graph.ident_kind)).astype(np.float64)
    links = float((degree * (degree - 1) / 2).sum())
    if links > max_links:
        raise RingError(f"hub threshold {graph.hub_threshold} keeps identifiers shared by up to {int(degree.max()):,} "
                        f"customers: splitting the large components would need {links:,.0f} customer links. "
                        "Lower the hub threshold (or switch off the merchant window).")
    order = np.argsort(comp, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    next_label = int(comp.max()) + 1
    queue = [(np.sort(order[starts[c]:starts[c + 1]]), 0) for c in big]
    while queue:  # one entry per community still too large; Louvain again, at most MAX_SPLIT_DEPTH levels deep
        rows, depth = queue.pop()
        communities = _louvain(incidence, rows, seed)
        for members in communities:
            if len(members) > max_ring_size and len(communities) > 1 and depth + 1 < MAX_SPLIT_DEPTH:
                queue.append((np.sort(members), depth + 1))
                continue
            labels[members] = next_label
            next_label += 1
    return labels, len(big)


# ---------------------------------------------------------------------------------------------- scoring

RING_FACTS_SQL = """
WITH tx AS (
    SELECT m.ring, t.customer_id, t.transaction_id, t.ts, t.amount
    FROM transactions t JOIN _rg_members m USING (customer_id)
), lab AS (
    SELECT l.transaction_id, arg_max(l.is_fraud, COALESCE(l.label_ts, TIMESTAMP '1970-01-01')) AS is_fraud
    FROM labels l SEMI JOIN tx USING (transaction_id) GROUP BY l.transaction_id
), sc AS (
    SELECT s.transaction_id, max(s.score) AS score FROM scores s SEMI JOIN tx USING (transaction_id)
    GROUP BY s.transaction_id
), per_customer AS (
    SELECT tx.ring, tx.customer_id, count(*) AS n, sum(tx.amount) AS amount,
           bool_or(COALESCE(lab.is_fraud, FALSE)) AS fraud, max(sc.score) AS max_score,
           min(tx.ts) AS first_ts
    FROM tx LEFT JOIN lab USING (transaction_id) LEFT JOIN sc USING (transaction_id)
    GROUP BY tx.ring, tx.customer_id
), spread AS (
    SELECT ring, quantile_cont(epoch(ts), 0.9) - quantile_cont(epoch(ts), 0.1) AS spread_s,
           (max(epoch(ts)) - min(epoch(ts))) / 86400.0 AS active_days,
           median(epoch(ts)) AS mid_s
    FROM tx GROUP BY ring
)
SELECT p.ring, count(*) AS size, sum(p.n) AS transactions, sum(p.amount) AS amount,
       count(*) FILTER (p.fraud) AS fraud_members, avg(p.max_score) AS score_mean, max(p.max_score) AS score_max,
       any_value(s.spread_s) AS spread_s, any_value(s.active_days) AS active_days,
       count(*) FILTER (epoch(p.first_ts) > ? AND s.mid_s - epoch(p.first_ts) < ?) AS new_accounts
FROM per_customer p JOIN spread s USING (ring)
GROUP BY p.ring
"""


def _global_time(ws: Workspace) -> tuple[float, float]:
    """(p90 - p10 spread in seconds, first transaction epoch) over all transactions."""
    row = ws.arrow("SELECT quantile_cont(epoch(ts), 0.9) - quantile_cont(epoch(ts), 0.1), min(epoch(ts)) "
                   "FROM transactions").to_pylist()[0]
    values = list(row.values())
    return float(values[0] or 0.0), float(values[1] or 0.0)


def ring_facts(ws: Workspace, members: pd.DataFrame,
               new_account_days: float = DEFAULT_NEW_ACCOUNT_DAYS) -> pd.DataFrame:
    """Per ring (members: ring, customer_id): size, transactions, amount, fraud members, scores, timing."""
    spread_all, first_epoch = _global_time(ws)
    window_s = float(new_account_days) * 86400.0
    cur = ws.cursor()
    try:
        cur.register("_rg_members", pa.Table.from_pandas(members[["ring", "customer_id"]], preserve_index=False))
        facts = cur.sql(RING_FACTS_SQL, params=[first_epoch + window_s, window_s]).to_arrow_table().to_pandas()
    finally:
        cur.close()
    facts["time_concentration"] = 1.0 - np.clip(facts["spread_s"] / spread_all, 0.0, 1.0) if spread_all else 0.0
    return facts.drop(columns="spread_s")


def score_parts(facts: pd.DataFrame) -> pd.DataFrame:
    """The score parts in [0, 1] from ring facts (NaN where a part cannot be measured, e.g. no scores)."""
    size = facts["size"].astype(float)
    parts = pd.DataFrame(index=facts.index)
    parts["part_size"] = np.clip(np.log2(size) / 4.0, 0.0, 1.0)                      # 2 → .25, 16+ → 1
    parts["part_shared"] = np.clip(facts["shared_identifiers"] / (2.0 * (size - 1).clip(lower=1)), 0.0, 1.0)
    parts["part_fraud"] = facts["fraud_members"] / size
    parts["part_model"] = facts["score_mean"].astype(float)
    amount = facts["amount"].astype(float)
    parts["part_amount"] = amount.rank(pct=True) if len(amount) > 1 else (amount > 0).astype(float)
    parts["part_time"] = facts["time_concentration"].astype(float)
    parts["part_new_accounts"] = facts["new_accounts"] / size
    return parts


def combine_parts(parts: pd.DataFrame, weights: dict[str, float]) -> pd.Series:
    """Weighted mean of the available parts (a NaN part drops out with its weight)."""
    values = np.column_stack([parts[f"part_{k}"].to_numpy(dtype=float) for k in weights])
    w = np.array([float(weights[k]) for k in weights])
    present = ~np.isnan(values)
    total = (np.where(present, values, 0.0) * w).sum(axis=1)
    norm = (present * w).sum(axis=1)
    return pd.Series(np.where(norm > 0, total / np.where(norm > 0, norm, 1.0), 0.0), index=parts.index)


# ---------------------------------------------------------------------------------------------- rings

def _shared_within(graph: EntityGraph, labels: np.ndarray) -> np.ndarray:
    """Mask over pairs: the pair's identifier links at least two customers of the same ring."""
    if len(graph.pair_customer) == 0:
        return np.zeros(0, dtype=bool)
    ring = labels[graph.pair_customer].astype(np.int64)
    key = ring * max(len(graph.ident_kind), 1) + graph.pair_ident
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return counts[inverse] >= 2


def _empty_result(graph: EntityGraph | None, hub_threshold: int, weights: dict, stats: dict) -> RingResult:
    rings = pd.DataFrame(columns=["ring_id", *FACT_COLUMNS, "time_concentration", *PART_COLUMNS, "ring_score"])
    hubs = graph.hubs if graph is not None else pd.DataFrame(columns=["kind", "identifier", "customers"])
    return RingResult(rings, pd.DataFrame(columns=["ring_id", "customer_id"]),
                      pd.DataFrame(columns=["ring_id", "customer_id", "kind", "identifier", "ident_code"]),
                      hubs, hub_threshold, weights, stats)


def find_rings(ws: Workspace, hub_threshold: int = DEFAULT_HUB_THRESHOLD, min_size: int = 2, *,
               kinds: Iterable[str] | None = None, merchant_window_hours: float | None = None,
               max_ring_size: int = DEFAULT_MAX_RING_SIZE, new_account_days: float = DEFAULT_NEW_ACCOUNT_DAYS,
               weights: dict[str, float] | None = None, seed: int = 0,
               progress: Progress | None = None) -> RingResult:
    """Find, score and rank rings of customers linked by shared identifiers (ring_id 1 = most suspicious)."""
    progress = progress or _noop
    weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
    if not has_customers(ws):
        raise RingError("rings need a customer_id column with values; map one on the Load data page")
    stats: dict = {}
    started = time.perf_counter()
    progress(0.05, "building the entity graph in DuckDB")
    graph = build_graph(ws, hub_threshold, kinds=kinds, merchant_window_hours=merchant_window_hours)
    stats.update(graph_s=time.perf_counter() - started, customers_linked=len(graph.customers),
                 identifiers=len(graph.ident_kind), pairs=len(graph.pair_customer), hubs=len(graph.hubs))
    progress(0.4, "connected components")
    t0 = time.perf_counter()
    comp = components(graph)
    labels, split = split_large(graph, comp, max_ring_size, seed)
    stats.update(components_s=time.perf_counter() - t0, components=int(comp.max() + 1) if len(comp) else 0,
                 components_split=split)
    sizes = np.bincount(labels) if len(labels) else np.zeros(0, dtype=np.int64)
    keep = sizes[labels] >= max(min_size, 2) if len(labels) else np.zeros(0, dtype=bool)
    if not keep.any():
        return _empty_result(graph, hub_threshold, weights, stats)
    progress(0.6, "scoring rings")
    t0 = time.perf_counter()
    members = pd.DataFrame({"ring": labels[keep], "customer_id": graph.customers[keep].astype(str)})
    within = _shared_within(graph, labels) & keep[graph.pair_customer]
    shared = pd.Series(graph.pair_ident[within]).groupby(labels[graph.pair_customer[within]]).nunique()
    facts = ring_facts(ws, members, new_account_days)
    facts["shared_identifiers"] = facts["ring"].map(shared).fillna(0).astype(int)
    facts["fraud_share"] = facts["fraud_members"] / facts["size"]
    parts = score_parts(facts)
    if not ws.scalar("SELECT count(*) > 0 FROM labels"):
        parts["part_fraud"] = np.nan  # no labels anywhere: the part is not measurable, its weight drops out
    rings = pd.concat([facts, parts], axis=1)
    rings["ring_score"] = combine_parts(parts, weights)
    rings = rings.sort_values(["ring_score", "size", "ring"], ascending=[False, False, True]).reset_index(drop=True)
    rings.insert(0, "ring_id", np.arange(1, len(rings) + 1))
    ring_id_of = pd.Series(rings["ring_id"].to_numpy(), index=rings["ring"].to_numpy())
    members["ring_id"] = members["ring"].map(ring_id_of).astype(int)
    edges = _ring_edges(graph, labels, within, ring_id_of)
    stats.update(score_s=time.perf_counter() - t0, total_s=time.perf_counter() - started, rings=len(rings))
    progress(1.0, f"{len(rings):,} rings")
    members = members.sort_values(["ring_id", "customer_id"])[["ring_id", "customer_id"]].reset_index(drop=True)
    return RingResult(rings.drop(columns="ring"), members, edges, graph.hubs, int(hub_threshold), weights, stats)


def _ring_edges(graph: EntityGraph, labels: np.ndarray, within: np.ndarray, ring_id_of: pd.Series) -> pd.DataFrame:
    """Customer–identifier links inside each ring (identifiers shared by two or more of its members)."""
    pc, pi = graph.pair_customer[within], graph.pair_ident[within]
    kind = pd.Series(graph.ident_kind[pi], dtype="string")
    edges = pd.DataFrame({
        "ring_id": pd.Series(labels[pc]).map(ring_id_of).to_numpy(dtype=int),
        "customer_id": graph.customers[pc].astype(str),
        "kind": kind,
        "identifier": _display_identifier(kind, pd.Series(graph.ident_value[pi], dtype="string")),
        "ident_code": pi,
    })
    return edges.sort_values(["ring_id", "kind", "ident_code", "customer_id"]).reset_index(drop=True)


def has_customers(ws: Workspace) -> bool:
    """Whether transactions carry customer ids at all (rings need them)."""
    return bool(ws.scalar("SELECT count(customer_id) > 0 FROM transactions"))


# ---------------------------------------------------------------------------------------------- one ring

def _members_arrow(customers: Sequence[str]) -> pa.Table:
    return pa.table({"customer_id": pa.array([str(c) for c in customers], type=pa.string())})


def ring_members(ws: Workspace, customers: Sequence[str]) -> pd.DataFrame:
    """One row per member: activity, labels, highest score and its transaction (the top case), last card (masked)."""
    cur = ws.cursor()
    try:
        cur.register("_rg_one", _members_arrow(customers))
        table = cur.sql("""
            WITH tx AS (SELECT t.* FROM transactions t SEMI JOIN _rg_one USING (customer_id)),
            lab AS (SELECT transaction_id, bool_or(is_fraud) AS fraud FROM labels
                    SEMI JOIN tx USING (transaction_id) GROUP BY 1),
            sc AS (SELECT transaction_id, max(score) AS score FROM scores SEMI JOIN tx USING (transaction_id) GROUP BY 1)
            SELECT tx.customer_id, count(*) AS transactions, round(sum(tx.amount), 2) AS amount,
                   min(tx.ts)::TIMESTAMP AS first_seen, max(tx.ts)::TIMESTAMP AS last_seen,
                   count(*) FILTER (lab.fraud) AS fraud_labels, max(sc.score) AS max_score,
                   arg_max(tx.transaction_id, COALESCE(sc.score, -1)) AS top_case,
                   count(DISTINCT tx.card_id) AS cards, arg_max(tx.card_id, tx.ts) AS last_card,
                   count(DISTINCT tx.device_id) AS devices, count(DISTINCT tx.ip) AS ips
            FROM tx LEFT JOIN lab USING (transaction_id) LEFT JOIN sc USING (transaction_id)
            GROUP BY tx.customer_id ORDER BY max_score DESC NULLS LAST, fraud_labels DESC, tx.customer_id
        """).to_arrow_table()
    finally:
        cur.close()
    frame = table.to_pandas()
    frame["last_card"] = mask_cards(frame["last_card"])
    return frame


def ring_transactions(ws: Workspace, customers: Sequence[str], limit: int = 20_000) -> pd.DataFrame:
    """The members' transactions (newest first, at most `limit`), cards masked, with score and label."""
    cur = ws.cursor()
    try:
        cur.register("_rg_one", _members_arrow(customers))
        table = cur.sql("""
            SELECT t.transaction_id, t.customer_id, t.ts::TIMESTAMP AS ts, t.amount, t.merchant_id, t.card_id,
                   t.device_id, t.ip, s.score, l.is_fraud
            FROM transactions t SEMI JOIN _rg_one USING (customer_id)
            LEFT JOIN (SELECT transaction_id, max(score) AS score FROM scores GROUP BY 1) s USING (transaction_id)
            LEFT JOIN (SELECT transaction_id, bool_or(is_fraud) AS is_fraud FROM labels GROUP BY 1) l
                USING (transaction_id)
            ORDER BY t.ts DESC LIMIT ?""", params=[int(limit)]).to_arrow_table()
    finally:
        cur.close()
    frame = table.to_pandas()
    frame["card_id"] = mask_cards(frame["card_id"])
    return frame


def ring_case_ids(ws: Workspace, customers: Sequence[str], scope: str = "cases") -> list[str]:
    """Transaction ids a ring decision applies to.

    scope "cases": the members' open cases (scored at or above the alert threshold, no decision yet);
    scope "all": every transaction of every member.
    """
    if scope not in ("cases", "all"):
        raise RingError(f"unknown scope {scope!r}: use 'cases' or 'all'")
    cur = ws.cursor()
    try:
        cur.register("_rg_one", _members_arrow(customers))
        if scope == "all":
            sql, params = ("SELECT transaction_id FROM transactions SEMI JOIN _rg_one USING (customer_id) "
                           "ORDER BY transaction_id"), []
        else:
            from fraudlab.model import decision_threshold

            decided = ("AND transaction_id NOT IN (SELECT case_id FROM decisions)"
                       if ws.has_table("decisions") else "")
            sql = (f"SELECT DISTINCT s.transaction_id FROM scores s JOIN transactions t USING (transaction_id) "
                   f"SEMI JOIN _rg_one ON t.customer_id = _rg_one.customer_id WHERE s.score >= ? {decided} "
                   f"ORDER BY 1")
            params = [float(decision_threshold(ws))]
        ids = cur.sql(sql, params=params).to_arrow_table().column(0).to_pylist()
    finally:
        cur.close()
    return [str(i) for i in ids]


# ---------------------------------------------------------------------------------------------- drawing

KIND_SHAPES = {"device": "square", "ip": "triangle", "card": "diamond", "email": "star", "merchant": "hexagon"}
KIND_COLOURS = {"device": "#6c8ebf", "ip": "#82b366", "card": "#d6b656", "email": "#9673a6", "merchant": "#999999"}


@dataclass(frozen=True)
class RingGraph:
    """A ring drawn as self-contained HTML (vis.js in line), with how much of it was drawn."""

    html: str
    nodes: int
    edges: int
    total_nodes: int
    message: str

    @property
    def truncated(self) -> bool:
        return self.nodes < self.total_nodes


def _risk_colour(risk: float) -> str:
    """Green (0) → amber → red (1) for a customer's risk; grey when unknown."""
    if risk is None or risk != risk:
        return "#b0b0b0"
    r = float(np.clip(risk, 0.0, 1.0))
    return f"#{int(80 + 175 * r):02x}{int(180 - 150 * r):02x}{int(80 - 50 * r):02x}"


def ring_graph_html(edges: pd.DataFrame, risk: dict[str, float] | None = None, *,
                    max_nodes: int = MAX_GRAPH_NODES, height: str = "560px") -> RingGraph:
    """Draw customer–identifier links (customer_id, kind, identifier) with pyvis; every label and tooltip escaped.

    Customers are dots coloured by risk (0–1, e.g. highest score or fraud share), identifiers are shapes by kind;
    each edge is labelled with the kind of identifier shared. Beyond `max_nodes` the busiest customers and their
    identifiers are drawn and the message says how many were left out.
    """
    from pyvis.network import Network

    risk = risk or {}
    edges = edges[["customer_id", "kind", "identifier"]].astype(str).drop_duplicates()
    customers = edges["customer_id"].value_counts()  # busiest first
    total = len(customers) + len(edges[["kind", "identifier"]].drop_duplicates())
    if total > max_nodes:
        kept, count = [], 0
        idents: set = set()
        for cust in customers.index:  # bounded by max_nodes: a few hundred iterations at most
            mine = edges.loc[edges["customer_id"] == cust, ["kind", "identifier"]].itertuples(index=False, name=None)
            new = set(mine) - idents
            if count + 1 + len(new) > max_nodes:
                break
            kept.append(cust)
            idents |= new
            count += 1 + len(new)
        edges = edges[edges["customer_id"].isin(kept)]
    cust_ids = list(dict.fromkeys(edges["customer_id"]))
    ident_keys = list(dict.fromkeys(zip(edges["kind"], edges["identifier"])))
    code = {("customer", c): i for i, c in enumerate(cust_ids)}
    code.update({k: len(cust_ids) + i for i, k in enumerate(ident_keys)})
    net = Network(height=height, width="100%", cdn_resources="in_line")
    esc = html.escape
    net.add_nodes(
        list(range(len(cust_ids))),
        label=[esc(c) for c in cust_ids],
        title=[esc(f"customer {c} · risk {risk.get(c, float('nan')):.2f}") for c in cust_ids],
        color=[_risk_colour(risk.get(c, float("nan"))) for c in cust_ids],
        shape=["dot"] * len(cust_ids), size=[16] * len(cust_ids),
    )
    net.add_nodes(
        list(range(len(cust_ids), len(cust_ids) + len(ident_keys))),
        label=[esc(v if len(v) <= 24 else v[:22] + "…") for _, v in ident_keys],
        title=[esc(f"{k}: {v}") for k, v in ident_keys],
        color=[KIND_COLOURS.get(k, "#999999") for k, _ in ident_keys],
        shape=[KIND_SHAPES.get(k, "ellipse") for k, _ in ident_keys], size=[12] * len(ident_keys),
    )
    for c, k, v in edges.itertuples(index=False, name=None):  # edges of at most max_nodes nodes
        net.add_edge(code[("customer", c)], code[(k, v)], label=esc(k), title=esc(f"shares {k}"))
    net.set_options(json.dumps({
        "physics": {"solver": "forceAtlas2Based", "stabilization": {"enabled": True, "iterations": 300,
                                                                    "fit": True},
                    "forceAtlas2Based": {"gravitationalConstant": -60, "springLength": 90}},
        "edges": {"font": {"size": 9, "align": "middle"}, "color": {"color": "#aaaaaa"}},
        "interaction": {"hover": True, "navigationButtons": True},
    }))
    out = net.generate_html()
    drawn = len(cust_ids) + len(ident_keys)
    message = (f"{drawn:,} of {total:,} nodes drawn ({len(cust_ids):,} busiest customers); larger graphs do not "
               f"draw smoothly in a browser — download the members table for the rest"
               if drawn < total else f"{len(cust_ids):,} customers, {len(ident_keys):,} shared identifiers")
    return RingGraph(out, drawn, len(edges), total, message)


def ring_graph(result: RingResult, ring_id: int, risk: dict[str, float] | None = None,
               max_nodes: int = MAX_GRAPH_NODES) -> RingGraph:
    """The pyvis drawing of one ring of a RingResult."""
    if ring_id not in set(result.rings["ring_id"].tolist()):
        raise RingError(f"no ring {ring_id}; there are {len(result.rings)} rings")
    return ring_graph_html(result.edges[result.edges["ring_id"] == ring_id], risk, max_nodes=max_nodes)
