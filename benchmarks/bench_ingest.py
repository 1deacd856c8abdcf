"""Ingest benchmark: fraudlab ingest of CSV and Parquet beside plain pandas.read_csv of the same file.

    python benchmarks/bench_ingest.py --rows 1000000 [--dask]
    python benchmarks/bench_ingest.py --rows 1000000 --stages     # where a load's time goes, per step

Data comes from fraudlab.generate (seed 1) and is written once to bench_data/ (git-ignored). Each stage runs in
its own fresh process (and each fraudlab stage into a fresh workspace) so peak RSS belongs to that stage alone.
The ratio is pandas.read_csv seconds / our seconds: how many times faster than reading the CSV with plain pandas.

Measured 2026-11-30, session 3 (one-table path: CSV staged in a temp table, every typed row in `_checked`, then
copied): 1M rows at load 1.7: CSV 161k -> 192k rows/s, Parquet 245k -> 341k rows/s (build_checked 3.6 -> 2.0 s and
2.6 -> 1.5 s), peak RSS 1.16 -> 0.82 GB and 0.81 -> 0.56 GB. 10M rows at load 2.6-3.8: CSV 105k -> 122k rows/s
(build_checked 33 s; hashing the 1.9 GB file from a cold cache took 11 s of the 82), Parquet 166k -> 208k rows/s
(48 s: build_checked 17 s, writing 23 s), peak RSS 2.2-2.3 GB.

Measured 2026-11-30, session 4 (two passes over the source, `fraudlab/ingest/passes.py`; the sha256 computed in a
thread beside the checking pass), other sessions' tests running beside (load 2.2-3.8), so runs vary by up to 2x:
- 10M rows: CSV 43-54 s (184k-231k rows/s; one run at 87 s, machine busy, file probably not cached), Parquet 21-41 s
  (243k-469k rows/s); peak RSS 2.0 / 1.9 GB. Steps (--stages): CSV check pass 17-23 s, write pass 20-24 s,
  labels and quarantine 2.8-3.5 s, duplicate check 1.4 s; Parquet check 4.6-5.4 s, write 22-28 s, labels 1.6-4.3 s,
  duplicates 1.1-2.3 s. The file hash runs beside the check pass: 2.4 s warm, 24 s when the CSV was not cached.
- 1M rows: CSV 5.9-7.5 s (134k-170k rows/s), Parquet 3.4-4.7 s (212k-295k rows/s): no gain over the session-3 code
  measured in the same hour (CSV 6.4 s, Parquet 3.8 s). The 1M Parquet file is one row group, read by one thread.
- The issue-16 targets (500k rows/s CSV, 1M rows/s Parquet) are missed. The floor is the write: a bare
  `INSERT INTO transactions SELECT ... FROM read_parquet(...)` of the 10M rows, no typing or checks, took 10.5 s
  (typed 12.9 s), most of it compressing the 13 text columns (dict_fsst: without it the 1M insert was ~30% faster and
  the file 3x larger); the CSV pays its parse twice (about 0.56 s per 1M rows each) on top.

Measured 2026-12-01, session 5 (branch loadspeed): (1) `rules.text_expr` keeps a plain value (ASCII, no outer space,
not an NA word) as it is, without trim(): 25x cheaper per value, it was most of the write pass's typing; (2) the
checking pass reads one CSV in parallel (`row_number() OVER ()` had run the scan on one thread, 2.5x its wall time)
and numbers the stored rows by row id. Tried and dropped: inserting every row of a CSV with bad rows and deleting
those by position (skipping them by number runs the write pass on one thread): the COMMIT then rewrites the inserted
rows (1.7 s per 1M rows, as long as the insert; 10M rows with 0.5% bad: 111 s against 89 s, load 3.4-3.8), and
the file keeps the deleted rows (+3%). The machine was shared by three sessions and loaded 2.3-5 (others' work
outside the lock), so wall times vary 2x between runs of the same code; CPU seconds (all threads) are steadier.
Same-hour A/B, 10M rows, statement timings (`--stages`-like), session-4 code -> this code:
- load 2.3-2.6: CSV 46.5 -> 35.9 s (215k -> 278k rows/s; check 17.3 -> 12.0 s, write 24.7 -> 17.8 s; 68 -> 63 CPU s),
  Parquet 21.6 -> 17.5 s (463k -> 571k rows/s; write 14.8 -> 11.7 s; 40 -> 33 CPU s).
- load 3.3-5: CSV 125 -> 75 s (85 -> 66 CPU s); Parquet 36 -> 52 s (46 -> 44 CPU s: noise decides there).
  Typing the 11 text columns of the 1M Parquet rows (one thread, into a temp table): 1.12 -> 0.25 CPU s beyond the
  bare copy, i.e. about 9 CPU s less per 10M-row load.
- `bench_ingest.py --rows 10000000` at load 3.2-3.5: CSV 53.3 s (188k rows/s), Parquet 27.9 s (359k rows/s), peak
  RSS 2.09 / 1.90 GB; pandas.read_csv 6.6 s. `--stages`: CSV check 20.7 s, write 24.7 s, labels 4.1 s, duplicates
  2.1 s; Parquet check 4.9 s, write 20.7 s. At 1M (load 2.8-3.2): CSV 9.2 s in the table (first stage), 5.7 s in
  `--stages` (176k rows/s); Parquet 4.4 / 3.2 s (228k-317k rows/s); peak RSS 0.73 / 0.51 GB.
- The targets (500k rows/s CSV, 1M rows/s Parquet at 10M) are still missed. The floor is CPU: a bare
  `INSERT INTO transactions SELECT <canonical columns> FROM read_parquet(...)` costs 1.9-2.2 CPU s per 1M rows (about
  0.5 of it per row whatever the columns; compression: `force_compression='uncompressed'` saves 15% and makes the file
  3.5x larger, 'dictionary' 25% and 2.9x; `preserve_insertion_order=false` gains nothing measurable and would lose the
  time order the table is stored in). So 10M rows need >= 20 CPU s just to be written: 10 s on two idle cores, the
  whole Parquet target. A CSV load now costs about 63 CPU s per 10M rows: two parses (about 5 CPU s each), typing and
  checks (about 14), the write (about 34 with the second parse), labels (3.5), duplicates (2.4); 500k rows/s would
  need <= 40 CPU s on two idle cores, i.e. one parse and no second typing (a single pass writing good rows while
  keeping the rest aside, which DuckDB cannot do in one statement).

Measured 2026-12-01, session 7 (branch load7). Two other people ran heavy work on the machine (serialized by the lock)
and more outside it (load 1.7-4.2, at times a busy loop), so wall times moved up to 2x between runs of the same code;
CPU seconds (all threads of the process) are what the comparisons below rest on.
Kept: (1) the hashing thread also looks for a NUL byte (free beside sha256: memchr), and an uncompressed utf-8 or
latin-1 CSV whose bytes hold none is checked without the NUL test of every text value (the test was 0.33 of the
checks' 1.15 CPU s per 1M rows, one thread; a file with a NUL is checked again with it, a gzip/zstd/utf-16 file keeps
it); (2) the usual label spellings (True/False/1/0/true/false) are read without trim and lower (0.10 -> 0.05 CPU s
per 1M values, in both passes). Same-hour A/B, 10M-row CSV, `--stages`-like steps, load 3.6-4.2: 62.4 / 61.9 ->
58.4 / 56.8 CPU s (checking pass 20.3 / 20.8 -> 17.8 / 16.4 CPU s, write 34.1 / 33.0 -> 32.1 / 31.9); Parquet loads
are unchanged (~33-35 CPU s). `bench_ingest.py --rows 10000000` at load 3.7 (busy loop running): this code CSV 59.4 s
(168k rows/s), Parquet 33.4 s (299k); the session-6 code right after: CSV 70.1 s (143k), Parquet 31.8 s (315k);
pandas.read_csv 6.1-7.5 s; peak RSS 2.07 / 1.89 GB. At 1M (load 3.2-3.5): CSV 7.5 s, Parquet 3.5 s, 0.71 / 0.55 GB.
In the quietest hour (load 1.7-1.9) the session-6 code took 31.8-35.9 s (58.7-63.1 CPU s) for the 10M-row CSV.
Tried and dropped:
- Cheaper string compression (10M Parquet, load 2.2-2.4): default 18.2 s, 33.4 CPU s, file 726 MB;
  `disabled_compression_methods='dict_fsst'` 14.9 s, 24.9 CPU s, 1,779 MB (text then stored uncompressed: the 2.0
  storage no longer picks plain 'dictionary' or 'fsst'); `force_compression='zstd'` 17.9 s, 28.6 CPU s, 1,142 MB.
  Per column (inserting 1M values): 0.07-0.23 CPU s with dict_fsst, most on high-cardinality columns
  (transaction_id 0.23, device_id 0.20, card_id 0.19, email 0.18; 0.07-0.12 uncompressed); zstd is cheaper only
  there (0.09-0.18, files 10-90% larger) and 3-8x larger on low-cardinality ones. DuckDB 2.0 sets compression
  per column only in CREATE TABLE (`col VARCHAR USING COMPRESSION zstd`; no ALTER): a migration rebuilding
  transactions, for ~0.2 CPU s per 1M rows.
  A 1.6-2.5x larger file that every later scan reads did not seem worth 15-25% of a load.
- One parse (the Dask path's one-table shape: every typed column in a temp table, then inserted from it; row numbers
  from row ids through a view, no copy): 1M rows 5.3 vs 6.4 CPU s, but 10M rows 32.1 s / 58.1 CPU s vs 31.8 s /
  58.7 CPU s for two passes: the 10M-row table spills under the 2 GB cap, and storing it costs ~10 CPU s more than
  the narrow check table, what the write then saves (~12). Numbering by a copy instead of a view: 39.4 s / 73 CPU s.
- Cheaper forms of the per-value tests, none better (one thread, 1M rows): suffix / ord / rtrim variants of
  `text_expr`'s plain test; strpos / instr / LIKE / regexp for the NUL test (0.32-0.87 vs 0.33 for 19 columns);
  guarding the reasons' concat_ws by one OR of their conditions (0.86 vs 0.86). Reading the 20,000-row profile sample
  without row numbers: no gain (the reader's 16 MB line limit, not the numbering, makes that sample cost 0.4 CPU s
  on the 10M-row file, 0.07 without the limit; a full scan is not measurably slower with it).
- Where a 10M-row CSV load's ~57 CPU s go now: checking pass 16-18 (parse ~6, typing and checks ~9, temp table ~2),
  write pass 32 (parse ~6, typing ~6, compression and storage ~20), duplicates 2.1-2.4, labels and quarantine
  3.1-3.6, sha256 1.2, scan and profile 2-3. Parquet (~33-35): check 4.7-5.2, write 22-24, duplicates 1.9-2.5,
  labels 3.1-3.3. The targets stay out of reach at default compression: 500k rows/s from CSV needs <= 40 CPU s per
  10M rows on two idle cores, 1M rows/s from Parquet <= 20, and Parquet's write pass alone takes 22-24.

Measured 2026-12-02, session 16, a new machine (a pure-Python loop of 20M additions 1.7 s: about session 7's speed,
twice session 9-15's), quiet. `bench_ingest.py --rows 10000000`: CSV 50.2 s (199k rows/s, 93 CPU s), Parquet 24.1 s
(415k rows/s, 45 CPU s), peak RSS 2.09 / 1.92 GB; pandas.read_csv 5.1 s. `--stages`: CSV 46.4 s (check 13.7, write
25.8, duplicates 2.3, labels and quarantine 2.2), Parquet 25.5 s (check 3.7, write 17.3, duplicates 1.2, labels 2.3).
The floor on this machine: a bare `INSERT INTO t SELECT * FROM read_parquet(...)` of the same 10M rows into an empty
table of the file's own 19 columns, nothing typed or checked, then CHECKPOINT: 15.6 s, 29.7 CPU s (session 5's
machine: 10.5 s). The Parquet target (1M rows/s, 10 s) is below what DuckDB's insert alone takes here, and the CSV
target (500k rows/s, 20 s) leaves 4.4 s beyond that insert for parsing and checking 1.9 GB of text: both stay out of
reach on two cores with DuckDB's default storage compression (see session 7 for what lighter compression costs)."""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from _common import BENCH_DATA, Stage, measure, report, set_ratio

