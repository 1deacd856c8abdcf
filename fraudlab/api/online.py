"""The built-in live features in NumPy over an in-memory per-key history: no SQL on the scoring path.

Every built-in window partitions by a key and reads strictly earlier events (``RANGE ... EXCLUDE GROUP``: nothing at
the same instant, nothing later), so a new event's value needs only its keys' rows in time order. The history keeps
every stored transaction's time, amount and key codes in growable arrays and, per key value, the positions of its
rows sorted by time; a window is then two ``searchsorted`` calls and its sums a reversed cumulative sum. Each
function mirrors one SQL expression of :mod:`fraudlab.features` (same NULL rules: a NULL customer or merchant is a
partition of its own, as in SQL; a NULL shared identifier has no value), and the equality tests hold them to the
batch build.

Merchant fraud counts follow :func:`fraudlab.features.merchant_fraud_selects`: a fraud f counts for a later
transaction at t when ``known_f <= t <= ts_f + delay + W`` (and ``known_f <= ts_f + delay + W``), from the fraud
label times the batch SQL derives (read once per labels change, see :meth:`OnlineHistory.set_frauds`).
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudlab.features import (
    AVERAGE_WINDOWS,
    CUSTOMER_WINDOWS,
    MERCHANT_WINDOWS,
    SHARED_KEYS,
    SHARED_WINDOWS,
    FeaturePlan,
    _alias,
    base_sql,
)

US = 1_000_000
CODED = ("customer_id", "merchant_id", "device_id", "ip", "card_id", "country")
NEW_OF = {"merchant_id": "merchant", "device_id": "device", "country": "country"}  # c_new_<short> from these
ROW_DONE = {"amount", "log_amount", "hour", "dow", "dist_merchant_km"}
POS = np.int32  # key codes and row positions (a history of up to 2**31 rows)


class _Grow:
    """A NumPy array that grows by doubling (appending a batch costs the batch, not the whole history)."""

    def __init__(self, values: np.ndarray) -> None:
        self.data = np.array(values, copy=True)
        self.n = len(values)

    def view(self) -> np.ndarray:
        return self.data[:self.n]

    def extend(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.data):
            grown = np.empty(max(need, 2 * len(self.data), 1024), dtype=self.data.dtype)
            grown[:self.n] = self.data[:self.n]
            self.data = grown
        self.data[self.n:need] = values
        self.n = need

    def truncate(self, n: int) -> None:
        self.n = n


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, dict]:
    """Integer codes of a column's values (-1 for NULL) and value -> code."""
    encoded = pc.dictionary_encode(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(POS)
    return codes, {v: i for i, v in enumerate(encoded.dictionary.to_pylist())}


def _groups(codes: np.ndarray, ts: np.ndarray, nulls: bool = True) -> dict[int, np.ndarray]:
    """Code -> positions of its rows, in time order (NULL, code -1, is a group: SQL partitions NULLs together; with
    `nulls` False it is left out: a shared identifier's NULL has no value, so nothing reads its rows)."""
    if nulls:
        order = np.lexsort((ts, codes)).astype(POS)  # positions fit in 32 bits: half the memory of a 10M history
    else:
        kept = np.flatnonzero(codes >= 0).astype(POS)
        order = kept[np.lexsort((ts[kept], codes[kept]))]
    if not len(order):
        return {}
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    starts, ends = [0, *bounds.tolist()], [*bounds.tolist(), len(order)]
    # plain slices (views of `order`): np.split's per-piece overhead cost seconds for millions of groups
    return {code: order[a:b] for code, a, b in zip(sorted_codes[starts].tolist(), starts, ends)}


@dataclass
class _Undo:
    rows: int
    groups: list[tuple[dict, int, np.ndarray | None]]
    ids: list[str]


class OnlineHistory:
    """Every stored transaction's time, amount and key codes, with each key value's rows in time order."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys  # the columns present in `transactions` among CODED
        self.rows = 0
        self.ts = _Grow(np.empty(0, dtype=np.int64))
        self.amount = _Grow(np.empty(0))
        self.codes: dict[str, _Grow] = {}
        self.vocab: dict[str, dict] = {}
        self.groups: dict[str, dict[int, np.ndarray]] = {}
        self.frauds: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # merchant code -> (ts_s, known_s), stored frauds
        self.live_frauds: dict[str, tuple[object, float, float]] = {}  # id -> (merchant, ts_s, known_s), not read yet
        self.id_hashes = np.empty(0, dtype=np.int64)  # hash() of every warmed transaction_id, sorted
        self.live_ids: set[str] = set()  # the ids appended since

    def warm(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Read every stored transaction's time, amount and keys, and index them (seconds at 10M rows, done once)."""
        cols = ", ".join(self.keys)
        table = cur.sql(f"SELECT transaction_id, epoch_us(ts) AS ts_us, amount::DOUBLE AS amount"
                        f"{', ' + cols if cols else ''} FROM transactions").to_arrow_table()
        ids = table["transaction_id"]
        self.id_hashes = np.sort(np.concatenate([np.empty(0, dtype=np.int64)] + [
            np.fromiter(map(hash, chunk.to_pylist()), dtype=np.int64, count=len(chunk)) for chunk in ids.chunks]))
        ts = table["ts_us"].to_numpy().astype(np.int64)
        self.ts = _Grow(ts)
        self.amount = _Grow(table["amount"].to_numpy(zero_copy_only=False).astype(float))
        for key in self.keys:
            codes, vocab = _codes(table[key])
            self.codes[key], self.vocab[key] = _Grow(codes), vocab
            if key != "country":
                self.groups[key] = _groups(codes, ts, nulls=key not in SHARED_KEYS)
        self.rows = table.num_rows

    def maybe_known(self, ids: list[str]) -> bool:
        """Whether any of `ids` may be held already (False: certainly none is, no query needed)."""
        if any(i in self.live_ids for i in ids):
            return True
        hashes = np.array([hash(i) for i in ids], dtype=np.int64)
        found = np.searchsorted(self.id_hashes, hashes)
        return bool((self.id_hashes[np.minimum(found, len(self.id_hashes) - 1)] == hashes).any()) \
            if len(self.id_hashes) else False

    def set_frauds(self, cur: duckdb.DuckDBPyConnection, label_delay_days: float) -> None:
        """The stored frauds' merchant, time and fraud-known time, as the batch build derives them (`_frauds`)."""
        if "merchant_id" not in self.keys:
            return
        source = ("(SELECT * FROM transactions WHERE transaction_id IN "
                  "(SELECT transaction_id FROM labels WHERE is_fraud))")
        found = cur.sql(f"SELECT transaction_id, merchant_id, ts_s, fraud_known_s FROM "
                        f"({base_sql(label_delay_days, source)}) "
                        f"WHERE fraud_known_s IS NOT NULL AND merchant_id IS NOT NULL").to_arrow_table()
        vocab = self.vocab["merchant_id"]
        codes = np.array([vocab.get(m, -2) for m in found["merchant_id"].to_pylist()], dtype=np.int64)
        ts_s, known = found["ts_s"].to_numpy(), found["fraud_known_s"].to_numpy()
        order = np.argsort(codes, kind="stable")
        codes, ts_s, known = codes[order], ts_s[order], known[order]
        bounds = np.flatnonzero(np.diff(codes)) + 1
        self.frauds = {int(c[0]): (t, k) for c, t, k in zip(np.split(codes, bounds), np.split(ts_s, bounds),
                                                             np.split(known, bounds)) if len(c)}
        stored = set(found["transaction_id"].to_pylist())
        self.live_frauds = {k: v for k, v in self.live_frauds.items() if k not in stored}

    def add_live_fraud(self, transaction_id: str, merchant: object, ts_us: int, delay_s: float) -> None:
        """A fraud label sent with a live event (known, as a loaded label without a time, after the delay)."""
        if merchant is None:
            return
        ts_s = ts_us / US
        known = max((ts_us + int(round(delay_s * US))) / US, ts_s + 1e-3)
        self.live_frauds[transaction_id] = (merchant, ts_s, known)

    def append(self, new: pa.Table) -> _Undo:
        """Take a batch's rows (typed as `transactions`); returns what :meth:`undo` needs to take them back."""
        undo = _Undo(self.rows, [], new["transaction_id"].to_pylist())
        self.live_ids.update(undo.ids)
        n = new.num_rows
        ts = new["ts"].cast(pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
        self.ts.extend(ts)
        self.amount.extend(new["amount"].cast(pa.float64()).to_numpy(zero_copy_only=False).astype(float))
        positions = np.arange(self.rows, self.rows + n, dtype=POS)
        all_ts = self.ts.view()
        for key in self.keys:
            vocab = self.vocab[key]
            values = new[key].to_pylist() if key in new.column_names else [None] * n
            codes = np.array([-1 if v is None else vocab.setdefault(v, len(vocab)) for v in values], dtype=POS)
            self.codes[key].extend(codes)
            if key == "country":
                continue
            groups = self.groups[key]
            for code in np.unique(codes):
                code = int(code)
                if code < 0 and key in SHARED_KEYS:  # no value: no group (appending to one would copy it whole)
                    continue
                old = groups.get(code)
                undo.groups.append((groups, code, old))
                mine = positions[codes == code]
                merged = mine if old is None else np.concatenate([old, mine])
                if old is not None and len(old) and all_ts[old[-1]] > all_ts[mine].min():  # a late event
                    merged = merged[np.argsort(all_ts[merged], kind="stable")]
                groups[code] = merged
        self.rows += n
        return undo

    def undo(self, undo: _Undo) -> None:
        """Take back an :meth:`append` (the batch was not stored)."""
        for groups, code, old in reversed(undo.groups):
            if old is None:
                groups.pop(code, None)
            else:
                groups[code] = old
        self.rows = undo.rows
        self.live_ids.difference_update(undo.ids)
        for column in (self.ts, self.amount, *self.codes.values()):
            column.truncate(undo.rows)

    def later(self, positions: np.ndarray, before: int, keys: tuple[str, ...]) -> np.ndarray:
        """Which of the rows at `positions` are older than a row held before position `before` sharing one of their
        non-NULL `keys` values (late events)."""
        ts = self.ts.view()
        late = np.zeros(len(positions), dtype=bool)
        for key in keys:
            if key not in self.groups:
                continue
            codes = self.codes[key].view()
            for i, p in enumerate(positions):
                if codes[p] < 0:
                    continue
                group = self.groups[key][int(codes[p])]
                after = group[np.searchsorted(ts[group], ts[p], side="right"):]
                late[i] |= bool((after < before).any())
        return late

    def _fraud_arrays(self, merchant_code: int, merchant: object) -> tuple[np.ndarray, np.ndarray]:
        ts_s, known = self.frauds.get(merchant_code, (np.empty(0), np.empty(0)))
        extra = [(t, k) for m, t, k in self.live_frauds.values() if m == merchant]
        if extra:
            ts_s = np.concatenate([ts_s, [t for t, _ in extra]])
            known = np.concatenate([known, [k for _, k in extra]])
        return ts_s, known


def _mean(total: float, count: int) -> float:
    return total / count if count else np.nan


def customer_values(h: OnlineHistory, p: int, amount: float, plan_names: set[str]) -> dict:
    """The customer group of one row at position `p` (c_cnt_*, c_sum_*, means, ratios, history, first-seen flags)."""
    ts = h.ts.view()
    t = ts[p]
    group = h.groups["customer_id"][int(h.codes["customer_id"].view()[p])]
    times = ts[group]
    hi = int(np.searchsorted(times, t, side="left"))
    prior = group[:hi]
    amounts = h.amount.view()[prior]
    valid = ~np.isnan(amounts)
    back_sum = np.cumsum(np.where(valid, amounts, 0.0)[::-1])  # sums of the newest k rows (accurate, like SQL)
    back_cnt = np.cumsum(valid[::-1])
    out = {}
    for name, secs in CUSTOMER_WINDOWS.items():
        k = hi - int(np.searchsorted(times, t - secs * US, side="left"))
        total, count = (float(back_sum[k - 1]), int(back_cnt[k - 1])) if k else (0.0, 0)
        out[f"c_cnt_{name}"], out[f"c_sum_{name}"] = k, total
        if name in AVERAGE_WINDOWS:
            mean = _mean(total, count)
            out[f"c_amt_mean_{name}"] = mean
            out[f"c_amt_ratio_{name}"] = amount / ((amount if np.isnan(mean) else mean) + 1)
    count = int(valid.sum())
    mean = _mean(float(back_sum[-1]) if hi else 0.0, count)
    std = float(np.std(amounts[valid], ddof=1)) if count >= 2 else np.nan
    out |= {"c_hist_cnt": hi,
            "c_secs_since_prev": t / US - times[hi - 1] / US if hi else np.nan,
            "c_tenure_s": t / US - times[0] / US if hi else np.nan,
            "c_amt_mean": mean, "c_amt_std": std, "c_amt_ratio": amount / (mean + 1),
            "c_amt_z": (amount - mean) / ((0.0 if np.isnan(std) else std) + 1)}
    for col, short in NEW_OF.items():
        if f"c_new_{short}" in plan_names:
            codes = h.codes[col].view()
            mine = codes[p]
            out[f"c_new_{short}"] = np.nan if mine < 0 else float(not (codes[prior] == mine).any())
    return out


def merchant_values(h: OnlineHistory, p: int, merchant: object, delay_s: int) -> dict:
    """Merchant volume (m_cnt_*), the delayed counts (m_dcnt_*) and frauds known by then (m_fraud_*, rates)."""
    ts = h.ts.view()
    t = ts[p]
    code = int(h.codes["merchant_id"].view()[p])
    times = ts[h.groups["merchant_id"][code]]
    now = int(np.searchsorted(times, t, side="left"))
    end = int(np.searchsorted(times, t - delay_s * US, side="right" if delay_s > 0 else "left"))
    fraud_ts, known = (np.empty(0), np.empty(0)) if code < 0 else h._fraud_arrays(code, merchant)
    t_s = t / US
    out = {}
    for name, secs in MERCHANT_WINDOWS.items():
        out[f"m_cnt_{name}"] = now - int(np.searchsorted(times, t - secs * US, side="left"))
        out[f"m_dcnt_{name}"] = max(end - int(np.searchsorted(times, t - (secs + delay_s) * US, side="left")), 0)
        until = fraud_ts + int(secs + delay_s)
        frauds = float(((known <= t_s) & (until >= known) & (t_s <= until)).sum())
        out[f"m_fraud_{name}"], out[f"m_fraud_rate_{name}"] = frauds, frauds / (out[f"m_dcnt_{name}"] + 1.0)
    return out


def shared_values(h: OnlineHistory, p: int, key: str, short: str) -> dict:
    """Distinct customers of the row's device / IP / card over each shared window (NULL without a value)."""
    code = int(h.codes[key].view()[p])
    if code < 0:
        return {f"{short}_customers_{name}": np.nan for name in SHARED_WINDOWS}
    ts = h.ts.view()
    group = h.groups[key][code]
    times = ts[group]
    hi = int(np.searchsorted(times, ts[p], side="left"))
    customers = h.codes["customer_id"].view()[group] if "customer_id" in h.codes else np.empty(0, dtype=np.int64)
    out = {}
    for name, secs in SHARED_WINDOWS.items():
        lo = int(np.searchsorted(times, ts[p] - secs * US, side="left"))
        seen = customers[lo:hi]
        out[f"{short}_customers_{name}"] = float(len(np.unique(seen[seen >= 0])))
    return out


def row_values(new: pa.Table, plan: FeaturePlan) -> dict[str, np.ndarray | list]:
    """The row-local features of a batch (amount, log amount, hour, ISO weekday, distance, extras, categoricals)."""
    amount = new["amount"].cast(pa.float64()).to_numpy(zero_copy_only=False).astype(float)
    stamps = new["ts"].cast(pa.timestamp("us")).to_numpy(zero_copy_only=False).astype("datetime64[us]")
    days = stamps.astype("datetime64[D]")
    out: dict[str, np.ndarray | list] = {"amount": amount, "log_amount": np.log(amount + 1),
                                         "hour": ((stamps - days) // np.timedelta64(1, "h")).astype(float),
                                         "dow": ((days.astype(np.int64) + 3) % 7 + 1).astype(float)}
    names = {_alias(e) for e in plan.row}
    if "dist_merchant_km" in names:
        lat, lon, mlat, mlon = (new[c].cast(pa.float64()).to_numpy(zero_copy_only=False).astype(float)
                                for c in ("lat", "lon", "merchant_lat", "merchant_lon"))
        out["dist_merchant_km"] = 111.2 * np.sqrt(np.power(lat - mlat, 2)
                                                  + np.power((lon - mlon) * np.cos(np.radians(lat)), 2))
    for name in names - ROW_DONE:
        out[name] = new[name].to_pylist() if name in new.column_names else [None] * new.num_rows
    return out


def plan_names(plan: FeaturePlan) -> list[str]:
    """The feature names of a plan's built-in groups, in the features table's order."""
    names = [_alias(e) for e in plan.row] + [_alias(e) for exprs in plan.by_key.values() for e in exprs]
    names += [_alias(e) for _short, exprs in plan.shared.values() for e in exprs]
    if plan.has_merchant:
        names += [f"m_{kind}_{n}" for n in MERCHANT_WINDOWS for kind in ("fraud", "fraud_rate")]
    return names


def supported(plan: FeaturePlan) -> bool:
    """Whether every built-in feature of the plan is one this module computes (else the SQL path answers)."""
    known = {f"c_{k}_{n}" for n in CUSTOMER_WINDOWS for k in ("cnt", "sum")}
    known |= {f"c_amt_{k}_{n}" for n in AVERAGE_WINDOWS for k in ("mean", "ratio")}
    known |= {"c_hist_cnt", "c_secs_since_prev", "c_tenure_s", "c_amt_mean", "c_amt_std", "c_amt_ratio", "c_amt_z"}
    known |= {f"c_new_{s}" for s in NEW_OF.values()}
    known |= {f"m_{k}_{n}" for n in MERCHANT_WINDOWS for k in ("cnt", "dcnt", "fraud", "fraud_rate")}
    known |= {f"{s}_customers_{n}" for s in SHARED_KEYS.values() for n in SHARED_WINDOWS}
    row = {_alias(e) for e in plan.row}
    return set(plan_names(plan)) - row <= known and set(plan.shared) <= set(SHARED_KEYS)


def features(h: OnlineHistory, plan: FeaturePlan, new: pa.Table, positions: np.ndarray) -> dict[str, list]:
    """Feature columns (name -> values, in `plan_names` order) of the batch rows `new`, already appended to the
    history at `positions`."""
    names = plan_names(plan)
    row = row_values(new, plan)
    merchants = new["merchant_id"].to_pylist() if "merchant_id" in new.column_names else [None] * new.num_rows
    wanted = set(names)
    per_row = []
    for i, p in enumerate(positions):
        values: dict = {}
        if "customer_id" in plan.by_key:
            values |= customer_values(h, int(p), float(row["amount"][i]), wanted)
        if plan.has_merchant:
            values |= merchant_values(h, int(p), merchants[i], plan.label_delay_s)
        for key, (short, _exprs) in plan.shared.items():
            values |= shared_values(h, int(p), key, short)
        per_row.append(values)
    out: dict[str, np.ndarray | list] = {}
    for name in names:
        if name in row:
            out[name] = row[name]
        else:
            out[name] = np.array([v[name] for v in per_row], dtype=float)
    return out


def records(columns: dict, rows: int) -> list[dict]:
    """Feature rows as dicts of plain Python values (NaN for missing numbers) from name -> values."""
    plain = {c: (v.tolist() if isinstance(v, np.ndarray) else list(v)) for c, v in columns.items()}
    return [{c: values[i] for c, values in plain.items()} for i in range(rows)]
