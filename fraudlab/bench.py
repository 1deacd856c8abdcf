"""`python -m fraudlab bench`: run every script in benchmarks/ at one size and gather their tables."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fraudlab.config import PROJECT_DIR

BENCH_DIR = PROJECT_DIR / "benchmarks"
RESULT_PREFIX = "BENCH "


@dataclass(frozen=True)
class BenchRow:
    """One measured stage of one benchmark script."""

    script: str
    stage: str
    rows: int
    seconds: float
    rows_per_s: float
    peak_rss_mb: float
    ratio: float | None


def bench_scripts(only: list[str] | None = None) -> list[Path]:
    """The benchmark scripts, optionally only those whose name contains one of `only`."""
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if any(word in s.stem for word in only)]
    return scripts


def parse_rows(script: str, output: str) -> list[BenchRow]:
    """Read the `BENCH {json}` lines a script printed (see benchmarks/_common.py)."""
    rows = []
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            data = json.loads(line[len(RESULT_PREFIX):])
            rows.append(BenchRow(script, str(data["stage"]), int(data.get("rows", 0)), float(data["seconds"]),
                                 float(data.get("rows_per_s") or 0.0), float(data.get("peak_rss_mb") or 0.0),
                                 None if data.get("ratio") is None else float(data["ratio"])))
    return rows


def run_script(script: Path, rows: int, timeout_s: float) -> tuple[list[BenchRow], str, float]:
    """Run one benchmark script in its own process; return its rows, its output and wall seconds."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), "--rows", str(rows)], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=timeout_s)
    wall = time.perf_counter() - started
    output = proc.stdout + (f"\n[exit {proc.returncode}]\n{proc.stderr[-2000:]}" if proc.returncode else "")
    return parse_rows(script.stem, proc.stdout), output, wall


def format_table(rows: list[BenchRow]) -> str:
    """One Markdown table of every stage measured."""
    lines = ["| benchmark | stage | rows | seconds | rows/s | peak RSS MB | ratio vs plain way |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.1f}×"
        lines.append(f"| {r.script} | {r.stage} | {r.rows:,} | {r.seconds:.2f} | {r.rows_per_s:,.0f} | "
                     f"{r.peak_rss_mb:,.0f} | {ratio} |")
    return "\n".join(lines)
