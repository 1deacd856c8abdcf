"""Fraud rings: customers linked through shared identifiers, split into rings, scored and drawn.

The entity graph is bipartite (customers — identifiers). DuckDB reduces the transactions to distinct
(identifier, customer) pairs with integer codes; scipy.sparse holds the incidence matrix and finds its
connected components; only components too large to be one ring go through Louvain (networkx), on their
own subgraph. Identifiers shared by more than ``hub_threshold`` customers (a public Wi-Fi IP, a
placeholder e-mail) are hubs: they are excluded and reported, so they do not glue everyone together.
"""
from fraudlab.jobs import Progress
from fraudlab.rings.drawing import KIND_COLOURS, KIND_SHAPES, RingGraph, ring_graph, ring_graph_html
from fraudlab.rings.find import find_rings, has_customers, shared_within
from fraudlab.rings.graph import GRAPH_STEPS_SQL, build_graph, components, split_large
from fraudlab.rings.members import members_arrow, ring_case_ids, ring_members, ring_transactions
from fraudlab.rings.records import (
    DEFAULT_HUB_THRESHOLD,
    DEFAULT_MAX_RING_SIZE,
    DEFAULT_NEW_ACCOUNT_DAYS,
    DEFAULT_WEIGHTS,
    FACT_COLUMNS,
    IDENTIFIER_COLUMNS,
    MAX_GRAPH_NODES,
    MAX_PROJECTED_LINKS,
    MAX_SPLIT_DEPTH,
    PART_COLUMNS,
    EntityGraph,
    RingError,
    RingResult,
    RingScore,
    display_identifier,
    noop,
)
from fraudlab.rings.scoring import RING_FACTS_SQL, combine_parts, ring_facts, score_parts

__all__ = ['DEFAULT_HUB_THRESHOLD', 'DEFAULT_MAX_RING_SIZE', 'DEFAULT_NEW_ACCOUNT_DAYS', 'DEFAULT_WEIGHTS', 'EntityGraph', 'FACT_COLUMNS', 'GRAPH_STEPS_SQL', 'IDENTIFIER_COLUMNS', 'KIND_COLOURS', 'KIND_SHAPES', 'MAX_GRAPH_NODES', 'MAX_PROJECTED_LINKS', 'MAX_SPLIT_DEPTH', 'PART_COLUMNS', 'Progress', 'RING_FACTS_SQL', 'RingError', 'RingGraph', 'RingResult', 'RingScore', 'build_graph', 'combine_parts', 'components', 'display_identifier', 'find_rings', 'has_customers', 'members_arrow', 'noop', 'ring_case_ids', 'ring_facts', 'ring_graph', 'ring_graph_html', 'ring_members', 'ring_transactions', 'score_parts', 'shared_within', 'split_large']
