"""Shared benchmark helpers: time a stage, measure peak RSS, print the table and machine-readable lines.

Every benchmark script calls `report(rows)` at the end: it prints a readable table and one `BENCH {json}` line
per stage, which `python -m fraudlab bench` gathers into one table.

    stage = measure("fraudlab ingest csv", rows, lambda: ingest_path(ws, path))
    report([stage, baseline], title="ingest")
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATA = ROOT / "bench_data"


@dataclass
class Stage:
    """One measured piece of work."""

    stage: str
    rows: int
    seconds: float
    peak_rss_mb: float
    rows_per_s: float
    ratio: float | None = None  # how many times faster than the plain way (baseline seconds / our seconds)
    note: str = ""
    cpu_seconds: float | None = None  # CPU time of every thread of this process: steadier than wall time when shared


class _PeakSampler:
    """Samples this process's RSS every 20 ms while a stage runs."""

    def __init__(self) -> None:
        self._proc = psutil.Process(os.getpid())
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> "_PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def measure(stage: str, rows: int, work: Callable[[], Any], note: str = "") -> tuple[Stage, Any]:
    """Run work once; return its Stage (seconds, CPU seconds and peak RSS of this process during it) and its result."""
    with _PeakSampler() as sampler:
        started, cpu = time.perf_counter(), time.process_time()
        result = work()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Stage(stage, rows, seconds, sampler.peak / 2**20, rows / seconds if seconds else 0.0, note=note,
                 cpu_seconds=cpu), result


def set_ratio(ours: Stage, baseline: Stage) -> Stage:
    """Record how many times faster `ours` was than `baseline` on the same work."""
    ours.ratio = baseline.seconds / ours.seconds if ours.seconds else None
    return ours


def report(stages: list[Stage], title: str) -> None:
    """Print a readable table and `BENCH {json}` lines for `python -m fraudlab bench`."""
    print(f"\n## {title} ({os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB)")
    print(f"{'stage':<44} {'rows':>12} {'seconds':>9} {'CPU s':>7} {'rows/s':>13} {'peak RSS MB':>12} {'ratio':>8}")
    for s in stages:
        ratio = "" if s.ratio is None else f"{s.ratio:.1f}x"
        cpu = "" if s.cpu_seconds is None else f"{s.cpu_seconds:.2f}"
        print(f"{s.stage:<44} {s.rows:>12,} {s.seconds:>9.2f} {cpu:>7} {s.rows_per_s:>13,.0f} {s.peak_rss_mb:>12,.0f} "
              f"{ratio:>8}  {s.note}")
    for s in stages:
        print("BENCH " + json.dumps(asdict(s)))
