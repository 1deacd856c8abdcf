"""Compiled loops of the live features (:mod:`fraudlab.api.online`): one call per batch and key group, no GIL held.

The NumPy version made ~40 small NumPy calls per event; under load each call that released the GIL (searchsorted,
gathers over the 10M-row history) waited to get it back behind the server's event loop, so an event's features took
2-3 ms instead of 0.45. Here a whole batch is one call that holds no GIL. Each kernel reads a batch's groups as one
flat array of history positions (`flat[starts[i]:starts[i + 1]]`: row i's key value's rows, in time order) and
follows the NumPy expressions it replaces step by step (sums added newest first, as the reversed cumulative sum did).
Outputs are (columns, rows): each feature column is a contiguous row of `out`.
"""
from __future__ import annotations

import numba
import numpy as np

US = 1_000_000


@numba.njit(cache=True, nogil=True)
def _left(ts, flat, lo, hi, value):  # pragma: no cover - compiled
    """First i in [lo, hi) with ts[flat[i]] >= value (hi if none): searchsorted side='left' over the group's times."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ts[flat[mid]] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def _right(ts, flat, lo, hi, value):  # pragma: no cover - compiled
    """First i in [lo, hi) with ts[flat[i]] > value: searchsorted side='right'."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ts[flat[mid]] <= value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def customer(ts, amount, positions, flat, starts, windows, averaged, out, prior):  # pragma: no cover - compiled
    """Per row: count and sum per window, mean and ratio per averaged window, then history count, seconds since the
    previous event, tenure, mean, std, ratio and z of the amount over all earlier events (columns in that order);
    `prior[i]`: how many of the group's rows are earlier (the first-seen flags read them)."""
    w_count = windows.shape[0]
    base = 2 * w_count + 2 * averaged.shape[0]
    ks = np.zeros(w_count, dtype=np.int64)
    sums = np.zeros(w_count)
    counts = np.zeros(w_count, dtype=np.int64)
    for i in range(positions.shape[0]):
        p = positions[i]
        t = ts[p]
        a0, a1 = starts[i], starts[i + 1]
        hi = _left(ts, flat, a0, a1, t)
        n = hi - a0
        prior[i] = n
        x = amount[p]
        for w in range(w_count):
            ks[w] = hi - _left(ts, flat, a0, hi, t - windows[w] * US)
        total, valid, k = 0.0, 0, 0
        for j in range(hi - 1, a0 - 1, -1):  # newest first, as the reversed cumulative sum added them
            v = amount[flat[j]]
            if v == v:
                total += v
                valid += 1
            else:
                total += 0.0
            k += 1
            for w in range(w_count):
                if ks[w] == k:
                    sums[w], counts[w] = total, valid
        for w in range(w_count):
            if ks[w] == 0:
                sums[w], counts[w] = 0.0, 0
            out[2 * w, i] = ks[w]
            out[2 * w + 1, i] = sums[w]
        for m in range(averaged.shape[0]):
            w = averaged[m]
            mean = sums[w] / counts[w] if counts[w] else np.nan
            out[2 * w_count + 2 * m, i] = mean
            out[2 * w_count + 2 * m + 1, i] = x / ((x if np.isnan(mean) else mean) + 1)
        mean = total / valid if valid else np.nan
        std = np.nan
        if valid >= 2:
            squares = 0.0
            for j in range(a0, hi):
                v = amount[flat[j]]
                if v == v:
                    squares += (v - mean) ** 2
            std = np.sqrt(squares / (valid - 1))
        out[base, i] = n
        out[base + 1, i] = t / US - ts[flat[hi - 1]] / US if n else np.nan
        out[base + 2, i] = t / US - ts[flat[a0]] / US if n else np.nan
        out[base + 3, i] = mean
        out[base + 4, i] = std
        out[base + 5, i] = x / (mean + 1)
        out[base + 6, i] = (x - mean) / ((0.0 if np.isnan(std) else std) + 1)


