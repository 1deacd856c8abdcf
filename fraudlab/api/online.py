"""The built-in live features in NumPy over an in-memory per-key history: no SQL on the scoring path.

Every built-in window partitions by a key and reads strictly earlier events (``RANGE ... EXCLUDE GROUP``: nothing at
the same instant, nothing later), so a new event's value needs only its keys' rows in time order. The history keeps
every stored transaction's time, amount and key codes in growable arrays and, per key value, the positions of its
rows sorted by time; a window is then two binary searches and its sums added newest first. The loops over a batch
run compiled (:mod:`fraudlab.api.online_kernels`), each mirroring one SQL expression of :mod:`fraudlab.features`
(same NULL rules: a NULL customer or merchant is a partition of its own, as in SQL; a NULL shared identifier has no
value), and the equality tests hold them to the batch build.

Merchant fraud counts follow :func:`fraudlab.features.merchant_fraud_selects`: a fraud f counts for a later
transaction at t when ``known_f <= t <= ts_f + delay + W`` (and ``known_f <= ts_f + delay + W``), from the fraud
label times the batch SQL derives (read once per labels change, see :meth:`OnlineHistory.set_frauds`).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudlab.api import online_kernels as kernels
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
WARM_THREADS = 2  # keys indexed at once when the history is read (Arrow's encoding and NumPy's sort release the GIL)
_NONE = np.empty(0, dtype=POS)  # the group of a row without a value
_NO_FRAUDS = (np.empty(0), np.empty(0))
_CUSTOMER_SPANS = np.array(list(CUSTOMER_WINDOWS.values()), dtype=np.int64)
_AVERAGED = np.array([list(CUSTOMER_WINDOWS).index(w) for w in AVERAGE_WINDOWS], dtype=np.int64)
_MERCHANT_SPANS = np.array(list(MERCHANT_WINDOWS.values()), dtype=np.int64)
_SHARED_SPANS = np.array(list(SHARED_WINDOWS.values()), dtype=np.int64)


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


def _numbers(column: pa.ChunkedArray, arrow_type: pa.DataType) -> np.ndarray:
    """A batch column as NumPy, cast only when it is not `arrow_type` already (a cast releases the GIL, and the live
    decider then waits to get it back behind the server's other threads)."""
    return (column if column.type == arrow_type else column.cast(arrow_type)).to_numpy(zero_copy_only=False)


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
        ts = table["ts_us"].to_numpy().astype(np.int64)
        self.ts = _Grow(ts)
        self.amount = _Grow(table["amount"].to_numpy(zero_copy_only=False).astype(float))

        def index(key: str) -> tuple[np.ndarray, dict, dict | None]:
            codes, vocab = _codes(table[key])
            return codes, vocab, None if key == "country" else _groups(codes, ts, nulls=key not in SHARED_KEYS)

        with ThreadPoolExecutor(WARM_THREADS) as pool:  # encoding and sorting hold no GIL: the keys two at a time
            indexed = pool.map(index, self.keys)  # (started at once) while this thread hashes the ids
            ids = table["transaction_id"]
            self.id_hashes = np.sort(np.concatenate([np.empty(0, dtype=np.int64)] + [
                np.fromiter(map(hash, chunk.to_pylist()), dtype=np.int64, count=len(chunk)) for chunk in ids.chunks]))
            for key, (codes, vocab, groups) in zip(self.keys, indexed):
                self.codes[key], self.vocab[key] = _Grow(codes), vocab
                if groups is not None:
                    self.groups[key] = groups
        self.rows = table.num_rows
        kernels.compile_all()  # here, in the background warm, not in the first event's batch

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
        ts = _numbers(new["ts"], pa.timestamp("us")).astype("datetime64[us]").astype(np.int64)
        self.ts.extend(ts)
        self.amount.extend(_numbers(new["amount"], pa.float64()).astype(float))
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
        positions = np.asarray(positions, dtype=np.int64)
        late = np.zeros(len(positions), dtype=bool)
        for key in keys:
            if key in self.groups:
                flat, starts = self.batch_groups(key, positions, nulls=False)
                kernels.later(self.ts.view(), positions, flat, starts, before, late)
        return late

    def batch_groups(self, key: str, positions: np.ndarray, nulls: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The groups of the rows at `positions` as one flat array of positions and each row's start in it (row i:
        `flat[starts[i]:starts[i + 1]]`); with `nulls` False a row without a value has an empty group."""
        groups = self.groups[key]
        parts = [_NONE if code < 0 and not nulls else groups.get(code, _NONE)
                 for code in self.codes[key].view()[positions].tolist()]
        starts = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(part) for part in parts], out=starts[1:])
        return (np.concatenate(parts) if parts else _NONE), starts

    def _fraud_arrays(self, merchant_code: int, merchant: object) -> tuple[np.ndarray, np.ndarray]:
        ts_s, known = self.frauds.get(merchant_code, (np.empty(0), np.empty(0)))
        extra = [(t, k) for m, t, k in self.live_frauds.values() if m == merchant]
        if extra:
            ts_s = np.concatenate([ts_s, [t for t, _ in extra]])
            known = np.concatenate([known, [k for _, k in extra]])
        return ts_s, known


def _customer(h: OnlineHistory, positions: np.ndarray, wanted: set[str]) -> dict[str, np.ndarray]:
    """The customer group (c_cnt_*, c_sum_*, means, ratios, history, first-seen flags) of the rows at `positions`."""
    names = [f"c_{kind}_{w}" for w in CUSTOMER_WINDOWS for kind in ("cnt", "sum")]
    names += [f"c_amt_{kind}_{w}" for w in AVERAGE_WINDOWS for kind in ("mean", "ratio")]
    names += ["c_hist_cnt", "c_secs_since_prev", "c_tenure_s", "c_amt_mean", "c_amt_std", "c_amt_ratio", "c_amt_z"]
    flat, starts = h.batch_groups("customer_id", positions)
    out = np.empty((len(names), len(positions)))
    prior = np.empty(len(positions), dtype=np.int64)
    kernels.customer(h.ts.view(), h.amount.view(), positions, flat, starts, _CUSTOMER_SPANS, _AVERAGED, out, prior)
    columns = dict(zip(names, out))
    for col, short in NEW_OF.items():
        if f"c_new_{short}" in wanted:
            columns[f"c_new_{short}"] = seen = np.empty(len(positions))
            kernels.first_seen(h.codes[col].view(), positions, flat, starts, prior, seen)
    return columns


def _merchant(h: OnlineHistory, positions: np.ndarray, merchants: list, delay_s: int) -> dict[str, np.ndarray]:
    """Merchant volume (m_cnt_*), the delayed counts (m_dcnt_*) and frauds known by then (m_fraud_*, rates)."""
    flat, starts = h.batch_groups("merchant_id", positions)
    frauds = [(_NO_FRAUDS if code < 0 else h._fraud_arrays(code, merchant))
              for code, merchant in zip(h.codes["merchant_id"].view()[positions].tolist(), merchants)]
    fraud_starts = np.zeros(len(frauds) + 1, dtype=np.int64)
    np.cumsum([len(ts_s) for ts_s, _known in frauds], out=fraud_starts[1:])
    fraud_ts = np.concatenate([_NO_FRAUDS[0], *(ts_s for ts_s, _known in frauds)]).astype(float)
    known = np.concatenate([_NO_FRAUDS[1], *(k for _ts, k in frauds)]).astype(float)
    names = [f"m_{kind}_{w}" for w in MERCHANT_WINDOWS for kind in ("cnt", "dcnt", "fraud", "fraud_rate")]
    out = np.empty((len(names), len(positions)))
    kernels.merchant(h.ts.view(), positions, flat, starts, fraud_ts, known, fraud_starts, _MERCHANT_SPANS,
                     int(delay_s), out)
    return dict(zip(names, out))


def _shared(h: OnlineHistory, positions: np.ndarray, key: str, short: str) -> dict[str, np.ndarray]:
    """Distinct customers of the rows' device / IP / card over each shared window (NULL without a value)."""
    flat, starts = h.batch_groups(key, positions, nulls=False)
    customers = h.codes["customer_id"].view() if "customer_id" in h.codes else _NONE
    out = np.empty((len(SHARED_WINDOWS), len(positions)))
    kernels.shared(h.ts.view(), customers, positions, flat, starts, h.codes[key].view()[positions] >= 0,
                   _SHARED_SPANS, out)
    return {f"{short}_customers_{w}": column for w, column in zip(SHARED_WINDOWS, out)}


def row_values(new: pa.Table, plan: FeaturePlan) -> dict[str, np.ndarray | list]:
    """The row-local features of a batch (amount, log amount, hour, ISO weekday, distance, extras, categoricals)."""
    amount = _numbers(new["amount"], pa.float64()).astype(float)
    stamps = _numbers(new["ts"], pa.timestamp("us")).astype("datetime64[us]")
    days = stamps.astype("datetime64[D]")
    out: dict[str, np.ndarray | list] = {"amount": amount, "log_amount": np.log(amount + 1),
                                         "hour": ((stamps - days) // np.timedelta64(1, "h")).astype(float),
                                         "dow": ((days.astype(np.int64) + 3) % 7 + 1).astype(float)}
    names = {_alias(e) for e in plan.row}
    if "dist_merchant_km" in names:
        lat, lon, mlat, mlon = (_numbers(new[c], pa.float64()).astype(float)
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
    positions = np.asarray(positions, dtype=np.int64)
    computed = row_values(new, plan)
    if "customer_id" in plan.by_key:
        computed |= _customer(h, positions, set(names))
    if plan.has_merchant:
        merchants = new["merchant_id"].to_pylist() if "merchant_id" in new.column_names else [None] * new.num_rows
        computed |= _merchant(h, positions, merchants, plan.label_delay_s)
    for key, (short, _exprs) in plan.shared.items():
        computed |= _shared(h, positions, key, short)
    return {name: computed[name] for name in names}


def records(columns: dict, rows: int) -> list[dict]:
    """Feature rows as dicts of plain Python values (NaN for missing numbers) from name -> values."""
    plain = {c: (v.tolist() if isinstance(v, np.ndarray) else list(v)) for c, v in columns.items()}
    return [{c: values[i] for c, values in plain.items()} for i in range(rows)]
