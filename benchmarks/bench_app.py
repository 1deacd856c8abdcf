"""Benchmark the app in a real browser: first paint of every page and case open, on a workspace of N rows.

    python benchmarks/bench_app.py --rows 10000000

Builds (or reuses) bench_data/app_N.duckdb the way a user gets it (ingest, then the app's own refresh: features,
first model, scores), serves `streamlit run app.py` on 127.0.0.1 and drives Debian's Chromium with Playwright.
"""
from __future__ import annotations

import argparse
import statistics
import time

from _common import BENCH_DATA, Stage, measure, report

from fraudlab.browser import chromium, open_page, serve_app, wait_idle
from fraudlab.generate import simulate
from fraudlab.ingest import ingest_table
from fraudlab.pipeline import refresh
from fraudlab.workspace import Workspace

PAGES = ("Case queue", "Case detail", "Fraud rings", "Segments", "Drift", "Models", "Load data", "Overview")


def build(rows: int) -> tuple[str, list[Stage]]:
    """A workspace of `rows` simulated transactions brought up to date by the app's own refresh."""
    path = BENCH_DATA / f"app_{rows}.duckdb"
    stages = []
    if not path.exists():
        BENCH_DATA.mkdir(exist_ok=True)
        ws = Workspace(path)
        stage, _ = measure("build: simulate + ingest", rows,
                           lambda: ingest_table(ws, simulate(rows=rows, seed=3).transactions, source="bench"))
        stages.append(stage)
        stage, steps = measure("build: features + first model + scores", rows, lambda: refresh(ws))
        stage.note = "; ".join(steps)[:120]
        stages.append(stage)
        ws.close()
    return str(path), stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    path, stages = build(args.rows)
    ws = Workspace(path)
    top = ws.scalar("SELECT transaction_id FROM scores ORDER BY score DESC LIMIT 1")
    ws.close()
    with serve_app(path, BENCH_DATA / "bench_app_streamlit.log") as url, chromium() as browser:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        began = time.perf_counter()
        page.goto(url)
        wait_idle(page, timeout_ms=600_000)
        stages.append(Stage("first page after server start (cold)", args.rows, time.perf_counter() - began, 0, 0))
        warm = []
        for label in PAGES:  # warm-up: first visits compute (segments, drift report, rings) and fill the caches
            warm.append(f"{label} {open_page(page, url, label, timeout_ms=900_000):.0f} s")
            print("warm-up:", warm[-1], flush=True)
        stages.append(Stage("warm-up: first visit of every page", args.rows, 0, 0, 0, note="; ".join(warm)))
        for label in PAGES:
            times = [open_page(page, url, label) for _ in range(3)]
            stages.append(Stage(f"page switch: {label}", args.rows, statistics.median(times), 0, 0,
                                note=f"max {max(times):.2f} s of 3"))
        times = []
        for _ in range(3):
            started = time.perf_counter()
            page.goto(f"{url}/case?case={top}")
            wait_idle(page)
            times.append(time.perf_counter() - started)
        stages.append(Stage("case open (top case, by URL)", args.rows, statistics.median(times), 0, 0,
                            note=f"max {max(times):.2f} s of 3; full page load"))
    report(stages, title=f"app in Chromium at {args.rows:,} rows")


if __name__ == "__main__":
    main()