@numba.njit(cache=True, nogil=True)
def first_seen(codes, positions, flat, starts, prior, out):  # pragma: no cover - compiled
    """Per row: 1 when no earlier row of its customer had its value of `codes`, else 0 (NaN without a value)."""
    for i in range(positions.shape[0]):
        mine = codes[positions[i]]
        if mine < 0:
            out[i] = np.nan
            continue
        seen = 0.0
        for j in range(starts[i], starts[i] + prior[i]):
            if codes[flat[j]] == mine:
                seen = 1.0
                break
        out[i] = 1.0 - seen


@numba.njit(cache=True, nogil=True)
def merchant(ts, positions, flat, starts, fraud_ts, known, fraud_starts, windows, delay_s, out):  # pragma: no cover
    """Per row and window (columns cnt, dcnt, fraud, fraud_rate per window): volume before the row, volume before
    the label delay, frauds known by the row's time whose window reaches it, and their rate."""
    for i in range(positions.shape[0]):
        t = ts[positions[i]]
        a0, a1 = starts[i], starts[i + 1]
        now = _left(ts, flat, a0, a1, t)
        end = _right(ts, flat, a0, a1, t - delay_s * US) if delay_s > 0 else _left(ts, flat, a0, a1, t - delay_s * US)
        t_s = t / US
        for w in range(windows.shape[0]):
            secs = windows[w]
            out[4 * w, i] = now - _left(ts, flat, a0, a1, t - secs * US)
            dcnt = max(end - _left(ts, flat, a0, a1, t - (secs + delay_s) * US), 0)
            out[4 * w + 1, i] = dcnt
            frauds = 0.0
            reach = secs + delay_s
            for f in range(fraud_starts[i], fraud_starts[i + 1]):
                until = fraud_ts[f] + reach
                if known[f] <= t_s and until >= known[f] and t_s <= until:
                    frauds += 1.0
            out[4 * w + 2, i] = frauds
            out[4 * w + 3, i] = frauds / (dcnt + 1.0)


@numba.njit(cache=True, nogil=True)
def shared(ts, customers, positions, flat, starts, has_value, windows, out):  # pragma: no cover - compiled
    """Per row and window: distinct customers (codes >= 0) of the row's identifier before it (NaN without one; an
    empty `customers` counts none)."""
    for i in range(positions.shape[0]):
        if not has_value[i]:
            for w in range(windows.shape[0]):
                out[w, i] = np.nan
            continue
        t = ts[positions[i]]
        a0, a1 = starts[i], starts[i + 1]
        hi = _left(ts, flat, a0, a1, t)
        for w in range(windows.shape[0]):
            if customers.shape[0] == 0:
                out[w, i] = 0.0
                continue
            lo = _left(ts, flat, a0, hi, t - windows[w] * US)
            seen = np.empty(hi - lo, dtype=customers.dtype)
            c = 0
            for j in range(lo, hi):
                code = customers[flat[j]]
                if code >= 0:
                    seen[c] = code
                    c += 1
            seen = np.sort(seen[:c])
            distinct = 0
            for j in range(c):
                if j == 0 or seen[j] != seen[j - 1]:
                    distinct += 1
            out[w, i] = distinct


@numba.njit(cache=True, nogil=True)
def later(ts, positions, flat, starts, before, late):  # pragma: no cover - compiled
    """Mark row i late when a row of its group held before position `before` is later than it."""
    for i in range(positions.shape[0]):
        t = ts[positions[i]]
        for j in range(_right(ts, flat, starts[i], starts[i + 1], t), starts[i + 1]):
            if flat[j] < before:
                late[i] = True
                break


def compile_all() -> None:
    """Compile every kernel now (or load it from numba's cache), off the first live batch's path."""
    ts, none, flat, starts = np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(1, np.int64)
    spans, out, nothing = np.zeros(1, np.int64), np.empty((1, 0)), np.zeros(0, np.bool_)
    customer(ts, np.zeros(1), none, flat, starts, spans, spans, out, none)
    first_seen(flat, none, flat, starts, none, np.empty(0))
    merchant(ts, none, flat, starts, np.zeros(0), np.zeros(0), starts, spans, 0, out)
    shared(ts, flat, none, flat, starts, nothing, spans, out)
    later(ts, none, flat, starts, 0, nothing)
