"""The simulated world: countries, categories, channels, patterns and the records a simulation returns."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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
class Population:
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
class Events:
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
