"""Injected fraud patterns with ground truth: card testing, account takeover, rings, merchant compromise, bust-out, gift-card cash-out."""
from __future__ import annotations

import numpy as np

from fraudlab.generate.population import append_customers, customers_of
from fraudlab.generate.world import (
    ATM,
    CAT,
    CAT_MU,
    CAT_ONLINE,
    COUNTRY_LAT,
    COUNTRY_LON,
    COUNTRY_NAMES,
    DAY,
    FOREIGN,
    HOME_WEIGHTS,
    HOUR_WEIGHTS,
    NEW_PATTERN,
    Events,
    Population,
)


def _day_rhythm(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Move each time to a typical hour of the same day (people shop by day, little at night)."""
    hour = rng.choice(24, size=len(t), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    return np.floor(t / DAY) * DAY + hour * 3600.0 + rng.random(len(t)) * 3600.0


def legit_of(rng: np.random.Generator, pop: Population, n: int, span: float, custs: np.ndarray,
           t_lo: float = 0.0, online_boost: float = 0.0) -> Events:
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
    return Events(cust, t, amount, merchant, device, ip, country, channel,
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


def _victims(rng: np.random.Generator, pop: Population, n: int, base: int, before: np.ndarray) -> np.ndarray:
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


def _from_abroad(rng, cust, t, amount, merchant, device, where, pattern: str) -> Events:
    """Online events from a fraudster's device and IP, located in a foreign country."""
    n = len(cust)
    return Events(cust, t, amount, merchant, device, _fraud_ip(device), where, np.ones(n, dtype=np.int64),
                   COUNTRY_LAT[where] + rng.normal(0, 1, n), COUNTRY_LON[where] + rng.normal(0, 1, n), True,
                   np.full(n, pattern))


def card_testing_of(rng, pop, n, span, base, fraud_dev) -> Events:
    """Bursts of tiny online payments, seconds apart, from a fraudster's device, at a few online merchants."""
    cust, t, inc, where = _foreign_bursts(rng, pop, n, span, base, (5, 15), 2, 45.0)
    online_merchants = np.flatnonzero(CAT_ONLINE[pop.merchant_cat] == 1.0)
    merchant = online_merchants[rng.integers(0, len(online_merchants), inc.max() + 1 if n else 0)][inc]
    return _from_abroad(rng, cust, t, np.round(rng.uniform(0.5, 4.99, n), 2), merchant, fraud_dev + inc, where,
                        "card_testing")


def account_takeover_of(rng, pop, n, span, base, fraud_dev) -> Events:
    """A victim's account used from a new device in a new country for a few large online purchases."""
    cust, t, inc, where = _foreign_bursts(rng, pop, n, span, base, (1, 4), 5, 1800.0)
    big = np.array([CAT["electronics"], CAT["jewelry"], CAT["travel"], CAT["shopping_net"]])
    merchant = _merchant_of_cats(rng, pop, big, n)
    amount = np.round(np.exp(CAT_MU[pop.merchant_cat[merchant]] + pop.spend[cust]) * rng.uniform(3, 12, n), 2)
    return _from_abroad(rng, cust, t, amount, merchant, fraud_dev + inc, where, "account_takeover")


def _merchant_of_cats(rng: np.random.Generator, pop: Population, cats: np.ndarray, n: int) -> np.ndarray:
    """n merchants drawn among those of the given categories."""
    pool = np.flatnonzero(np.isin(pop.merchant_cat, cats))
    return pool[rng.integers(0, len(pool), n)]


def ring_of(rng, pop, n, span, fraud_dev, ring_start) -> tuple[Events, np.ndarray, np.ndarray]:
    """Groups of new accounts sharing devices and IPs, buying at the same merchants in the same hours."""
    ring_rows = _sizes(rng, n, 12, 40)
    k = len(ring_rows)
    members = np.clip(ring_rows // 3, 3, 10)
    total_members = int(members.sum())
    ring_of_member = np.repeat(np.arange(k), members)
    t0 = _between(rng, 5 * DAY, span - 12 * DAY if span > 20 * DAY else span / 2, k)
    home = rng.choice(len(COUNTRY_NAMES), size=k, p=HOME_WEIGHTS / HOME_WEIGHTS.sum())
    extra = customers_of(rng, total_members, span, {"country": pop.merchant_country}, home=home[ring_of_member])
    extra["join"] = t0[ring_of_member] - rng.uniform(0, 3 * DAY, total_members)
    extra["n_devices"] = np.ones(total_members, dtype=np.int64)
    codes = append_customers(pop, extra)
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
    events = Events(cust, t, np.round(rng.uniform(120, 950, n), 2), merchant, device, ip, where,
                     np.ones(n, dtype=np.int64), pop.lat[cust] + rng.normal(0, 0.05, n),
                     pop.lon[cust] + rng.normal(0, 0.05, n), True, np.full(n, "ring"), ring + ring_start)
    return events, codes, ring_of_member + ring_start


def merchant_compromise_of(rng, pop, n, span, base) -> Events:
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
    return Events(cust, t, amount, merchant, cust * 3, np.full(n, -1), where, channel,
                   pop.merchant_lat[merchant], pop.merchant_lon[merchant], True, np.full(n, "merchant_compromise"))


def _customers_of_country(rng: np.random.Generator, pop: Population, base: int, country: np.ndarray) -> np.ndarray:
    """For each wanted country, a random base customer living there."""
    order = np.argsort(pop.country[:base], kind="stable")
    sorted_c = pop.country[:base][order]
    lo = np.searchsorted(sorted_c, country, side="left")
    hi = np.searchsorted(sorted_c, country, side="right")
    pick = lo + (rng.random(len(country)) * np.maximum(hi - lo, 1)).astype(np.int64)
    return order[np.clip(pick, 0, base - 1)]


def bust_out_of(rng, pop, n, span, base) -> Events:
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
    return Events(cust, t, amount, merchant, cust * 3, ip, pop.country[cust], channel,
                   pop.lat[cust] + rng.normal(0, 0.05, n), pop.lon[cust] + rng.normal(0, 0.05, n), True,
                   np.full(n, "bust_out"))


def gift_card_cashout_of(rng, pop, n, span, base, fraud_dev, t_lo) -> Events:
    """The new pattern: night-time bursts of round gift-card purchases on victims' accounts from shared devices."""
    sizes = _sizes(rng, n, 3, 6)
    k = len(sizes)
    starts = np.floor(_between(rng, t_lo, span - DAY, k) / DAY) * DAY + rng.uniform(1, 4, k) * 3600
    victim = _victims(rng, pop, k, base, starts)
    cust = np.repeat(victim, sizes)
    t = _burst_times(rng, sizes, starts, 300.0)
    merchant = _merchant_of_cats(rng, pop, np.array([CAT["gift_cards"]]), n)
    device = fraud_dev + 90_000_000 + np.repeat(rng.integers(0, max(k // 4, 1), k), sizes)
    return Events(cust, t, rng.integers(2, 9, n) * 25.0, merchant, device, _fraud_ip(device), pop.country[cust],
                   np.ones(n, dtype=np.int64), pop.lat[cust] + rng.normal(0, 0.05, n),
                   pop.lon[cust] + rng.normal(0, 0.05, n), True, np.full(n, NEW_PATTERN))
