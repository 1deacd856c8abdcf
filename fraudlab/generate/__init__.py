"""Transaction simulator: a customer population with daily rhythms, injected fraud patterns, drift and ground truth.

Everything is vectorised NumPy on integer codes; identifiers become strings once, at the end, through Arrow.
Same seed, same data.

>>> sim = simulate(rows=5_000, seed=1, days=30)
>>> len(sim.transactions), bool(sim.transactions["is_fraud"].any())
(5000, True)

Modules: ``world`` (constants and records) → ``population`` (customers, merchants, legitimate spending) →
``patterns`` (injected fraud with ground truth) → ``assembly`` (drift, label delays, canonical columns, files).
"""
from fraudlab.generate.assembly import simulate, write_simulation
from fraudlab.generate.world import DRIFTS, LEGIT_LABEL_DAYS, NEW_PATTERN, PATTERN_SHARES, PATTERNS, Simulation

__all__ = ["DRIFTS", "LEGIT_LABEL_DAYS", "NEW_PATTERN", "PATTERN_SHARES", "PATTERNS", "Simulation", "simulate",
           "write_simulation"]
