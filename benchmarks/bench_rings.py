"""Benchmark fraud rings: entity graph + connected components + communities (DuckDB + scipy.sparse + Louvain) vs a
plain networkx build of the same graph; end-to-end ranked rings; pyvis render time and HTML size at 200 / 2,000 nodes.

    python benchmarks/bench_rings.py --rows 1000000
"""
from __future__ import annotations

import argparse

import networkx as nx
import numpy as np
import pandas as pd
from _common import BENCH_DATA, measure, report, set_ratio

from fraudlab import rings
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.workspace import Workspace


def ours(ws: Workspace, hub: int, max_size: int) -> tuple[int, int]:
    """Graph in DuckDB → scipy components → Louvain inside components above max_size."""
    graph = rings.build_graph(ws, hub)
    comp = rings.components(graph)
    labels, _ = rings.split_large(graph, comp, max_size)
    return int(comp.max()) + 1 if len(comp) else 0, len(np.unique(labels))


def plain_networkx(tx: pd.DataFrame, hub: int, max_size: int) -> tuple[int, int]:
    """The plain networkx way: every transaction's (customer, identifier) links into one nx.Graph (it dedups),
    hub identifiers (degree > hub) removed, nx components, nx Louvain inside components above max_size."""
    g = nx.Graph()
    for col, kind in rings.IDENTIFIER_COLUMNS.items():
        part = tx[[col, "customer_id"]].dropna()
        g.add_edges_from(zip("c:" + part["customer_id"], f"{kind}:" + part[col]))
    g.remove_nodes_from([n for n, d in g.degree() if not n.startswith("c:") and d > hub])
    return _nx_rings(g, max_size)


def pandas_pruned_networkx(tx: pd.DataFrame, hub: int, max_size: int) -> tuple[int, int]:
    """A tuned plain way: pandas dedups pairs and drops identifiers shared by < 2 or > hub customers, then nx."""
    frames = []
    for col, kind in rings.IDENTIFIER_COLUMNS.items():
        pairs = tx[[col, "customer_id"]].dropna().drop_duplicates()
        frames.append(pd.DataFrame({"ident": kind + ":" + pairs[col], "customer_id": pairs["customer_id"]}))
    pairs = pd.concat(frames, ignore_index=True)
    counts = pairs.groupby("ident")["customer_id"].transform("size")
    pairs = pairs[(counts >= 2) & (counts <= hub)]
    g = nx.Graph()
    g.add_edges_from(zip("c:" + pairs["customer_id"], "i:" + pairs["ident"]))
    return _nx_rings(g, max_size)


def _nx_rings(g: nx.Graph, max_size: int) -> tuple[int, int]:
    """(components with >= 2 customers, rings after Louvain) in networkx."""
    n_comp, n_rings = 0, 0
    for nodes in nx.connected_components(g):
        customers = [n for n in nodes if n.startswith("c:")]
        if len(customers) < 2:
            continue
        n_comp += 1
        if len(customers) <= max_size:
            n_rings += 1
            continue
        projected = nx.bipartite.weighted_projected_graph(g.subgraph(nodes), customers)
        n_rings += len(nx.community.louvain_communities(projected, weight="weight", seed=0))
    return n_comp, n_rings


