"""Feature lab: data scientists define, check, evaluate and ship their own point-in-time features.

`defs` (what a definition is and the whitelist for typed text), `sql` (one window expression per definition),
`store` (the versioned `feature_defs` table and the backfill of `features`), `evaluate` (per-month quality,
leakage checks, preview, a challenger with and without the feature). `evaluate` is imported on its own
(`from fraudlab.featurelab.evaluate import ...`) because it depends on fraudlab.features, which depends on `store`.
"""
from fraudlab.featurelab.defs import AGGREGATES, KEYS, FeatureDef, check_definition, parse_window
from fraudlab.featurelab.sql import compile_sql, relation_sql
from fraudlab.featurelab.store import (
    add_definition,
    drop_definition,
    feature_set_version,
    get_definition,
    list_definitions,
)

__all__ = ["AGGREGATES", "KEYS", "FeatureDef", "add_definition", "check_definition", "compile_sql",
           "drop_definition", "feature_set_version", "get_definition", "list_definitions", "parse_window",
           "relation_sql"]
