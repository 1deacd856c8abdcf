"""The one owner of the flow: load -> features -> model -> scores -> cases -> stored page results.

The app frame, the command line and the tests all call these functions; nothing else chains the steps. Each step
runs only when what it depends on changed, so calling :func:`refresh` on an up-to-date workspace costs a few counts.
Page views only read: they never refresh, rebuild or rescore.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

from fraudlab import cases, drift, jobs, promotion, registry, segments
from fraudlab.auth.actors import SYSTEM, Actor
from fraudlab.auth.permissions import require
from fraudlab.batch_predict import Ahead
from fraudlab.config import SAMPLE_PATH, load_config
from fraudlab.data_roots import ANYWHERE, DataRoots
from fraudlab.errors import FraudlabError, ModelError
from fraudlab.features import DEFAULT_LABEL_DELAY_DAYS, FeatureReport, build_features, has_features
from fraudlab.incremental import PlanChanged, can_update, record_arrivals, update_features
from fraudlab.ingest import IngestReport, ingest_path
from fraudlab.jobs import Progress
from fraudlab.model import TrainResult, train_model
from fraudlab.schema import ColumnMapping
from fraudlab.scoring import ScoreReport, score_window
from fraudlab.workspace import Workspace

FIRST_START_EXPLAIN = 5_000
MIN_DRIFT_ROWS = 1_000  # below this a drift report says little; the page offers one on demand


def _quiet(_fraction: float, _message: str) -> None:
    return None


def _part(progress: Progress, lo: float, hi: float) -> Progress:
    """Map a step's own 0..1 progress onto [lo, hi] of the whole job."""
    return lambda f, m: progress(lo + (hi - lo) * min(max(f, 0.0), 1.0), m)


# ---------------------------------------------------------------------------------------------- state

def training_failed(ws: Workspace) -> bool:
    """True when training a first model already failed on exactly this many transactions (do not retry each page)."""
    rows = ws.count("transactions")
    return bool(ws.scalar("SELECT count(*) FROM audit WHERE action = 'first_training_failed' AND details LIKE $d",
                          {"d": f'%"rows": {rows}%'}))


def unscored(ws: Workspace) -> int:
    """Transactions without a score."""
    return int(ws.scalar("SELECT count(*) FROM transactions t ANTI JOIN scores s USING (transaction_id)"))


def is_stale(ws: Workspace) -> bool:
    """True while anything downstream of the data is missing or out of date (what :func:`refresh` would do)."""
    if ws.count("transactions") == 0 or not has_features(ws):
        return True
    if registry.champion(ws) is None:
        return not training_failed(ws)
    return unscored(ws) > 0 or cases.cases_stale(ws)


# ---------------------------------------------------------------------------------------------- refresh

@jobs.as_job('the refresh')
def refresh(ws: Workspace, progress: Progress | None = None, who: Actor = SYSTEM,
            load_sample: bool = True) -> list[str]:
    """Bring everything up to date: sample loaded if the workspace is empty, features, a first model, scores for
    unscored rows, segments, the case queue. Returns what was done, one line a step."""
    require(ws, who, "refresh")
    progress = progress or _quiet
    done: list[str] = []
    if ws.count("transactions") == 0 and load_sample:
        progress(0.02, "loading the bundled sample")
        # the bundled sample is the project's own file, not a typed path: read wherever the data folders are
        report = ingest_path(ws, SAMPLE_PATH, progress=_part(progress, 0.02, 0.17), who=who, roots=ANYWHERE)
        done.append(f"loaded sample: {report.message}")
    if ws.count("transactions") == 0:
        return done
    if not has_features(ws):
        features = build_features(ws, progress=_part(progress, 0.2, 0.4), who=who)
        done.append(f"built {len(features.columns)} point-in-time features in {features.seconds:.1f} s")
    if registry.champion(ws) is None and not training_failed(ws):
        try:
            result = train_model(ws, progress=_part(progress, 0.4, 0.7))
        except ModelError as exc:
            with ws.write("first_training_failed", who, {"rows": ws.count("transactions"), "why": str(exc)}):
                pass
            done.append(f"no model yet: {exc}")
        else:
            model_id = registry.register(ws, result, who=who)
            done.append(f"trained first champion {model_id} (test PR-AUC {result.metrics.get('pr_auc', 0):.3f})")
    if registry.champion(ws) is not None and unscored(ws):
        start = ws.scalar("SELECT min(ts) FROM transactions t ANTI JOIN scores s USING (transaction_id)")
        scored = score_window(ws, start=start, explain_top=FIRST_START_EXPLAIN, who=who,
                              progress=_part(progress, 0.7, 0.9))
        done.append(f"scored {scored.rows:,} transactions, explained the top {scored.explained:,}")
    done += _refresh_results(ws, progress, who)
    progress(1.0, "ready")
    return done


