"""Transaction simulator: a customer population with daily rhythms, injected fraud patterns, drift and ground truth.

Everything is vectorised NumPy on integer codes; identifiers become strings once, at the end, through Arrow.
Same seed, same data.

>>> sim = simulate(rows=5_000, seed=1, days=30)
>>> len(sim.transactions), bool(sim.transactions["is_fraud"].any())
(5000, True)
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudlab.errors import FraudlabError

PATTERNS = ("card_testing", "account_takeover", "ring", "merchant_compromise", "bust_out")
NEW_PATTERN = "gift_card_cashout"
PATTERN_SHARES = {"card_testing": 0.25, "account_takeover": 0.2, "ring": 0.25,
                  "merchant_compromise": 0.15, "bust_out": 0.15}
DRIFTS = ("gradual", "sudden", "pipeline_break", "new_pattern")
DAY = 86_400.0

# country: (weight as home, lat, lon, currency)
COUNTRIES = {
    "US": (0.45, 39.8, -98.6, "USD"), "GB": (0.15, 52.4, -1.5, "GBP"), "DE": (0.10, 51.2, 10.4, "EUR"),
    "FR": (0.08, 46.6, 2.2, "EUR"), "ES": (0.05, 40.4, -3.7, "EUR"), "IT": (0.05, 42.8, 12.6, "EUR"),
    "NL": (0.04, 52.1, 5.3, "EUR"), "CA": (0.05, 56.1, -106.3, "CAD"), "AU": (0.03, -25.3, 133.8, "AUD"),
    # never a home country in the base population: where takeovers come from, and the "sudden" new source
    "BR": (0.0, -14.2, -51.9, "BRL"), "NG": (0.0, 9.1, 8.7, "NGN"), "RO": (0.0, 45.9, 24.9, "RON"),
    "VN": (0.0, 14.1, 108.3, "VND"), "ID": (0.0, -0.8, 113.9, "IDR"),
}
COUNTRY_NAMES = np.array(list(COUNTRIES))
HOME_WEIGHTS = np.array([c[0] for c in COUNTRIES.values()])
COUNTRY_LAT = np.array([c[1] for c in COUNTRIES.values()])
COUNTRY_LON = np.array([c[2] for c in COUNTRIES.values()])
COUNTRY_CURRENCY = np.array([c[3] for c in COUNTRIES.values()])
FOREIGN = np.array([i for i, w in enumerate(HOME_WEIGHTS) if w == 0])
SUDDEN_COUNTRY = int(np.flatnonzero(COUNTRY_NAMES == "BR")[0])

# category: (log mean amount, share online, weight among legit purchases)
CATEGORIES = {
    "grocery": (3.4, 0.05, 0.20), "gas_transport": (3.7, 0.0, 0.12), "restaurants": (3.3, 0.10, 0.14),
    "shopping_pos": (4.0, 0.0, 0.10), "shopping_net": (4.1, 1.0, 0.12), "entertainment": (3.6, 0.40, 0.07),
    "travel": (5.6, 0.70, 0.03), "health_fitness": (3.8, 0.10, 0.05), "home": (4.3, 0.20, 0.06),
    "electronics": (5.1, 0.60, 0.03), "jewelry": (5.3, 0.30, 0.01), "personal_care": (3.3, 0.10, 0.05),
    "cash_withdrawal": (4.6, 0.0, 0.02), "gift_cards": (4.2, 1.0, 0.0),
}
CATEGORY_NAMES = np.array(list(CATEGORIES))
CAT_MU = np.array([c[0] for c in CATEGORIES.values()])
CAT_ONLINE = np.array([c[1] for c in CATEGORIES.values()])
CAT_WEIGHT = np.array([c[2] for c in CATEGORIES.values()])
CAT = {name: i for i, name in enumerate(CATEGORY_NAMES)}
ATM = CAT["cash_withdrawal"]
CHANNELS = np.array(["pos", "online", "atm"])
HOUR_WEIGHTS = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4, 5, 5.5, 6, 7, 6.5, 6, 6, 6.5, 7.5, 8, 7.5, 6,
                         4.5, 3, 2], dtype=float)
EMAIL_DOMAINS = np.array(["mail.com", "inbox.net", "post.org", "webmail.io", "example.com"])
RING_EMAIL_DOMAIN = "quickmail.xyz"
LEGIT_LABEL_DAYS = 30.0  # a transaction nobody disputed for 30 days counts as a known legitimate label


@dataclass(frozen=True)
class Simulation:
    """Simulated transactions (canonical columns + label_ts), ground truth per fraud row, and the injected rings."""

    transactions: pd.DataFrame
    truth: pd.DataFrame  # transaction_id, pattern, ring_id (only fraud rows)
    rings: pd.DataFrame  # ring_id, customer_id
    params: dict


@dataclass
class _Population:
    """Customers and merchants as integer-coded arrays (index = code)."""

    country: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    spend: np.ndarray  # per-customer log offset of ticket size
    activity: np.ndarray
    join: np.ndarray  # seconds from start when the customer's activity begins
    n_devices: np.ndarray
    usual: np.ndarray  # customers x 8 usual merchant codes
    email_domain: np.ndarray
    merchant_cat: np.ndarray
    merchant_country: np.ndarray
    merchant_lat: np.ndarray
    merchant_lon: np.ndarray

    @property
    def size(self) -> int:
        return len(self.country)


@dataclass
class _Events:
    """Column arrays of a batch of transactions, integer-coded, time in seconds since the start."""

    cust: np.ndarray
    t: np.ndarray
    amount: np.ndarray
    merchant: np.ndarray
    device: np.ndarray  # -1: none
    ip: np.ndarray  # -1: none
    country: np.ndarray
    channel: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    fraud: bool = False
    pattern: np.ndarray | None = None
    ring: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.cust)


# ---------------------------------------------------------------------------------------------- population

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


def _customers(rng: np.random.Generator, n: int, span: float, merchants: dict, home: np.ndarray | None = None,
               join_lo: float = 0.0, new_share: float = 0.2) -> dict[str, np.ndarray]:
    """Customer attributes: home country, location, spend level, activity, devices, usual merchants."""
    if home is None:
        home = rng.choice(len(COUNTRY_NAMES), size=n, p=HOME_WEIGHTS / HOME_WEIGHTS.sum())
    join = np.where(rng.random(n) < new_share, rng.uniform(join_lo, span * 0.9, n), join_lo)
    return {"country": home, "lat": COUNTRY_LAT[home] + rng.normal(0, 3, n), "lon": COUNTRY_LON[home] + rng.normal(0, 5, n),
            "spend": rng.normal(0, 0.45, n), "activity": rng.gamma(1.3, 1.0, n), "join": join,
            "n_devices": rng.integers(1, 4, n), "usual": _usual_merchants(rng, home, merchants["country"]),
            "email_domain": rng.integers(0, len(EMAIL_DOMAINS), n)}


def _population(rng: np.random.Generator, customers: int, n_merchants: int, span: float) -> _Population:
    """The base population: customers and the merchants they buy from."""
    m = _merchants(rng, n_merchants)
    c = _customers(rng, customers, span, m)
    return _Population(c["country"], c["lat"], c["lon"], c["spend"], c["activity"], c["join"], c["n_devices"],
                       c["usual"], c["email_domain"], m["cat"], m["country"], m["lat"], m["lon"])


def _append_customers(pop: _Population, extra: dict[str, np.ndarray]) -> np.ndarray:
    """Add customers (ring accounts, a new source) to the population; return their codes."""
    start = pop.size
    for name in ("country", "lat", "lon", "spend", "activity", "join", "n_devices", "email_domain"):
        setattr(pop, name, np.concatenate([getattr(pop, name), extra[name]]))
    pop.usual = np.concatenate([pop.usual, extra["usual"]])
    return np.arange(start, pop.size)


# ---------------------------------------------------------------------------------------------- events

def _day_rhythm(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Move each time to a typical hour of the same day (people shop by day, little at night)."""
    hour = rng.choice(24, size=len(t), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    return np.floor(t / DAY) * DAY + hour * 3600.0 + rng.random(len(t)) * 3600.0


def _legit(rng: np.random.Generator, pop: _Population, n: int, span: float, custs: np.ndarray,
           t_lo: float = 0.0, online_boost: float = 0.0) -> _Events:
    """Ordinary purchases: usual merchants, own devices, home country, customer's spend level."""
    weights = pop.activity[custs] * (span - np.maximum(pop.join[custs], t_lo)).clip(DAY)
    cust = custs[np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(n), side="right").clip(0, len(custs) - 1)]
    lo = np.maximum(pop.join[cust], t_lo)
    t = _day_rhythm(rng, lo + rng.random(n) * (span - lo))
    t = np.clip(t, lo, span - 1)
    usual = rng.random(n) < 0.8
    pick = pop.usual[cust, rng.integers(0, pop.usual.shape[1], n)]
    other = pop.usual[rng.integers(0, pop.size, n), 0]  # some merchant of a random customer's country
    merchant = np.where(usual, pick, other)
    cat = pop.merchant_cat[merchant]
    amount = np.round(np.exp(CAT_MU[cat] + pop.spend[cust] + rng.normal(0, 0.6, n)), 2)
    online = rng.random(n) < np.clip(CAT_ONLINE[cat] + online_boost, 0, 1)
    channel = np.where(cat == ATM, 2, online.astype(np.int64))
    travelling = rng.random(n) < 0.03
    country = np.where(travelling, pop.merchant_country[merchant], pop.country[cust])
    device = cust * 3 + (rng.random(n) * pop.n_devices[cust]).astype(np.int64)
    ip = _home_ip(cust, rng.integers(0, 2, n))
    hub = online & (rng.random(n) < 0.03)  # public Wi-Fi / carrier NAT addresses shared by many customers
    ip = np.where(hub, _hub_ip(rng.integers(0, 30, n)), ip)
    ip = np.where(channel == 1, ip, -1)
    return _Events(cust, t, amount, merchant, device, ip, country, channel,
                   pop.lat[cust] + rng.normal(0, 0.05, n), pop.lon[cust] + rng.normal(0, 0.05, n))