STAGE_PREFIX = "STAGE "
STAGES = ("fraudlab ingest csv (duckdb)", "fraudlab ingest parquet (duckdb)", "pandas.read_csv",
          "pandas.read_csv (pyarrow engine)")
DASK_STAGE = "fraudlab ingest csv parts (dask, 2 workers)"


def data_files(rows: int) -> tuple[Path, Path, Path]:
    """CSV, Parquet and a folder of 8 CSV parts of the same simulated rows (made once, in a child process)."""
    csv, parquet = BENCH_DATA / f"ingest_{rows}.csv", BENCH_DATA / f"ingest_{rows}.parquet"
    parts = BENCH_DATA / f"ingest_{rows}_parts"
    if not (csv.exists() and parquet.exists() and parts.exists()):
        subprocess.run([sys.executable, __file__, "--rows", str(rows), "--make-data"], check=True)
    return csv, parquet, parts


def make_data(rows: int) -> None:
    import numpy as np

    from fraudlab.generate import simulate

    BENCH_DATA.mkdir(exist_ok=True)
    tx = simulate(rows=rows, seed=1).transactions
    csv, parquet = BENCH_DATA / f"ingest_{rows}.csv", BENCH_DATA / f"ingest_{rows}.parquet"
    parts = BENCH_DATA / f"ingest_{rows}_parts"
    tx.to_parquet(parquet, index=False)
    tx.to_csv(csv, index=False)
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir()
    for k, index in enumerate(np.array_split(np.arange(len(tx)), 8)):
        tx.iloc[index].to_csv(parts / f"part{k}.csv", index=False)