def _refresh_results(ws: Workspace, progress: Progress, who: Actor) -> list[str]:
    """Stored page results that depend on scores: segments (once) and the case queue."""
    done = []
    if segments.can_segment(ws) and not segments.has_segments(ws):
        progress(0.9, "segmenting customers")
        report = segments.segment_customers(ws, who=who)
        done.append(f"segmented {report.customers:,} customers into {report.k} segments")
    if registry.champion(ws) is not None and cases.cases_stale(ws):
        progress(0.95, "building the case queue")
        done.append(f"case queue: {cases.refresh_cases(ws):,} cases")
    if ws.count("drift_runs") == 0 and ws.count("transactions") >= MIN_DRIFT_ROWS:
        progress(0.97, "a first drift report (first half against second half)")
        try:
            reference, current = drift.split_windows(ws)
            run_id = drift.save_run(ws, drift.run_report(ws, reference, current), who=who)
            done.append(f"drift report {run_id} saved")
        except jobs.JobCancelled:
            raise
        except FraudlabError as exc:  # e.g. too little data in a window: the Drift page explains and offers a run
            done.append(f"no drift report yet: {exc}")
    return done


@jobs.as_job('the load')
def load(ws: Workspace, path_or_glob: str | Path, mapping: ColumnMapping | None = None, engine: str = "duckdb",
         who: Actor | None = None, progress: Progress | None = None, source: str | None = None, *,
         roots: DataRoots | None = None, late_horizon_hours: float | None = None,
         keep_columns: Iterable[str] | str | None = None) -> tuple[IngestReport, list[str]]:
    """Load files (inside the data folders `roots`, default FRAUDLAB_DATA_ROOTS; admins only), mark late rows, then
    bring features, scores and cases up to date for what arrived.

    With features already built, only the new rows and the rows whose windows they change are recomputed and
    rescored (see fraudlab.incremental); a large increment or a changed feature set rebuilds whole.
    `keep_columns`: unmapped source columns the user chose to add to the transactions (the rest are kept aside).
    """
    require(ws, who, "load_data", str(source or path_or_glob))
    progress = progress or _quiet
    if engine == "dask":
        from fraudlab.ingest.dask_engine import ingest_path_dask
        report = ingest_path_dask(ws, path_or_glob, mapping, progress=_part(progress, 0.0, 0.4), who=who,
                                  source=source, roots=roots, keep_columns=keep_columns)
    else:
        report = ingest_path(ws, path_or_glob, mapping, progress=_part(progress, 0.0, 0.4), who=who, source=source,
                             roots=roots, keep_columns=keep_columns)
    if not report.rows_loaded:
        return report, []
    return after_load(ws, report, who, _part(progress, 0.4, 1.0), late_horizon_hours)


def after_load(ws: Workspace, report: IngestReport, who: Actor = SYSTEM, progress: Progress | None = None,
               late_horizon_hours: float | None = None) -> tuple[IngestReport, list[str]]:
    """Everything a load sets off: late rows marked (reported in the load's notes), features, scores, cases."""
    from fraudlab.api.writer import flush_workspace  # (the api package imports this module)

    progress = progress or _quiet
    flush_workspace(ws.path)  # live events answered before this load reach DuckDB first: its features see them
    horizon = load_config().late_horizon_hours if late_horizon_hours is None else float(late_horizon_hours)
    steps: list[str] = []
    if report.ingest_id is not None:
        arrivals = record_arrivals(ws, report.ingest_id, horizon, who=who)
        if arrivals.late or arrivals.beyond:
            steps.append(arrivals.message)
            report = replace(report, notes=report.notes + (arrivals.message,))
    steps += incremental_refresh(ws, who, _part(progress, 0.0, 0.5))
    steps += refresh(ws, _part(progress, 0.5, 1.0), who=who, load_sample=False)
    return report, steps