def pyvis_edges(nodes: int) -> pd.DataFrame:
    """A ring-shaped graph with about `nodes` nodes: half customers, each linked to 2 of the identifiers."""
    n_cust = nodes // 2
    rng = np.random.default_rng(0)
    cust = np.repeat(np.arange(n_cust), 2)
    ident = np.concatenate([np.arange(n_cust), rng.integers(0, n_cust, n_cust)])[np.argsort(np.r_[
        np.arange(n_cust) * 2, np.arange(n_cust) * 2 + 1])]
    return pd.DataFrame({"customer_id": [f"C{c}" for c in cust], "kind": "device",
                         "identifier": [f"D{i}" for i in ident]}).drop_duplicates()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--merchant-hours", type=float, default=0.0,
                        help="also time find_rings with a same-merchant window of this many hours (Louvain path)")
    parser.add_argument("--skip-networkx", action="store_true", help="skip the plain networkx baseline")
    args = parser.parse_args()
    BENCH_DATA.mkdir(exist_ok=True)
    path = BENCH_DATA / f"rings_{args.rows}.duckdb"
    path.unlink(missing_ok=True)
    sim = simulate(rows=args.rows, seed=5)
    ws = Workspace(path)
    ingest_table(ws, sim.transactions, source="bench")
    hub, max_size = rings.DEFAULT_HUB_THRESHOLD, rings.DEFAULT_MAX_RING_SIZE
    stages = []
    runs = [measure("graph + components + communities", args.rows, lambda: ours(ws, hub, max_size))
            for _ in range(3)]  # short stage: median of 3 runs
    mine, (n_comp, n_rings) = sorted(runs, key=lambda r: r[0].seconds)[1]
    mine.note = f"{n_comp:,} components → {n_rings:,} rings (median of 3)"
    stages.append(mine)
    if not args.skip_networkx:
        tx = sim.transactions[["customer_id", *rings.IDENTIFIER_COLUMNS]]
        base, (b_comp, b_rings) = measure("plain networkx (same graph)", args.rows,
                                          lambda: plain_networkx(tx, hub, max_size))
        base.note = f"{b_comp:,} components → {b_rings:,} rings" + ("" if b_comp == n_comp else " (MISMATCH)")
        set_ratio(mine, base)
        stages.append(base)
        tuned, (t_comp, _) = measure("pandas-pruned + networkx (same graph)", args.rows,
                                     lambda: pandas_pruned_networkx(tx, hub, max_size))
        tuned.note = (f"{t_comp:,} components; ours is {tuned.seconds / mine.seconds:.1f}x faster"
                      + ("" if t_comp == n_comp else " (MISMATCH)"))
        stages.append(tuned)
    truth = sim.rings.astype({"customer_id": str})
    del sim
    full, result = measure("end to end: ranked rings (find_rings)", args.rows, lambda: rings.find_rings(ws))
    k = int((truth.groupby("ring_id").size() >= 2).sum())
    found = set(result.members.loc[result.members["ring_id"] <= k, "customer_id"])
    hit = len(found & set(truth["customer_id"]))
    full.note = (f"{len(result.rings):,} rings, {len(result.hubs):,} hubs; top {k} rings: recall "
                 f"{hit / max(len(truth), 1):.3f}, precision {hit / max(len(found), 1):.3f}")
    stages.append(full)
    if args.merchant_hours:
        merch, res_m = measure(f"find_rings + {args.merchant_hours:g}-h merchant window", args.rows,
                               lambda: rings.find_rings(ws, merchant_window_hours=args.merchant_hours))
        found = set(res_m.members.loc[res_m.members["ring_id"] <= k, "customer_id"])
        hit = len(found & set(truth["customer_id"]))
        merch.note = (f"{res_m.stats['components_split']} component(s) split by Louvain → {len(res_m.rings):,} rings; "
                      f"recall {hit / max(len(truth), 1):.3f}, precision {hit / max(len(found), 1):.3f}")
        stages.append(merch)
    rings.ring_graph_html(pyvis_edges(10))  # warm-up: pyvis loads its template and vis.js on first use
    for nodes in (200, 2_000):
        edges = pyvis_edges(nodes)
        st_, graph = measure(f"pyvis render {nodes:,} nodes", len(edges),
                             lambda edges=edges, nodes=nodes: rings.ring_graph_html(edges, max_nodes=nodes + 10))
        st_.note = f"{graph.nodes:,} nodes, {graph.edges:,} edges, HTML {len(graph.html) / 2**20:.2f} MB"
        stages.append(st_)
    report(stages, title=f"rings at {args.rows:,} transactions")
    ws.close()
    path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
