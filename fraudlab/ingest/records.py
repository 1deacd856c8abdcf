"""What a load reads and reports (files, previews, reports) and the limits every load shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fraudlab.schema import ColumnMapping
from fraudlab.workspace import CANONICAL_COLUMNS

FUTURE_TOLERANCE_DAYS = 1
EARLIEST_TS = "1990-01-01"
SAMPLE_ROWS = 20_000
HEAD_BYTES = 1 << 16
NULL_WORDS = ("", "na", "n/a", "nan", "null", "none", "nat", "-")
TIME_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
                "%Y/%m/%d %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%Y%m%d%H%M%S", "%d/%m/%Y", "%d-%b-%Y %H:%M:%S")
TARGETS = dict(CANONICAL_COLUMNS, label_ts="TIMESTAMP")
KEY_COLUMNS = ("transaction_id", "ts", "amount")
# Largest plausible amount: above it a value is a unit or parsing mistake, and a few such rows make sum(amount) inf.
AMOUNT_LIMIT = 1e12
# Numeric extra columns must fit a float32 (3.4e38), the widest type models and charts convert them to.
EXTRA_NUMBER_LIMIT = 3.4e38
# Bounds on the work one load may ask for: columns per file, files and folder depth of a glob, a field's size (a
# longer field or a NUL byte quarantines its row), a line's size (beyond it the file is refused), extra columns added
# to `transactions` (only those the user chose), unmapped columns kept aside in `transaction_extras` and the values
# one load writes there.
MAX_COLUMNS = 256
MAX_GLOB_FILES = 10_000
MAX_GLOB_DEPTH = 6
MAX_FIELD_BYTES = 1 << 20
MAX_LINE_BYTES = 16 << 20
MAX_EXTRA_COLUMNS = 64
# A browser upload is held in memory and copied to a temporary file: the same cap as `maxUploadSize` in
# .streamlit/config.toml (a larger file goes in a data folder and is loaded by path).
MAX_UPLOAD_BYTES = 200 << 20
MAX_SIDE_COLUMNS = 128
MAX_SIDE_VALUES = 50_000_000
# DuckDB memory while a load runs: above it, temp tables and sorts spill to disk (keeps peak RSS of a 10M-row load
# low). It is a database-wide setting, restored when the load ends.
INGEST_MEMORY_LIMIT = "2GB"


@dataclass(frozen=True)
class IngestReport:
    """What one load did: counts, reasons for quarantined rows, timing and the mapping used."""

    ingest_id: int | None
    source: str
    status: str  # ok | skipped
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    mapping: dict = field(default_factory=dict)
    message: str = ""
    files: int = 1
    engine: str = "duckdb"
    notes: tuple[str, ...] = ()  # what the user should know: a label column left unmapped, features switched off


@dataclass(frozen=True)
class SourceFile:
    """How to read one file: its kind and, for text, its compression and encoding."""

    path: Path
    kind: str  # csv | parquet
    compression: str = "none"  # none | gzip | zstd
    encoding: str = "utf-8"  # utf-8 | utf-16 | latin-1


@dataclass(frozen=True)
class SourcePreview:
    """What the Data page shows before loading: sample rows, source columns and the detected mapping."""

    source: str
    files: list[str]
    kind: str
    sample: pd.DataFrame
    columns: pd.DataFrame  # column, type, kind, filled, example, mapped_to
    mapping: ColumnMapping


@dataclass
class Staged:
    """A readable source inside one DuckDB cursor: SQL for its rows (+ __fidx, __row) and what it holds."""

    sql: str
    params: dict[str, Any]
    columns: list[str]
    types: dict[str, str]
    files: list[SourceFile]
    digests: list[str]
    reject_tables: list[tuple[int, str]] = field(default_factory=list)
    check_sql: str = ""  # the rows again, read keeping bad lines aside (a CSV's first full pass); else `sql`
    # `check_sql` without __row, for one CSV file: `row_number() OVER ()` runs the scan on one thread (2.5x the wall
    # time of a parallel read on 2 cores), so the checking pass numbers its stored rows afterwards by row id
    check_unnumbered: str = ""

    @property
    def checking_sql(self) -> str:
        """SQL for the pass that checks every row (and fills `reject_tables`)."""
        return self.check_sql or self.sql


def no_progress(_fraction: float, _message: str) -> None:
    return None


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
