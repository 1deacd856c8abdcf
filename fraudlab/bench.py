"""`python -m fraudlab bench`: run every script in benchmarks/ at one size and gather their tables."""
from __future__ import annotations

import json
import resource
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


def register_cli(subparsers) -> None:
    """Add `bench --rows N [--only ingest rings ...]`."""
    parser = subparsers.add_parser("bench", help="run the benchmarks in benchmarks/ and print one table")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", nargs="*", default=None, help="run only scripts whose name has these words")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per script")
    parser.add_argument("--verbose", action="store_true", help="also print each script's own output")
    parser.set_defaults(func=_cli_bench)


def _cli_bench(args) -> int:
    all_rows: list[BenchRow] = []
    failed = 0
    for script in bench_scripts(args.only):
        print(f"running {script.name} --rows {args.rows:,} …", flush=True)
        rows, output, wall = run_script(script, args.rows, args.timeout)
        if args.verbose or not rows:
            print(output)
        failed += "[exit " in output
        all_rows.extend(rows)
        print(f"  {script.name}: {wall:.1f} s", flush=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print()
    print(format_table(all_rows))
    print(f"\nlargest child peak RSS: {usage.ru_maxrss / 1024:,.0f} MB")
    return 1 if failed else 0
