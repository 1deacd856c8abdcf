"""Benchmark the analysts' queries: queue page (filters + sort + page) and case detail at N scored rows, p50 / p99.

    python benchmarks/bench_cases.py --rows 10000000

Uses the workspace bench_model.py left (bench_data/model_N.duckdb, features + champion + scores) on a copy, or
builds one with the app's own refresh.
"""
from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import numpy as np
from _common import BENCH_DATA, Stage, measure, report

from fraudlab import cases
from fraudlab.auth.actors import Actor
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.pipeline import refresh
from fraudlab.workspace import Workspace, copy_workspace


def workspace(rows: int) -> Path:
    """A scored workspace of `rows` transactions (copied so the benchmark's decisions change nothing else)."""
    BENCH_DATA.mkdir(exist_ok=True)
    source = BENCH_DATA / f"model_{rows}.duckdb"
    target = BENCH_DATA / f"cases_{rows}.duckdb"
    if source.exists():
        return copy_workspace(source, target)
    ws = Workspace(target)
    if ws.count("transactions") == 0:
        ingest_table(ws, simulate(rows=rows, seed=1).transactions, source="bench")
    refresh(ws)
    ws.close()
    return target


def latencies(work, n: int) -> tuple[float, float, float]:
    times = []
    for i in range(n):
        began = time.perf_counter()
        work(i)
        times.append(1000 * (time.perf_counter() - began))
    p50, p99 = np.percentile(times, [50, 99])
    return p50, p99, sum(times) / 1000


FILTERS = [cases.QueueFilter(), cases.QueueFilter(statuses=("open",)), cases.QueueFilter(min_score=0.5),
           cases.QueueFilter(countries=("US", "GB"), channels=("online",)), cases.QueueFilter(min_amount=100.0),
           cases.QueueFilter(reason_families=("velocity", "amount"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    ws = Workspace(workspace(args.rows))
    scored = ws.count("scores")
    stages: list[Stage] = []
    build, n_cases = measure("build case queue from scores", scored, lambda: cases.refresh_cases(ws, force=True))
    build.note = f"{n_cases:,} cases"
    stages.append(build)
    sorts = list(cases.SORTS)
    p50, p99, total = latencies(lambda i: cases.queue(ws, FILTERS[i % len(FILTERS)], sorts[i % len(sorts)],
                                                      offset=50 * (i % 5)), args.n)
    stages.append(Stage("queue page: filters + sort + page", scored, total, 0, args.n / total,
                        note=f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"))
    ids = cases.queue(ws, limit=args.n)[0]["case_id"].tolist()
    p50, p99, total = latencies(lambda i: cases.case_detail(ws, ids[i % len(ids)]), args.n)
    stages.append(Stage("case detail assembly", scored, total, 0, args.n / total,
                        note=f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"))
    before = ws.count("decisions")

    def decide_many(worker: int) -> None:
        for i in range(50):
            cases.decide(ws, ids[(worker * 7 + i) % len(ids)], "legitimate", Actor(f"bench-{worker}", "analyst"), "bench")

    began = time.perf_counter()
    threads = [threading.Thread(target=decide_many, args=(w,)) for w in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    stored = ws.count("decisions") - before
    stages.append(Stage("1,000 decisions from 20 threads", 1000, seconds, 0, 1000 / seconds,
                        note=f"{stored:,} stored"))
    report(stages, title=f"case queue at {scored:,} scored rows")
    ws.close()


if __name__ == "__main__":
    main()
