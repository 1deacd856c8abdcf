"""A watched folder: each CSV / Parquet file that lands is loaded once, through the incremental pipeline.

A file is taken once it has settled: not modified for `settle_seconds` and, when watching continuously, the same
size and modification time at two polls in a row (a file still being written is left for a later poll). Hidden
files and temporary names (.part, .tmp, .crdownload, .partial) are ignored. Exactly once: the workspace records
every loaded file's sha256 (`ingests`), so a file seen again (the next poll, a restart, a copy under another name)
is skipped by the load itself; within one run a file already handled is not even hashed again.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from fraudlab.auth.actors import SYSTEM, Actor, cli_actor
from fraudlab.data_roots import ANYWHERE
from fraudlab.errors import FraudlabError
from fraudlab.workspace import Workspace

SUFFIXES = (".csv", ".parquet", ".pq", ".gz", ".zst", ".tsv", ".txt")
TEMPORARY = (".part", ".tmp", ".crdownload", ".partial", ".swp")


@dataclass(frozen=True)
class WatchResult:
    """One file handled: loaded, skipped (already loaded) or failed, with the load's message and pipeline steps."""

    path: Path
    status: str  # loaded | skipped | failed
    message: str
    steps: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.path.name}: {self.status}: {self.message}"] + [f"  {s}" for s in self.steps]
        return "\n".join(lines)


Loader = Callable[[Path], tuple[str, str, list[str]]]  # a file -> (loaded | skipped, message, steps)


class FolderWatch:
    """Polls one folder; each :meth:`poll` loads the files that settled since the last one.

    By default each file is loaded into `ws` here; a `loader` loads it elsewhere (the app's server, when it owns the
    workspace) and `ws` may then be None."""

    def __init__(self, ws: Workspace | None, folder: str | Path, settle_seconds: float = 1.0, who: Actor = SYSTEM,
                 late_horizon_hours: float | None = None, stable_polls: bool = True,
                 loader: Loader | None = None) -> None:
        self.ws, self.folder, self.settle, self.who = ws, Path(folder), float(settle_seconds), who
        self.horizon, self.stable_polls = late_horizon_hours, stable_polls
        self.loader = loader or self._load_here
        self._last: dict[Path, tuple[int, int]] = {}
        self._handled: set[tuple[Path, int, int]] = set()
        if not self.folder.is_dir():
            raise FraudlabError(f"{self.folder}: no such folder to watch")

    def candidates(self) -> list[Path]:
        """Data files in the folder (not hidden, not temporary), oldest first."""
        files = [p for p in self.folder.iterdir() if p.is_file() and not p.name.startswith((".", "~"))
                 and p.name.lower().endswith(SUFFIXES) and not p.name.lower().endswith(TEMPORARY)]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def _settled(self, path: Path, now: float) -> bool:
        stat = path.stat()
        sig = (stat.st_size, stat.st_mtime_ns)
        previous, self._last[path] = self._last.get(path), sig
        if stat.st_size == 0 or now - stat.st_mtime < self.settle or (path, *sig) in self._handled:
            return False
        return previous == sig or not self.stable_polls

    def _load_here(self, path: Path) -> tuple[str, str, list[str]]:
        from fraudlab.pipeline import load

        report, steps = load(self.ws, path, who=self.who, source=str(path), roots=ANYWHERE,
                             late_horizon_hours=self.horizon)  # the operator chose the folder
        return ("loaded" if report.status == "ok" else "skipped"), report.message, list(report.notes) + steps

    def poll(self) -> list[WatchResult]:
        """Load every settled file not handled yet; returns what happened to each."""
        results = []
        now = time.time()
        for path in self.candidates():
            if not self._settled(path, now):
                continue
            self._handled.add((path, *self._last[path]))
            try:
                status, message, steps = self.loader(path)
            except FraudlabError as exc:
                results.append(WatchResult(path, "failed", str(exc)))
                continue
            results.append(WatchResult(path, status, message, steps))
        return results


def watch_folder(ws: Workspace | None, folder: str | Path, *, once: bool = False, interval: float = 5.0,
                 settle_seconds: float = 1.0, who: Actor = SYSTEM, late_horizon_hours: float | None = None,
                 on_result: Callable[[WatchResult], None] | None = None,
                 stop: Callable[[], bool] | None = None, loader: Loader | None = None) -> list[WatchResult]:
    """Load files as they land in `folder` until `stop()` (or after one pass with `once`); returns the results.

    With `once`, files are taken when not modified for `settle_seconds` (no second poll to compare sizes).
    """
    watcher = FolderWatch(ws, folder, settle_seconds, who, late_horizon_hours, stable_polls=not once, loader=loader)
    results: list[WatchResult] = []
    while True:
        for result in watcher.poll():
            results.append(result)
            if on_result is not None:
                on_result(result)
        if once or (stop is not None and stop()):
            return results
        time.sleep(interval)


def add_arguments(parser: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int]) -> None:
    """The options of `python -m fraudlab watch`; `handler` is the command in fraudlab/cli.py."""
    parser.add_argument("folder")
    parser.add_argument("--once", action="store_true", help="load what is there now and exit")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls (default 5)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="take a file only when not modified for this many seconds (default 1)")
    parser.add_argument("--late-horizon-hours", type=float, default=None,
                        help="rows later than this behind their customer are 'beyond horizon' (default 24)")
    parser.add_argument("--workspace", default=None, help="workspace file (default: FRAUDLAB_WORKSPACE)")
    parser.set_defaults(func=handler)


def run_watch(ws: Workspace | None, args: argparse.Namespace, show: Callable[[object], None],
              loader: Loader | None = None) -> int:
    """Run the watch command with parsed options, handing each result (and the end) to `show`; returns 0."""
    try:
        results = watch_folder(ws, args.folder, once=args.once, interval=args.interval, settle_seconds=args.settle,
                               late_horizon_hours=args.late_horizon_hours, on_result=show, who=cli_actor(),
                               loader=loader)
    except KeyboardInterrupt:
        show("stopped")
        return 0
    loaded = sum(r.status == "loaded" for r in results)
    show(f"{loaded} file(s) loaded, {len(results) - loaded} skipped or failed")
    return 0