def _home_ip(cust: np.ndarray, k: np.ndarray) -> np.ndarray:
    return (10 << 24) + cust * 2 + k


def _hub_ip(k: np.ndarray) -> np.ndarray:
    return (100 << 24) + (64 << 16) + k


def _fraud_ip(k: np.ndarray) -> np.ndarray:
    return (185 << 24) + (k % (1 << 24))


def _between(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """Uniform times in [lo, hi); short simulations shrink the lower bound instead of failing."""
    hi = max(hi, DAY)
    if hi <= lo:
        lo = hi * 0.25
    return rng.uniform(lo, hi, n)


def _burst_times(rng: np.random.Generator, sizes: np.ndarray, starts: np.ndarray, mean_gap: float) -> np.ndarray:
    """Times of events in bursts: each burst starts at its start and steps by exponential gaps."""
    cum = np.cumsum(rng.exponential(mean_gap, sizes.sum()))
    first = np.cumsum(sizes) - sizes
    return np.repeat(starts, sizes) + cum - np.repeat(cum[first], sizes)


def _sizes(rng: np.random.Generator, total: int, lo: int, hi: int) -> np.ndarray:
    """Incident sizes in [lo, hi] that add up to exactly `total`."""
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    sizes = rng.integers(lo, hi + 1, total // lo + 1)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), total) + 1]
    sizes[-1] -= sizes.sum() - total
    return sizes[sizes > 0]


def _victims(rng: np.random.Generator, pop: _Population, n: int, base: int, before: np.ndarray) -> np.ndarray:
    """Existing customers (active before the given times) to be victims of n incidents."""
    cand = rng.integers(0, base, n * 4).reshape(n, 4) if n else np.zeros((0, 4), dtype=np.int64)
    ok = pop.join[cand] < before[:, None] - 3 * DAY
    return cand[np.arange(n), ok.argmax(axis=1)]


def _foreign_bursts(rng, pop, n, span, base, sizes_range, earliest_days, mean_gap):
    """Incidents on victims' accounts from abroad: (victim per row, times, incident per row, country per row)."""
    sizes = _sizes(rng, n, *sizes_range)
    k = len(sizes)
    starts = _between(rng, earliest_days * DAY, span - DAY, k)
    victim = _victims(rng, pop, k, base, starts)
    t = _burst_times(rng, sizes, starts, mean_gap)
    return np.repeat(victim, sizes), t, np.repeat(np.arange(k), sizes), np.repeat(rng.choice(FOREIGN, k), sizes)


def _from_abroad(rng, cust, t, amount, merchant, device, where, pattern: str) -> _Events:
    """Online events from a fraudster's device and IP, located in a foreign country."""
    n = len(cust)
    return _Events(cust, t, amount, merchant, device, _fraud_ip(device), where, np.ones(n, dtype=np.int64),
                   COUNTRY_LAT[where] + rng.normal(0, 1, n), COUNTRY_LON[where] + rng.normal(0, 1, n), True,
                   np.full(n, pattern))


def _card_testing(rng, pop, n, span, base, fraud_dev) -> _Events:
    """Bursts of tiny online payments, seconds apart, from a fraudster's device, at a few online merchants."""
    cust, t, inc, where = _foreign_bursts(rng, pop, n, span, base, (5, 15), 2, 45.0)
    online_merchants = np.flatnonzero(CAT_ONLINE[pop.merchant_cat] == 1.0)
    merchant = online_merchants[rng.integers(0, len(online_merchants), inc.max() + 1 if n else 0)][inc]
    return _from_abroad(rng, cust, t, np.round(rng.uniform(0.5, 4.99, n), 2), merchant, fraud_dev + inc, where,
                        "card_testing")


def _account_takeover(rng, pop, n, span, base, fraud_dev) -> _Events:
    """A victim's account used from a new device in a new country for a few large online purchases."""
    cust, t, inc, where = _foreign_bursts(rng, pop, n, span, base, (1, 4), 5, 1800.0)
    big = np.array([CAT["electronics"], CAT["jewelry"], CAT["travel"], CAT["shopping_net"]])
    merchant = _merchant_of_cats(rng, pop, big, n)
    amount = np.round(np.exp(CAT_MU[pop.merchant_cat[merchant]] + pop.spend[cust]) * rng.uniform(3, 12, n), 2)
    return _from_abroad(rng, cust, t, amount, merchant, fraud_dev + inc, where, "account_takeover")


def _merchant_of_cats(rng: np.random.Generator, pop: _Population, cats: np.ndarray, n: int) -> np.ndarray:
    """n merchants drawn among those of the given categories."""
    pool = np.flatnonzero(np.isin(pop.merchant_cat, cats))
    return pool[rng.integers(0, len(pool), n)]


def _ring(rng, pop, n, span, fraud_dev, ring_start) -> tuple[_Events, np.ndarray, np.ndarray]:
    """Groups of new accounts sharing devices and IPs, buying at the same merchants in the same hours."""
    ring_rows = _sizes(rng, n, 12, 40)
    k = len(ring_rows)
    members = np.clip(ring_rows // 3, 3, 10)
    total_members = int(members.sum())
    ring_of_member = np.repeat(np.arange(k), members)
    t0 = _between(rng, 5 * DAY, span - 12 * DAY if span > 20 * DAY else span / 2, k)
    home = rng.choice(len(COUNTRY_NAMES), size=k, p=HOME_WEIGHTS / HOME_WEIGHTS.sum())
    extra = _customers(rng, total_members, span, {"country": pop.merchant_country}, home=home[ring_of_member])
    extra["join"] = t0[ring_of_member] - rng.uniform(0, 3 * DAY, total_members)
    extra["n_devices"] = np.ones(total_members, dtype=np.int64)
    codes = _append_customers(pop, extra)
    # each row: its ring, then a member of that ring
    ring = np.repeat(np.arange(k), ring_rows)
    first_member = np.cumsum(members) - members
    member = first_member[ring] + (rng.random(n) * members[ring]).astype(np.int64)
    cust = codes[member]
    sessions = rng.uniform(0, 8 * DAY, (k, 3)) + t0[:, None]
    t = sessions[ring, rng.integers(0, 3, n)] + rng.uniform(0, 2 * 3600, n)
    t = np.maximum(t, pop.join[cust] + 60)
    ring_merchants = _merchant_of_cats(rng, pop, np.array([CAT["electronics"], CAT["shopping_net"], CAT["gift_cards"],
                                                            CAT["jewelry"]]), 3 * k).reshape(k, 3)
    merchant = ring_merchants[ring, rng.integers(0, 3, n)]
    device = fraud_dev + ring * 2 + rng.integers(0, 2, n)
    ip = _fraud_ip(fraud_dev + 50_000_000 + ring * 2 + rng.integers(0, 2, n))
    where = home[ring]
    events = _Events(cust, t, np.round(rng.uniform(120, 950, n), 2), merchant, device, ip, where,
                     np.ones(n, dtype=np.int64), pop.lat[cust] + rng.normal(0, 0.05, n),
                     pop.lon[cust] + rng.normal(0, 0.05, n), True, np.full(n, "ring"), ring + ring_start)
    return events, codes, ring_of_member + ring_start


def _merchant_compromise(rng, pop, n, span, base) -> _Events:
    """A compromised terminal: for two weeks, cloned cards of customers of its country are used at it."""
    sizes = _sizes(rng, n, 15, 40)
    k = len(sizes)
    pos_merchants = np.flatnonzero(CAT_ONLINE[pop.merchant_cat] == 0.0)
    merchant = np.repeat(pos_merchants[rng.integers(0, len(pos_merchants), k)], sizes)
    starts = np.repeat(_between(rng, 3 * DAY, span - 15 * DAY, k), sizes)
    t = _day_rhythm(rng, starts + rng.uniform(0, 14 * DAY, n)).clip(0, span - 1)
    cust = _customers_of_country(rng, pop, base, pop.merchant_country[merchant])
    amount = np.round(np.exp(CAT_MU[pop.merchant_cat[merchant]] + pop.spend[cust]) * rng.uniform(1.5, 4, n), 2)
    where = pop.merchant_country[merchant]
    channel = np.where(pop.merchant_cat[merchant] == ATM, 2, 0)
    return _Events(cust, t, amount, merchant, cust * 3, np.full(n, -1), where, channel,
                   pop.merchant_lat[merchant], pop.merchant_lon[merchant], True, np.full(n, "merchant_compromise"))


def _customers_of_country(rng: np.random.Generator, pop: _Population, base: int, country: np.ndarray) -> np.ndarray:
    """For each wanted country, a random base customer living there."""
    order = np.argsort(pop.country[:base], kind="stable")
    sorted_c = pop.country[:base][order]
    lo = np.searchsorted(sorted_c, country, side="left")
    hi = np.searchsorted(sorted_c, country, side="right")
    pick = lo + (rng.random(len(country)) * np.maximum(hi - lo, 1)).astype(np.int64)
    return order[np.clip(pick, 0, base - 1)]


def _bust_out(rng, pop, n, span, base) -> _Events:
    """A long-standing customer suddenly maxes out: many large purchases in two days, then gone."""
    sizes = _sizes(rng, n, 5, 10)
    k = len(sizes)
    starts = _between(rng, span * 0.3, span - 2 * DAY, k)
    victim = _victims(rng, pop, k, base, starts)
    cust = np.repeat(victim, sizes)
    t = np.repeat(starts, sizes) + rng.uniform(0, 2 * DAY, n)
    merchant = _merchant_of_cats(rng, pop, np.array([CAT["electronics"], CAT["jewelry"], CAT["travel"],
                                                     CAT["cash_withdrawal"]]), n)
    cat = pop.merchant_cat[merchant]
    amount = np.round(np.exp(CAT_MU[cat] + pop.spend[cust]) * rng.uniform(3, 8, n), 2)
    online = rng.random(n) < CAT_ONLINE[cat]
    channel = np.where(cat == ATM, 2, online.astype(np.int64))
    ip = np.where(channel == 1, _home_ip(cust, 0), -1)
    return _Events(cust, t, amount, merchant, cust * 3, ip, pop.country[cust], channel,
                   pop.lat[cust] + rng.normal(0, 0.05, n), pop.lon[cust] + rng.normal(0, 0.05, n), True,
                   np.full(n, "bust_out"))


def _gift_card_cashout(rng, pop, n, span, base, fraud_dev, t_lo) -> _Events:
    """The new pattern: night-time bursts of round gift-card purchases on victims' accounts from shared devices."""
    sizes = _sizes(rng, n, 3, 6)
    k = len(sizes)
    starts = np.floor(_between(rng, t_lo, span - DAY, k) / DAY) * DAY + rng.uniform(1, 4, k) * 3600
    victim = _victims(rng, pop, k, base, starts)
    cust = np.repeat(victim, sizes)
    t = _burst_times(rng, sizes, starts, 300.0)
    merchant = _merchant_of_cats(rng, pop, np.array([CAT["gift_cards"]]), n)
    device = fraud_dev + 90_000_000 + np.repeat(rng.integers(0, max(k // 4, 1), k), sizes)
    return _Events(cust, t, rng.integers(2, 9, n) * 25.0, merchant, device, _fraud_ip(device), pop.country[cust],
                   np.ones(n, dtype=np.int64), pop.lat[cust] + rng.normal(0, 0.05, n),
                   pop.lon[cust] + rng.normal(0, 0.05, n), True, np.full(n, NEW_PATTERN))


# ---------------------------------------------------------------------------------------------- assembly

def _concat(parts: list[_Events]) -> dict[str, np.ndarray]:
    """One set of columns from many event batches, with fraud flags, patterns and ring ids."""
    out = {name: np.concatenate([getattr(p, name) for p in parts])
           for name in ("cust", "t", "amount", "merchant", "device", "ip", "country", "channel", "lat", "lon")}
    out["fraud"] = np.concatenate([np.full(len(p), p.fraud) for p in parts])
    out["pattern"] = np.concatenate([p.pattern if p.pattern is not None else np.full(len(p), "") for p in parts])
    out["ring"] = np.concatenate([p.ring if p.ring is not None else np.full(len(p), -1) for p in parts])
    return out


def _apply_drift(rng: np.random.Generator, cols: dict, drift: tuple[str, ...], t_drift: float, span: float) -> None:
    """Change the data after the drift start in place: inflation, a broken pipeline."""
    after = cols["t"] >= t_drift
    if "gradual" in drift:
        progress = np.clip((cols["t"] - t_drift) / max(span - t_drift, 1.0), 0, 1)
        cols["amount"] = np.round(cols["amount"] * (1 + 0.8 * progress), 2)
    if "pipeline_break" in drift:
        cols["amount"] = np.where(after, np.round(cols["amount"] * 100, 0), cols["amount"])
        cols["device"] = np.where(after, -1, cols["device"])


def _labels(rng: np.random.Generator, t: np.ndarray, fraud: np.ndarray) -> np.ndarray:
    """When each label becomes known: frauds after a chargeback delay, legitimate rows after a maturity period."""
    fraud_delay = (1 + rng.gamma(2.0, 4.0, len(t))) * DAY
    return t + np.where(fraud, fraud_delay, LEGIT_LABEL_DAYS * DAY)


def _format(prefix: str, codes: np.ndarray, width: int) -> pa.Array:
    """Codes to ids like C0000042 (nulls where code < 0), through Arrow."""
    arr = pa.array(codes, mask=codes < 0)
    text = pc.utf8_lpad(pc.cast(arr, pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), text, "")


def _format_ip(codes: np.ndarray) -> pa.Array:
    """Integer IPv4 addresses to dotted text (null where code < 0)."""
    mask = codes < 0
    parts = [pc.cast(pa.array((codes >> s) & 255, mask=mask), pa.string()) for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def _card_numbers(n_customers: int, seed: int) -> np.ndarray:
    """A 16-digit card number per customer (Visa-like prefix), deterministic from the seed."""
    rng = np.random.default_rng(seed + 7919)
    return 4_000_000_000_000_000 + rng.integers(0, 10**15, n_customers, dtype=np.int64)


def simulate(rows: int = 100_000, seed: int = 0, *, customers: int | None = None, days: int = 90,
             start: str = "2026-01-01", fraud_rate: float = 0.007, drift: tuple[str, ...] | list[str] = (),
             drift_start: float = 0.5) -> Simulation:
    """Simulate `rows` transactions over `days` days with injected fraud patterns and optional drift."""
    drift = tuple(drift)
    unknown = [d for d in drift if d not in DRIFTS]
    if unknown:
        raise FraudlabError(f"unknown drift {unknown}; choose from {', '.join(DRIFTS)}")
    if rows < 100 or days < 2:
        raise FraudlabError("simulate at least 100 rows over at least 2 days")
    if not 0 <= fraud_rate < 0.5:
        raise FraudlabError("fraud_rate must be in [0, 0.5)")
    rng = np.random.default_rng(seed)
    span = days * DAY
    t_drift = span * drift_start
    n_customers = customers or max(rows // 20, 50)
    pop = _population(rng, n_customers, max(rows // 200, 60), span)
    base = n_customers

    n_fraud = int(round(rows * fraud_rate))
    shares = dict(PATTERN_SHARES)
    if "new_pattern" in drift:
        shares[NEW_PATTERN] = 0.25
    total_share = sum(shares.values())
    counts = {p: int(n_fraud * s / total_share) for p, s in shares.items()}
    counts["card_testing"] += n_fraud - sum(counts.values())
    fraud_dev = 3 * (n_customers + rows)  # fraud device codes live above every customer's own devices

    parts: list[_Events] = []
    ring_events, ring_customers, ring_ids = _ring(rng, pop, counts["ring"], span, fraud_dev, 0)
    parts += [
        _card_testing(rng, pop, counts["card_testing"], span, base, fraud_dev + 10_000_000),
        _account_takeover(rng, pop, counts["account_takeover"], span, base, fraud_dev + 20_000_000),
        ring_events,
        _merchant_compromise(rng, pop, counts["merchant_compromise"], span, base),
        _bust_out(rng, pop, counts["bust_out"], span, base),
    ]
    if NEW_PATTERN in counts:
        parts.append(_gift_card_cashout(rng, pop, counts[NEW_PATTERN], span, base, fraud_dev, t_drift))
    n_legit = rows - sum(len(p) for p in parts)
    base_custs = np.arange(base)
    if "sudden" in drift:
        n_new = int(n_legit * 0.25 * (1 - drift_start))
        extra = _customers(rng, max(n_new // 15, 10), span, {"country": pop.merchant_country},
                           home=np.full(max(n_new // 15, 10), SUDDEN_COUNTRY), join_lo=t_drift, new_share=0.0)
        extra["spend"] = extra["spend"] + 1.2  # amounts in a weaker currency
        new_custs = _append_customers(pop, extra)
        new_source = _legit(rng, pop, n_new, span, new_custs, t_lo=t_drift, online_boost=0.3)
        parts.append(new_source)
        n_legit -= n_new
    parts.append(_legit(rng, pop, n_legit, span, base_custs))

    cols = _concat(parts)
    cols["t"] = np.floor(np.clip(cols["t"], 0, span - 1))
    _apply_drift(rng, cols, drift, t_drift, span)
    label_t = _labels(rng, cols["t"], cols["fraud"])
    order = np.lexsort((cols["cust"], cols["t"]))
    cols = {k: v[order] for k, v in cols.items()}
    label_t = label_t[order]
    return _build(cols, label_t, pop, seed, start, ring_customers, ring_ids,
                  dict(rows=rows, seed=seed, customers=n_customers, days=days, start=start, fraud_rate=fraud_rate,
                       drift=list(drift), drift_start=drift_start))


def _build(cols: dict, label_t: np.ndarray, pop: _Population, seed: int, start: str, ring_customers: np.ndarray,
           ring_ids: np.ndarray, params: dict) -> Simulation:
    """Turn integer-coded columns into the canonical string/time columns and the truth tables."""
    n = len(cols["t"])
    origin = np.datetime64(pd.Timestamp(start).to_datetime64(), "us")
    ts = origin + (cols["t"] * 1e6).astype("timedelta64[us]")
    label_ts = origin + (label_t * 1e6).astype("timedelta64[us]")
    cards = _card_numbers(pop.size, seed)
    cust = cols["cust"]
    tx_ids = _format("T", np.arange(1, n + 1), 10)
    customer_ids = _format("C", cust, 7)
    email_domain = pa.array(EMAIL_DOMAINS[pop.email_domain[cust]])
    is_ring_customer = np.zeros(pop.size, dtype=bool)
    is_ring_customer[ring_customers] = True
    email_domain = pc.if_else(pa.array(is_ring_customer[cust]), pa.scalar(RING_EMAIL_DOMAIN), email_domain)
    email = pc.binary_join_element_wise(pc.utf8_lower(customer_ids), email_domain, "@")
    merchant = cols["merchant"]
    table = pa.table({
        "transaction_id": tx_ids,
        "ts": pa.array(ts),
        "amount": pa.array(cols["amount"]),
        "customer_id": customer_ids,
        "card_id": pc.cast(pa.array(cards[cust]), pa.string()),
        "device_id": _format("D", cols["device"], 9),
        "ip": _format_ip(cols["ip"]),
        "email": email,
        "merchant_id": _format("M", merchant, 6),
        "category": pa.array(CATEGORY_NAMES[pop.merchant_cat[merchant]]),
        "channel": pa.array(CHANNELS[cols["channel"]]),
        "country": pa.array(COUNTRY_NAMES[cols["country"]]),
        "currency": pa.array(COUNTRY_CURRENCY[pop.country[cust]]),
        "lat": pa.array(np.round(cols["lat"], 4)),
        "lon": pa.array(np.round(cols["lon"], 4)),
        "merchant_lat": pa.array(np.round(pop.merchant_lat[merchant], 4)),
        "merchant_lon": pa.array(np.round(pop.merchant_lon[merchant], 4)),
        "is_fraud": pa.array(cols["fraud"]),
        "label_ts": pa.array(label_ts),
    })
    fraud_rows = np.flatnonzero(cols["fraud"])
    truth = pd.DataFrame({"transaction_id": table["transaction_id"].take(pa.array(fraud_rows)).to_pandas(),
                          "pattern": cols["pattern"][fraud_rows],
                          "ring_id": cols["ring"][fraud_rows]})
    rings = pd.DataFrame({"ring_id": ring_ids,
                          "customer_id": _format("C", ring_customers, 7).to_pandas()})
    used = set(pd.unique(customer_ids.to_numpy(zero_copy_only=False)[fraud_rows]))
    rings = rings[rings["customer_id"].isin(used)].reset_index(drop=True)
    return Simulation(table.to_pandas(), truth, rings, params)


def write_simulation(sim: Simulation, out: str | Path) -> list[Path]:
    """Write transactions (.csv, .csv.gz or .parquet by suffix) and truth/rings Parquet beside it; return paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(sim.transactions, preserve_index=False)
    name = out.name.lower()
    if name.endswith(".parquet"):
        pq.write_table(table, out, compression="zstd", compression_level=9)
        stem = out.name[: -len(".parquet")]
    elif name.endswith(".csv") or name.endswith(".csv.gz"):
        sim.transactions.to_csv(out, index=False, date_format="%Y-%m-%d %H:%M:%S",
                                compression="gzip" if name.endswith(".gz") else None)
        stem = out.name[: -len(".csv.gz")] if name.endswith(".gz") else out.name[: -len(".csv")]
    else:
        raise FraudlabError(f"{out}: choose a .csv, .csv.gz or .parquet file name")
    truth_path = out.with_name(f"{stem}_truth.parquet")
    rings_path = out.with_name(f"{stem}_rings.parquet")
    sim.truth.to_parquet(truth_path, index=False)
    sim.rings.to_parquet(rings_path, index=False)
    return [out, truth_path, rings_path]


def register_cli(subparsers) -> None:
    """`python -m fraudlab generate --rows N --seed S --out FILE [--drift gradual ...]`."""
    p = subparsers.add_parser("generate", help="simulate transactions with injected fraud patterns")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--customers", type=int, default=None)
    p.add_argument("--fraud-rate", type=float, default=0.007)
    p.add_argument("--drift", nargs="*", default=[], choices=DRIFTS)
    p.add_argument("--drift-start", type=float, default=0.5)
    p.add_argument("--out", required=True, help="output file: .csv, .csv.gz or .parquet")
    p.set_defaults(func=_cli_generate)


def _cli_generate(args) -> int:
    began = time.perf_counter()
    sim = simulate(args.rows, args.seed, customers=args.customers, days=args.days, fraud_rate=args.fraud_rate,
                   drift=tuple(args.drift), drift_start=args.drift_start)
    simulated = time.perf_counter() - began
    paths = write_simulation(sim, args.out)
    print(f"{len(sim.transactions):,} rows ({int(sim.transactions['is_fraud'].sum()):,} fraud, "
          f"{sim.rings['ring_id'].nunique()} rings) simulated in {simulated:.1f} s, "
          f"written in {time.perf_counter() - began - simulated:.1f} s: " + ", ".join(map(str, paths)))
    return 0
