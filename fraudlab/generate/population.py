"""Customers and merchants: homes, spend levels, daily rhythms, devices, usual merchants; legitimate spending."""
from __future__ import annotations

import numpy as np

from fraudlab.generate.world import (
    CAT,
    CAT_WEIGHT,
    CATEGORY_NAMES,
    COUNTRY_LAT,
    COUNTRY_LON,
    COUNTRY_NAMES,
    EMAIL_DOMAINS,
    HOME_WEIGHTS,
    Population,
)


def _merchants(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Merchants, sorted by country, with a category, a location and a popularity."""
    country = np.sort(rng.choice(len(COUNTRY_NAMES), size=n, p=HOME_WEIGHTS / HOME_WEIGHTS.sum()))
    base = CAT_WEIGHT.copy()
    base[CAT["gift_cards"]] = 0.01
    cat = rng.choice(len(CATEGORY_NAMES), size=n, p=base / base.sum())
    cat[rng.choice(n, len(CATEGORY_NAMES), replace=False)] = np.arange(len(CATEGORY_NAMES))  # every category exists
    return {"country": country, "cat": cat,
            "lat": COUNTRY_LAT[country] + rng.normal(0, 3, n), "lon": COUNTRY_LON[country] + rng.normal(0, 5, n)}


def _usual_merchants(rng: np.random.Generator, home: np.ndarray, merchant_country: np.ndarray, k: int = 8) -> np.ndarray:
    """For each customer, k merchants of the home country (merchants are sorted by country)."""
    starts = np.searchsorted(merchant_country, np.arange(len(COUNTRY_NAMES)), side="left")
    ends = np.searchsorted(merchant_country, np.arange(len(COUNTRY_NAMES)), side="right")
    lo, width = starts[home], ends[home] - starts[home]
    lo, width = np.where(width > 0, lo, 0), np.where(width > 0, width, len(merchant_country))  # none at home: any
    return (lo[:, None] + (rng.random((len(home), k)) * width[:, None]).astype(np.int64)).astype(np.int64)


def customers_of(rng: np.random.Generator, n: int, span: float, merchants: dict, home: np.ndarray | None = None,
               join_lo: float = 0.0, new_share: float = 0.2) -> dict[str, np.ndarray]:
    """Customer attributes: home country, location, spend level, activity, devices, usual merchants."""
    if home is None:
        home = rng.choice(len(COUNTRY_NAMES), size=n, p=HOME_WEIGHTS / HOME_WEIGHTS.sum())
    join = np.where(rng.random(n) < new_share, rng.uniform(join_lo, span * 0.9, n), join_lo)
    return {"country": home, "lat": COUNTRY_LAT[home] + rng.normal(0, 3, n), "lon": COUNTRY_LON[home] + rng.normal(0, 5, n),
            "spend": rng.normal(0, 0.45, n), "activity": rng.gamma(1.3, 1.0, n), "join": join,
            "n_devices": rng.integers(1, 4, n), "usual": _usual_merchants(rng, home, merchants["country"]),
            "email_domain": rng.integers(0, len(EMAIL_DOMAINS), n)}


def population_of(rng: np.random.Generator, customers: int, n_merchants: int, span: float) -> Population:
    """The base population: customers and the merchants they buy from."""
    m = _merchants(rng, n_merchants)
    c = customers_of(rng, customers, span, m)
    return Population(c["country"], c["lat"], c["lon"], c["spend"], c["activity"], c["join"], c["n_devices"],
                       c["usual"], c["email_domain"], m["cat"], m["country"], m["lat"], m["lon"])


def append_customers(pop: Population, extra: dict[str, np.ndarray]) -> np.ndarray:
    """Add customers (ring accounts, a new source) to the population; return their codes."""
    start = pop.size
    for name in ("country", "lat", "lon", "spend", "activity", "join", "n_devices", "email_domain"):
        setattr(pop, name, np.concatenate([getattr(pop, name), extra[name]]))
    pop.usual = np.concatenate([pop.usual, extra["usual"]])
    return np.arange(start, pop.size)
