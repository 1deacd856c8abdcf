"""Histogram grids frozen from the reference so both windows bin on the same edges."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraudlab.drift.settings import NUM_BINS


def fmt(x: float) -> str:
    return repr(float(x))


@dataclass
class Grid:
    """Equal-width bins on the (optionally asinh-transformed) reference core [p0.5, p99.5]."""

    lo: float
    hi: float
    transform: str  # identity | asinh
    bins: int = NUM_BINS

    @property
    def width(self) -> float:
        w = (self.hi - self.lo) / self.bins
        return w if w > 0 else 1.0

    def t_sql(self, x: str) -> str:
        return f"asinh({x})" if self.transform == "asinh" else x

    def bin_sql(self, x: str) -> str:
        """Bin index in [-1, bins]: -1 below the grid, `bins` above it (shifted by one when stored)."""
        return (f"least(greatest(floor(({self.t_sql(x)} - {fmt(self.lo)}) * {fmt(1.0 / self.width)})::BIGINT, -1), "
                f"{self.bins})")

    def centres(self) -> np.ndarray:
        c = self.lo + (np.arange(self.bins) + 0.5) * self.width
        return np.sinh(c) if self.transform == "asinh" else c

    def inverse(self, v: np.ndarray) -> np.ndarray:
        return np.sinh(v) if self.transform == "asinh" else v


def grid_from_quantiles(p_lo: float, p50: float, p_hi: float, vmin: float, vmax: float) -> Grid:
    skewed = (p_hi - p50) > 5 * max(p50 - p_lo, 1e-12) or (p50 - p_lo) > 5 * max(p_hi - p50, 1e-12)
    transform = "asinh" if skewed and (abs(p_hi) > 10 or abs(p_lo) > 10) else "identity"
    f = np.arcsinh if transform == "asinh" else (lambda v: v)
    lo, hi = float(f(p_lo)), float(f(p_hi))
    if not hi > lo:
        lo, hi = float(f(vmin)), float(f(vmax))
    if not hi > lo:  # constant core: one bin around the value
        lo, hi = lo - 0.5, lo + 0.5
    return Grid(lo, hi, transform)
