"""The write jobs the command line runs directly or hands to a running server: ingest, features, train, score, drift.

Each kind takes JSON-safe arguments (what `python -m fraudlab KIND ...` parsed), the acting identity and a progress
callback, and returns a :class:`JobResult`: the summary lines the command prints and a few named numbers. The CLI's
direct path and the server's job runner call the same function, so both print the same summary.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from fraudlab.auth.actors import Actor
from fraudlab.auth.permissions import require
from fraudlab.errors import FraudlabError
from fraudlab.jobs import Progress
from fraudlab.workspace import Workspace


@dataclass(frozen=True)
class JobResult:
    """What a job did: the lines a person reads, and named numbers a program reads."""

    lines: tuple[str, ...]
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobKind:
    """One kind of job: the permission it needs and the function that does it."""

    name: str
    action: str
    run: Callable[[Workspace, dict, Actor, Progress], JobResult]


def _timestamp(value: str | None) -> pd.Timestamp | None:
    return pd.Timestamp(value) if value else None


def _ingest(ws: Workspace, args: dict, who: Actor, progress: Progress) -> JobResult:
    from fraudlab.data_roots import ANYWHERE
    from fraudlab.ingest import detect, ingest_path

    # the operator (a shell on this machine: the CLI, directly or through the server's token) may load any file it
    # can read; an API key is an integration and stays inside the data folders (FRAUDLAB_DATA_ROOTS)
    roots = ANYWHERE if who.via == "cli" else None
    path = str(args["path"])
    mapping = None
    if args.get("map"):
        mapping = detect(path, roots=roots)
        for item in args["map"]:
            target, _, column = str(item).partition("=")
            mapping = mapping.with_column(target.strip(), column.strip() or None)
    keep = list(args.get("keep_column") or [])
    steps: list[str] = []
    if args.get("refresh"):  # then features, scores and cases of what arrived (incrementally), late rows marked
        from fraudlab.pipeline import load

        horizon = args.get("late_horizon_hours")
        report, steps = load(ws, path, mapping, engine=str(args.get("engine") or "duckdb"), who=who,
                             progress=progress, roots=roots, keep_columns=keep,
                             late_horizon_hours=None if horizon is None else float(horizon))
    elif args.get("engine") == "dask":
        from fraudlab.ingest.dask_engine import ingest_path_dask
        report = ingest_path_dask(ws, path, mapping, progress, who=who, roots=roots, keep_columns=keep)
    else:
        report = ingest_path(ws, path, mapping, progress, who=who, roots=roots, keep_columns=keep)
    lines = [f"{report.source}: {report.message} in {report.seconds:.2f} s"]
    lines += [f"  {count:>10,}  {reason}" for reason, count in report.reasons.items()]
    lines += [f"note: {note}" for note in report.notes]
    lines += [f"  {step}" for step in steps if step not in report.notes]
    return JobResult(tuple(lines), {"rows_loaded": int(report.rows_loaded), "seconds": float(report.seconds),
                                    "status": report.status, "message": report.message, "steps": steps})


def _features(ws: Workspace, args: dict, who: Actor, progress: Progress) -> JobResult:
    from fraudlab.features import DEFAULT_LABEL_DELAY_DAYS, build_features

    delay = float(args.get("label_delay_days", DEFAULT_LABEL_DELAY_DAYS))
    engine = args.get("engine") or "duckdb"
    if engine == "dask":
        from fraudlab.features_dask import build_features_dask

        report = build_features_dask(ws, delay, progress=progress, who=who)
    else:
        report = build_features(ws, delay, progress=progress, who=who)
    lines = [f"{len(report.columns)} features for {report.rows:,} rows in {report.seconds:.1f} s ({engine})"]
    lines += [f"left out {col}: {why}" for col, why in report.excluded.items()]
    return JobResult(tuple(lines), {"rows": int(report.rows), "columns": len(report.columns)})


def _train(ws: Workspace, args: dict, who: Actor, progress: Progress) -> JobResult:
    from fraudlab import pipeline

    outcome = pipeline.retrain(ws, _timestamp(args.get("train_from")), _timestamp(args.get("train_to")),
                               search=bool(args.get("search")), rebuild_features=bool(args.get("rebuild_features")),
                               who=who, progress=progress)
    lines = []
    if outcome.features is not None:
        f = outcome.features
        lines.append(f"features: {len(f.columns)} columns for {f.rows:,} rows in {f.seconds:.1f} s")
    result, m = outcome.result, outcome.result.metrics
    lines.append(f"{outcome.model_id}: trained in {result.seconds:.1f} s on "
                 f"{result.train_from:%Y-%m-%d}..{result.train_to:%Y-%m-%d}; "
                 f"test PR-AUC {m.get('pr_auc', float('nan')):.3f}, ROC-AUC {m.get('roc_auc', float('nan')):.3f}, "
                 f"recall@budget {m.get('recall_at_budget', float('nan')):.2f}")
    if args.get("promote"):
        lines.append(pipeline.promote_and_rescore(ws, outcome.model_id, who=who, progress=progress).message)
    return JobResult(tuple(lines), {"model_id": outcome.model_id})


def _score(ws: Workspace, args: dict, who: Actor, progress: Progress) -> JobResult:
    from fraudlab.scoring import EXPLAIN_TOP, score_window

    report = score_window(ws, _timestamp(args.get("start")), _timestamp(args.get("end")), args.get("model"),
                          int(args.get("explain_top", EXPLAIN_TOP)), who=who, progress=progress)
    lines = [f"scored {report.rows:,} rows with {report.model_id} in {report.seconds:.1f} s "
             f"({report.rows_per_second:,.0f} rows/s); explained {report.explained:,} in {report.explain_seconds:.1f} s"]
    if report.fallback_reasons:
        lines.append(f"scored by the {report.scorer} step because: " + "; ".join(report.fallback_reasons))
    m = report.metrics
    if m.get("pr_auc") is not None:
        lines.append(f"labelled rows {m['rows']:,} ({m['positives']:,} fraud): PR-AUC {m['pr_auc']:.3f}, "
                     f"ROC-AUC {m['roc_auc']:.3f}, precision@budget {m['precision_at_budget']:.2f}, "
                     f"recall@budget {m['recall_at_budget']:.2f}")
    return JobResult(tuple(lines), {"rows": int(report.rows), "model_id": report.model_id})


def _drift(ws: Workspace, args: dict, who: Actor, progress: Progress) -> JobResult:
    from fraudlab.charts.drift import report_html
    from fraudlab.drift import Window, run_report, save_run, split_windows

    ref, cur = split_windows(ws)
    if args.get("reference_ingests"):
        ref = Window.ingests(str(args["reference_ingests"]).split(","))
    elif args.get("reference_from") or args.get("reference_to"):
        ref = Window.dates(args.get("reference_from") or ref.start, args.get("reference_to") or ref.end)
    if args.get("current_ingests"):
        cur = Window.ingests(str(args["current_ingests"]).split(","))
    elif args.get("current_from") or args.get("current_to"):
        cur = Window.dates(args.get("current_from") or cur.start, args.get("current_to") or cur.end)
    rep = run_report(ws, ref, cur, threshold_mode=args.get("thresholds") or "default",
                     multivariate_checks=not args.get("no_multivariate"), progress=progress)
    run_id = save_run(ws, rep, who=who)
    lines = [f"run {run_id}: {rep.verdict['headline']}", f"recommended: {rep.verdict['action']}"]
    if not rep.findings.empty:
        lines.append(rep.findings[["column", "kind", "since", "what"]].to_string(index=False))
    if args.get("html"):
        with open(args["html"], "w", encoding="utf-8") as fh:
            fh.write(report_html(rep))
        lines.append(f"HTML report: {args['html']}")
    return JobResult(tuple(lines), {"run_id": int(run_id), "status": rep.verdict.get("status")})


KINDS: dict[str, JobKind] = {k.name: k for k in (
    JobKind("ingest", "load_data", _ingest),
    JobKind("features", "edit_features", _features),
    JobKind("train", "train", _train),
    JobKind("score", "train", _score),  # rescoring is model work: data scientists and admins
    JobKind("drift", "run_drift", _drift),
)}


def job_kind(name: object) -> JobKind:
    """The kind named, or a FraudlabError listing the kinds."""
    if not isinstance(name, str) or name not in KINDS:
        raise FraudlabError(f"unknown job kind {name!r}: use one of {', '.join(KINDS)}")
    return KINDS[name]


def check_args(kind: JobKind, args: object) -> dict:
    """The arguments of a job as a dict (an ingest needs a path); a FraudlabError a client can act on otherwise."""
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise FraudlabError("'args' must be a JSON object, e.g. {\"path\": \"data/new.csv\"}")
    if kind.name == "ingest" and not str(args.get("path") or "").strip():
        raise FraudlabError("an ingest job needs args.path: the file or glob to load")
    return args


def run_kind(ws: Workspace, kind: str, args: dict, who: Actor, progress: Progress | None = None) -> JobResult:
    """Do one job now, in this thread, as `who` (the role is checked first); return its result."""
    spec = job_kind(kind)
    require(ws, who, spec.action, kind)
    return spec.run(ws, check_args(spec, args), who, progress or (lambda _f, _m: None))
