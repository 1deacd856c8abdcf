"""Find rings: graph -> components -> splits -> facts -> ranked rings."""
from __future__ import annotations

import time
from typing import Iterable

import numpy as np
import pandas as pd

from fraudlab.jobs import Progress
from fraudlab.rings.graph import build_graph, components, split_large
from fraudlab.rings.records import (
    DEFAULT_HUB_THRESHOLD,
    DEFAULT_MAX_RING_SIZE,
    DEFAULT_NEW_ACCOUNT_DAYS,
    DEFAULT_WEIGHTS,
    FACT_COLUMNS,
    PART_COLUMNS,
    EntityGraph,
    RingError,
    RingResult,
    display_identifier,
    noop,
)
from fraudlab.rings.scoring import combine_parts, ring_facts, score_parts
from fraudlab.workspace import Workspace


def shared_within(graph: EntityGraph, labels: np.ndarray) -> np.ndarray:
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
    progress = progress or noop
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
    within = shared_within(graph, labels) & keep[graph.pair_customer]
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
        "identifier": display_identifier(kind, pd.Series(graph.ident_value[pi], dtype="string")),
        "ident_code": pi,
    })
    return edges.sort_values(["ring_id", "kind", "ident_code", "customer_id"]).reset_index(drop=True)


def has_customers(ws: Workspace) -> bool:
    """Whether transactions carry customer ids at all (rings need them)."""
    return bool(ws.scalar("SELECT count(customer_id) > 0 FROM transactions"))