def run_stage(name: str, rows: int) -> Stage:
    """Run one stage in this process and return its measurement."""
    import pandas as pd

    from fraudlab.data_roots import ANYWHERE  # a benchmark is the operator's: its files are not in a data folder
    from fraudlab.ingest import ingest_path
    from fraudlab.workspace import Workspace

    csv, parquet, parts = data_files(rows)
    folder = Path(tempfile.mkdtemp(prefix="bench_ingest_", dir=BENCH_DATA))
    try:
        if name.startswith("fraudlab"):
            ws = Workspace(folder / "ws.duckdb")
            if "dask" in name:
                from fraudlab.ingest.dask_engine import dask_client, ingest_path_dask

                with dask_client(n_workers=2) as client:
                    stage, result = measure(name, rows, lambda: ingest_path_dask(ws, str(parts / "*.csv"),
                                                                                 client=client, roots=ANYWHERE))
            else:
                source = csv if "csv" in name else parquet
                stage, result = measure(name, rows, lambda: ingest_path(ws, source, roots=ANYWHERE))
            stage.note = f"{result.rows_loaded:,} loaded, {result.rows_quarantined:,} quarantined"
            assert result.rows_loaded == rows, result
            ws.close()
        elif name == "pandas.read_csv":
            stage, frame = measure(name, rows, lambda: pd.read_csv(csv))
            stage.note = f"{len(frame):,} rows, no validation, nothing stored"
        else:
            stage, frame = measure(name, rows, lambda: pd.read_csv(csv, engine="pyarrow"))
            stage.note = f"{len(frame):,} rows, no validation, nothing stored"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return stage


