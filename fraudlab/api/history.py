"""The live scorer's online history: every stored transaction in memory, indexed by each key its windows read.

A live event's features need its keys' earlier events (:mod:`fraudlab.api.live`). Finding them with a query scans
the whole `transactions` table for every micro-batch; this cache answers the same question from memory: positions
of each key value's rows (kept in time order), cut to the key's span, taken from an Arrow copy of the table. The
very same feature SQL then runs over those rows, so the features are the ones the query path would give.

It is warmed from DuckDB once, takes each live batch's rows after their write committed, and is dropped and
warmed again when `transactions` changed behind it (a load, a clear): :meth:`HistoryCache.fresh` compares the row
count the cache expects with the table's.
"""
from __future__ import annotations

from datetime import timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudlab.labels import FRAUD_LABEL_ROWS_SQL

LABELS_STAMP = "SELECT count(*), max(recorded_at) FROM labels"
TAIL_ROWS = 20_000  # live rows kept apart from the warmed table (taking from a many-chunk table copies it whole)


def _index(column: pa.ChunkedArray | pa.Array, offset: int = 0) -> dict:
    """Value -> positions of the rows holding it; nulls are left out."""
    encoded = pc.dictionary_encode(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    valid = ~np.asarray(encoded.indices.is_null().to_numpy(zero_copy_only=False))
    positions = np.flatnonzero(valid)
    codes = codes[valid].astype(np.int64)
    order = np.argsort(codes, kind="stable")
    positions, codes = positions[order], codes[order]
    bounds = np.flatnonzero(np.diff(codes)) + 1
    values = encoded.dictionary.to_pylist()
    groups = np.split(positions + offset, bounds) if len(positions) else []
    return {values[int(group_codes[0])]: group for group, group_codes in zip(groups, np.split(codes, bounds))
            if len(group)}


class HistoryCache:
    """An in-memory copy of `transactions` with, for each key in `keys`, the positions of each value's rows."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.table: pa.Table | None = None
        self.ts = np.empty(0, dtype="datetime64[us]")
        self.by_key: dict[str, dict] = {}
        self.rows = 0
        self.labels: pa.Table | None = None
        self._labels_stamp: tuple | None = None

    def warm(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Load every stored transaction and index it (seconds for millions of rows; done once, and after a load)."""
        table = cur.sql("SELECT * FROM transactions").to_arrow_table()
        self.table = table.combine_chunks()
        self.tail = self.table.slice(0, 0)
        self.ts = self._times(self.table)
        self.by_key = {key: _index(self.table[key]) for key in self.keys if key in self.table.column_names}
        self.rows = self.table.num_rows

    @staticmethod
    def _times(table: pa.Table) -> np.ndarray:
        return table["ts"].cast(pa.timestamp("us")).to_numpy().astype("datetime64[us]")

    def fresh(self, cur: duckdb.DuckDBPyConnection) -> bool:
        """Whether the cache still holds exactly what `transactions` holds (by row count)."""
        return self.table is not None and cur.execute("SELECT count(*) FROM transactions").fetchall()[0][0] == self.rows

    def fraud_labels(self, cur: duckdb.DuckDBPyConnection, check: bool) -> pa.Table:
        """Every label row of the transactions ever labelled fraud (the only ones a fraud-known time can come from:
        :func:`fraudlab.labels.fraud_known_sql` resolves each transaction from its own rows), re-read when `check`
        finds `labels` changed (labels are appended; a clear changes the count)."""
        if self.labels is None or check:
            stamp = tuple(cur.execute(LABELS_STAMP).fetchall()[0])
            if self.labels is None or stamp != self._labels_stamp:
                self.labels = cur.sql(FRAUD_LABEL_ROWS_SQL).to_arrow_table()
                self._labels_stamp = stamp
        return self.labels

    def forget_labels(self) -> None:
        """Read the labels again next time (a batch stored labels of its own)."""
        self.labels = None

    def reach(self, rows: list[dict], spans: dict[str, int | None]) -> pa.Table:
        """The stored rows the new `rows`' windows reach: for each key, its values' rows within the key's span, up to
        the newest new row's time, without rows of the new ids (the rows `live._history_sql` selects)."""
        ts_max = np.datetime64(max(r["ts"] for r in rows), "us")
        picked = []
        for key, span in spans.items():
            index = self.by_key.get(key)
            keyed = [r for r in rows if r.get(key) is not None]
            if index is None or not keyed:
                continue
            found = [index[v] for v in {r[key] for r in keyed} if v in index]
            if not found:
                continue
            positions = np.concatenate(found)
            times = self.ts[positions]
            keep = times <= ts_max
            if span is not None:
                start = min(r["ts"] for r in keyed) - timedelta(seconds=int(span))
                keep &= times >= np.datetime64(start, "us")
            picked.append(positions[keep])
        positions = np.unique(np.concatenate(picked)) if picked else np.empty(0, dtype=np.int64)
        subset = self._take(positions)
        ids = {r["transaction_id"] for r in rows}
        if subset.num_rows and ids & set(subset["transaction_id"].to_pylist()):
            subset = subset.filter(pc.invert(pc.is_in(subset["transaction_id"], pa.array(sorted(ids)))))
        return subset

    def later(self, rows: list[dict], keys: tuple[str, ...]) -> list[str]:
        """Ids of the `rows` older than a held row sharing one of their `keys` values (late events: that row's
        windows must now include them)."""
        late: set[str] = set()
        for key in keys:
            index = self.by_key.get(key)
            for row in rows if index is not None else ():
                found = index.get(row.get(key)) if row.get(key) is not None else None
                if found is not None and self.ts[found].max() > np.datetime64(row["ts"], "us"):
                    late.add(row["transaction_id"])
        return sorted(late)

    def _take(self, positions: np.ndarray) -> pa.Table:
        """Rows at `positions` (ascending) of the warmed table followed by the live tail, each contiguous."""
        split = int(np.searchsorted(positions, self.table.num_rows))
        head = self.table.take(pa.array(positions[:split], type=pa.int64()))
        if split == len(positions):
            return head
        tail = self.tail.take(pa.array(positions[split:] - self.table.num_rows, type=pa.int64()))
        return pa.concat_tables([head, tail])

    def append(self, new: pa.Table) -> None:
        """Take a committed batch's rows (typed as `transactions`; missing columns are NULL)."""
        if self.table is None or not new.num_rows:
            return
        columns = []
        for field in self.table.schema:
            if field.name in new.column_names:
                columns.append(new[field.name].cast(field.type))
            else:
                columns.append(pa.nulls(new.num_rows, field.type))
        new = pa.Table.from_arrays(columns, schema=self.table.schema)
        offset = self.rows
        self.tail = pa.concat_tables([self.tail, new]).combine_chunks()
        if self.tail.num_rows > TAIL_ROWS:
            self.table, self.tail = pa.concat_tables([self.table, self.tail]).combine_chunks(), new.slice(0, 0)
        times = self._times(new)
        self.ts = np.concatenate([self.ts, times])
        for key, index in self.by_key.items():
            for value, group in _index(new[key], offset).items():
                old = index.get(value)
                index[value] = group if old is None else np.concatenate([old, group])
        self.rows += new.num_rows
