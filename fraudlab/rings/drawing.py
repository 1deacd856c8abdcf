"""A ring drawn with pyvis, every data-derived label escaped."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudlab.rings.records import MAX_GRAPH_NODES, RingError, RingResult

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