# the steps of `fraudlab.ingest.load._ingest`, in order; file_sha256 runs in a thread beside check_rows
LOAD_STEPS = ("file_sha256", "scan_files", "profile_columns", "plan_extras", "check_rows", "collect_rejects",
              "refuse_unreadable_key", "mark_duplicates_in_source", "write_good_rows", "_write_rows",
              "write_side_rows", "_reason_counts")


def step_timings(rows: int) -> None:
    """Load the CSV and the Parquet file once each and print seconds per step of `fraudlab.ingest.load`."""
    import time

    import fraudlab.ingest.load as load
    from fraudlab.data_roots import ANYWHERE
    from fraudlab.workspace import Workspace

    spent: dict[str, float] = {}

    def timed(name: str):
        step = getattr(load, name)

        def run(*args, **kwargs):
            began = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - began
        return run

    for name in LOAD_STEPS:
        setattr(load, name, timed(name))
    for source in data_files(rows)[:2]:
        spent.clear()
        folder = Path(tempfile.mkdtemp(prefix="bench_ingest_", dir=BENCH_DATA))
        try:
            ws = Workspace(folder / "ws.duckdb")
            began = time.perf_counter()
            load.ingest_path(ws, source, roots=ANYWHERE)
            total = time.perf_counter() - began
            ws.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"\n## steps of one load: {source.name} ({rows:,} rows, {total:.2f} s, {rows / total:,.0f} rows/s)")
        for name in LOAD_STEPS:
            print(f"{name:<24} {spent.get(name, 0.0):>8.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dask", action="store_true", help="also time the Dask path on 8 CSV parts")
    parser.add_argument("--stages", action="store_true", help="print seconds per step of one CSV and one Parquet load")
    parser.add_argument("--make-data", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_data:
        make_data(args.rows)
        return
    if args.stages:
        step_timings(args.rows)
        return
    if args.stage:
        print(STAGE_PREFIX + json.dumps(asdict(run_stage(args.stage, args.rows))))
        return
    csv, parquet, _ = data_files(args.rows)
    stages = []
    for name in STAGES + ((DASK_STAGE,) if args.dask else ()):
        out = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--stage", name],
                             check=True, capture_output=True, text=True).stdout
        line = next(x for x in out.splitlines() if x.startswith(STAGE_PREFIX))
        stages.append(Stage(**json.loads(line[len(STAGE_PREFIX):])))
    baseline = next(s for s in stages if s.stage == "pandas.read_csv")
    for s in stages:
        if s is not baseline:
            set_ratio(s, baseline)
    sizes = f"CSV {csv.stat().st_size / 2**20:,.0f} MB, Parquet {parquet.stat().st_size / 2**20:,.0f} MB"
    report(stages, title=f"ingest of {args.rows:,} simulated rows ({sizes}); ratio = pandas.read_csv s / stage s")


if __name__ == "__main__":
    main()
