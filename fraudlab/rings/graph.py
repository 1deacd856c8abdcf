"""The entity graph: customers linked through shared identifiers, components, Louvain splits of large ones."""
from __future__ import annotations

from typing import Iterable, Sequence

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from fraudlab.rings.records import (
    DEFAULT_HUB_THRESHOLD,
    DEFAULT_MAX_RING_SIZE,
    IDENTIFIER_COLUMNS,
    MAX_PROJECTED_LINKS,
    MAX_SPLIT_DEPTH,
    EntityGraph,
    RingError,
    display_identifier,
)
from fraudlab.workspace import Workspace


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
    hubs_df["identifier"] = display_identifier(hubs_df["kind"], hubs_df["identifier"])
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
