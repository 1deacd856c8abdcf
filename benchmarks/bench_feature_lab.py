"""Feature lab timings: preview on the newest rows, backfill of one definition vs a full build, evaluate.

    python benchmarks/bench_feature_lab.py --rows 200000

Measured 2026-11-30 at 10M rows (2 shared cores, load ~3): full build 159.2 s, preview 3.2 s (over a 10M history),
backfill 5.5 s (29.8x faster than the 163.3 s rebuild), evaluate 5.3 s (target 15 s; it was 15.7-16.6 s before labels
were joined row by row and the value order came from DuckDB's sort), peak RSS 7.8 GB (the simulated frame stays in
memory; evaluate itself adds ~0.5 GB).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import measure as _measure
from _common import report

from fraudlab.auth.actors import Actor
from fraudlab.featurelab import FeatureDef, add_definition
from fraudlab.featurelab.evaluate import SHUFFLE_SAMPLE, evaluate_feature, preview_feature
from fraudlab.features import build_features
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.workspace import Workspace


def measure(stage: str, rows: int, work):
    """Time one stage and say so at once on stderr (partial results survive a stopped run)."""
    result = _measure(stage, rows, work)
    print(f"{time.strftime('%H:%M:%S')} {stage}: {result[0].seconds:.2f} s, peak RSS {result[0].peak_rss_mb:,.0f} MB",
          file=sys.stderr, flush=True)
    return result


DEFN = FeatureDef("c_online_mean_30d", "customer_id", "mean", "amount", "30d", where="channel = 'online'")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ws = Workspace(Path(folder) / "bench.duckdb")
        measure("simulate + ingest (setup, not a target)", args.rows,
                lambda: ingest_table(ws, simulate(rows=args.rows, seed=0, days=90).transactions, source="bench"))
        full, _ = measure("build_features (full, 46 built-ins)", args.rows, lambda: build_features(ws))
        preview, _ = measure("preview_feature (newest 50k rows)", 50_000, lambda: preview_feature(ws, DEFN))
        backfill, _ = measure("add_definition (backfill one column)", args.rows,
                              lambda: add_definition(ws, DEFN, Actor("bench", "data_scientist")))
        rebuild, _ = measure("build_features (full + 1 definition)", args.rows, lambda: build_features(ws))
        evaluate, ev = measure("evaluate_feature (all rows)", args.rows, lambda: evaluate_feature(ws, DEFN.name))
        backfill.ratio = rebuild.seconds / backfill.seconds if backfill.seconds else None
        backfill.note = "ratio: full rebuild seconds / backfill seconds (target < 20 s at 10M and ratio >= 5)"
        preview.note = "target < 3 s on a 1M-row history"
        evaluate.note = (f"target < 15 s at 10M; exact on all rows except correlations ({ev.correlation_rows:,}-row "
                         f"sample) and the future shuffle ({SHUFFLE_SAMPLE:,} newest rows)")
        ws.close()
    report([full, preview, backfill, rebuild, evaluate], title=f"feature lab, {args.rows:,} simulated rows")


if __name__ == "__main__":
    main()
