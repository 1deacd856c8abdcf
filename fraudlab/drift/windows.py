"""Reference and current windows: by dates or by ingest ids."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from fraudlab.errors import FraudlabError
from fraudlab.workspace import Workspace


@dataclass(frozen=True)
class Window:
    """A slice of the transactions: by time [start, end) or by ingest ids."""

    start: datetime | None = None
    end: datetime | None = None
    ingest_ids: tuple[int, ...] = ()

    @classmethod
    def dates(cls, start, end) -> "Window":
        return cls(pd.Timestamp(start).to_pydatetime() if start is not None else None,
                   pd.Timestamp(end).to_pydatetime() if end is not None else None)

    @classmethod
    def ingests(cls, ids) -> "Window":
        return cls(ingest_ids=tuple(int(i) for i in ids))

    def where(self, alias: str = "t") -> tuple[str, dict]:
        """SQL condition on the transactions alias and its bound parameters."""
        if self.ingest_ids:
            return f"{alias}.ingest_id IN (SELECT unnest($w_ids))", {"w_ids": list(self.ingest_ids)}
        parts, params = [], {}
        if self.start is not None:
            parts.append(f"{alias}.ts >= $w_start")
            params["w_start"] = self.start
        if self.end is not None:
            parts.append(f"{alias}.ts < $w_end")
            params["w_end"] = self.end
        return (" AND ".join(parts) or "TRUE"), params

    @property
    def label(self) -> str:
        if self.ingest_ids:
            return "ingests " + ", ".join(map(str, self.ingest_ids))
        lo = f"{self.start:%Y-%m-%d %H:%M}" if self.start else "start"
        hi = f"{self.end:%Y-%m-%d %H:%M}" if self.end else "end"
        return f"{lo} → {hi}"

    def to_dict(self) -> dict:
        return {"start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None, "ingest_ids": list(self.ingest_ids)}

    @classmethod
    def from_dict(cls, d: dict) -> "Window":
        return cls(datetime.fromisoformat(d["start"]) if d.get("start") else None,
                   datetime.fromisoformat(d["end"]) if d.get("end") else None, tuple(d.get("ingest_ids") or ()))


def split_windows(ws: Workspace, share: float = 0.5) -> tuple[Window, Window]:
    """Default windows: the first `share` of the data's time span as reference, the rest as current."""
    lo, hi = ws.df("SELECT min(ts) AS lo, max(ts) AS hi FROM transactions").iloc[0]
    if pd.isna(lo):
        raise FraudlabError("no transactions yet: load data before a drift report")
    mid = (lo + (hi - lo) * share).floor("D") if hi - lo > pd.Timedelta(days=2) else lo + (hi - lo) * share
    return Window.dates(lo, mid), Window.dates(mid, hi + pd.Timedelta(seconds=1))
