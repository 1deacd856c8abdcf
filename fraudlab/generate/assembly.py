"""A whole simulation: population + patterns + drift + label delays, formatted as canonical columns; written to files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudlab.errors import FraudlabError
from fraudlab.generate.patterns import (
    account_takeover_of,
    bust_out_of,
    card_testing_of,
    gift_card_cashout_of,
    legit_of,
    merchant_compromise_of,
    ring_of,
)
from fraudlab.generate.population import append_customers, customers_of, population_of
from fraudlab.generate.world import (
    CATEGORY_NAMES,
    CHANNELS,
    COUNTRY_CURRENCY,
    COUNTRY_NAMES,
    DAY,
    DRIFTS,
    EMAIL_DOMAINS,
    LEGIT_LABEL_DAYS,
    NEW_PATTERN,
    PATTERN_SHARES,
    RING_EMAIL_DOMAIN,
    SUDDEN_COUNTRY,
    Events,
    Population,
    Simulation,
)


def _concat(parts: list[Events]) -> dict[str, np.ndarray]:
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
    pop = population_of(rng, n_customers, max(rows // 200, 60), span)
    base = n_customers

    n_fraud = int(round(rows * fraud_rate))
    shares = dict(PATTERN_SHARES)
    if "new_pattern" in drift:
        shares[NEW_PATTERN] = 0.25
    total_share = sum(shares.values())
    counts = {p: int(n_fraud * s / total_share) for p, s in shares.items()}
    counts["card_testing"] += n_fraud - sum(counts.values())
    fraud_dev = 3 * (n_customers + rows)  # fraud device codes live above every customer's own devices

    parts: list[Events] = []
    ring_events, ring_customers, ring_ids = ring_of(rng, pop, counts["ring"], span, fraud_dev, 0)
    parts += [
        card_testing_of(rng, pop, counts["card_testing"], span, base, fraud_dev + 10_000_000),
        account_takeover_of(rng, pop, counts["account_takeover"], span, base, fraud_dev + 20_000_000),
        ring_events,
        merchant_compromise_of(rng, pop, counts["merchant_compromise"], span, base),
        bust_out_of(rng, pop, counts["bust_out"], span, base),
    ]
    if NEW_PATTERN in counts:
        parts.append(gift_card_cashout_of(rng, pop, counts[NEW_PATTERN], span, base, fraud_dev, t_drift))
    n_legit = rows - sum(len(p) for p in parts)
    base_custs = np.arange(base)
    if "sudden" in drift:
        n_new = int(n_legit * 0.25 * (1 - drift_start))
        extra = customers_of(rng, max(n_new // 15, 10), span, {"country": pop.merchant_country},
                           home=np.full(max(n_new // 15, 10), SUDDEN_COUNTRY), join_lo=t_drift, new_share=0.0)
        extra["spend"] = extra["spend"] + 1.2  # amounts in a weaker currency
        new_custs = append_customers(pop, extra)
        new_source = legit_of(rng, pop, n_new, span, new_custs, t_lo=t_drift, online_boost=0.3)
        parts.append(new_source)
        n_legit -= n_new
    parts.append(legit_of(rng, pop, n_legit, span, base_custs))

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


def _build(cols: dict, label_t: np.ndarray, pop: Population, seed: int, start: str, ring_customers: np.ndarray,
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