def incremental_refresh(ws: Workspace, who: Actor = SYSTEM, progress: Progress | None = None,
                        changed: Sequence[str] = ()) -> list[str]:
    """Features of rows without them and of the rows they change, then their scores; [] when it does not apply
    (no features yet, or a large increment: :func:`refresh` rebuilds whole).

    `changed`: rows that have features already but arrived after later rows of their keys (late events scored live):
    the later rows their windows reach are recomputed and rescored as for a late row of a load."""
    progress = progress or _quiet
    if not (can_update(ws) or (changed and has_features(ws))):
        return []
    try:
        # the case queue's entity counts need no scores: they are added beside the features, on the idle core;
        # the champion starts predicting the recomputed rows while they are written
        ahead: list[Ahead] = []
        inc = update_features(ws, progress=_part(progress, 0.0, 0.6), who=who, changed=changed,
                              beside=cases.count_loaded, on_rows=lambda rows: ahead.append(Ahead(ws, rows)))
    except PlanChanged:
        features = build_features(ws, label_delay_days=feature_label_delay(ws), progress=_part(progress, 0.0, 0.6),
                                  who=who)
        return [f"the feature set changed: rebuilt {len(features.columns)} features in {features.seconds:.1f} s"]
    done = [inc.message]
    if registry.champion(ws) is not None and inc.first_ts is not None:
        from fraudlab.model import decision_threshold

        # reasons for the rows that alert (the queue shows them), not for every high score of the window
        scored = score_window(ws, start=inc.first_ts, explain_top=FIRST_START_EXPLAIN, who=who,
                              progress=_part(progress, 0.6, 0.9), explain_min_score=decision_threshold(ws),
                              rows=inc.rows, ahead=ahead[0] if ahead else None)
        done.append(f"scored {scored.rows:,} transactions from {inc.first_ts} on (new and repaired rows), "
                    f"explained {scored.explained:,} alerts")
        progress(0.9, "updating the case queue")
        done.append(f"case queue: {cases.refresh_cases(ws, changed_since=inc.first_ts):,} cases (lookups updated "
                    f"from {inc.first_ts} on)")
    return done


def feature_label_delay(ws: Workspace) -> float:
    """The label delay the stored features were built with (the default before any build)."""
    from fraudlab.features import feature_info

    return float(feature_info(ws).get("label_delay_days", DEFAULT_LABEL_DELAY_DAYS))


# ---------------------------------------------------------------------------------------------- models

@dataclass(frozen=True)
class RetrainOutcome:
    """A trained and registered challenger (or first champion), with what else ran."""

    model_id: str
    result: TrainResult
    features: FeatureReport | None = None
    rescored: ScoreReport | None = None
    steps: list[str] = field(default_factory=list)


@jobs.as_job('retraining')
def retrain(ws: Workspace, train_from: datetime | None = None, train_to: datetime | None = None, *,
            search: bool = False, rebuild_features: bool = False,
            label_delay_days: float = DEFAULT_LABEL_DELAY_DAYS, who: Actor | None = None,
            progress: Progress | None = None) -> RetrainOutcome:
    """Train a challenger on the labels known now (features rebuilt first if asked or stale); a first model becomes
    champion at once, and then everything is scored."""
    require(ws, who, "train")
    progress = progress or _quiet
    features = None
    if rebuild_features or not has_features(ws):
        features = build_features(ws, label_delay_days=label_delay_days, progress=_part(progress, 0.0, 0.3), who=who)
    result = train_model(ws, train_from, train_to, search=search, progress=_part(progress, 0.3, 0.8))
    model_id = registry.register(ws, result, who=who)
    rescored, steps = None, []
    if registry.champion(ws).model_id == model_id:
        rescored, steps = _rescore(ws, who, _part(progress, 0.8, 1.0))
    progress(1.0, "trained")
    return RetrainOutcome(model_id, result, features, rescored, steps)


def _rescore(ws: Workspace, who: Actor, progress: Progress) -> tuple[ScoreReport, list[str]]:
    rescored = score_window(ws, who=who, progress=_part(progress, 0.0, 0.9))
    return rescored, _refresh_results(ws, progress, who)


def rescore(ws: Workspace, who: Actor | None, progress: Progress | None = None) -> ScoreReport:
    """Score every transaction with the champion again and refresh the queue (after an approved override)."""
    require(ws, who, "promote")
    return _rescore(ws, who, progress or _quiet)[0]


@jobs.as_job('promotion and rescoring')
def promote_and_rescore(ws: Workspace, model_id: str, who: Actor | None = None, override_reason: str | None = None,
                        progress: Progress | None = None) -> promotion.PromotionOutcome:
    """Promote through the guard; when promoted, rescore every transaction and rebuild the queue."""
    outcome = promotion.promote(ws, model_id, who=who, override_reason=override_reason)
    if outcome.promoted:
        _rescore(ws, who, progress or _quiet)
    return outcome


@jobs.as_job('rollback and rescoring')
def rollback_and_rescore(ws: Workspace, who: Actor | None = None, reason: str = "",
                         progress: Progress | None = None) -> str:
    """Put the previous champion back, rescore and rebuild the queue; returns the restored model id."""
    restored = promotion.rollback(ws, who=who, reason=reason)
    _rescore(ws, who, progress or _quiet)
    return restored


def resegment(ws: Workspace, k: int | None = None, seed: int = 0, who: Actor | None = None,
              progress: Progress | None = None) -> segments.SegmentReport:
    """Segment customers again and refresh the case queue's segment column."""
    require(ws, who, "resegment")
    progress = progress or _quiet
    report = segments.segment_customers(ws, k=k, seed=seed, who=who, progress=_part(progress, 0.0, 0.9))
    if registry.champion(ws) is not None:
        cases.refresh_cases(ws)
    return report
