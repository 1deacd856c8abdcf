"""`python -m fraudlab <command>`: every subcommand lives here; the library returns results and never prints."""
from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import Callable

import pandas as pd

from fraudlab.auth.actors import cli_actor
from fraudlab.cli_jobs import run_job
from fraudlab.cli_ops import add_api_keys, add_serve, add_watch
from fraudlab.cli_users import add_users
from fraudlab.errors import FraudlabError
from fraudlab.workspace import Workspace

Handler = Callable[[argparse.Namespace], int]


def _timestamp(value: str | None) -> pd.Timestamp | None:
    return pd.Timestamp(value) if value else None


# ---------------------------------------------------------------------------------------------- generate

def _add_generate(sub) -> None:
    from fraudlab.generate import DRIFTS

    p = sub.add_parser("generate", help="simulate transactions with injected fraud patterns")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--customers", type=int, default=None)
    p.add_argument("--fraud-rate", type=float, default=0.007)
    p.add_argument("--drift", nargs="*", default=[], choices=DRIFTS)
    p.add_argument("--drift-start", type=float, default=0.5)
    p.add_argument("--out", required=True, help="output file: .csv, .csv.gz or .parquet")
    p.set_defaults(func=_generate)


def _generate(args) -> int:
    from fraudlab.generate import simulate, write_simulation

    began = time.perf_counter()
    sim = simulate(args.rows, args.seed, customers=args.customers, days=args.days, fraud_rate=args.fraud_rate,
                   drift=tuple(args.drift), drift_start=args.drift_start)
    simulated = time.perf_counter() - began
    paths = write_simulation(sim, args.out)
    print(f"{len(sim.transactions):,} rows ({int(sim.transactions['is_fraud'].sum()):,} fraud, "
          f"{sim.rings['ring_id'].nunique()} rings) simulated in {simulated:.1f} s, "
          f"written in {time.perf_counter() - began - simulated:.1f} s: " + ", ".join(map(str, paths)))
    return 0


# ---------------------------------------------------------------------------------------------- ingest

def _add_ingest(sub) -> None:
    p = sub.add_parser("ingest", help="load CSV / Parquet files (or a glob) into the workspace",
                       description="The command line is the machine operator's: unlike the browser, its paths are "
                                   "not limited to the data folders (FRAUDLAB_DATA_ROOTS).")
    p.add_argument("path", help="file path or glob, e.g. 'data/*.csv.gz' (any folder the operator can read)")
    p.add_argument("--workspace", default=None, help="workspace file (default: FRAUDLAB_WORKSPACE)")
    p.add_argument("--engine", choices=("duckdb", "dask"), default="duckdb")
    p.add_argument("--map", action="append", default=[], metavar="TARGET=COLUMN",
                   help="override the detected mapping for one column, e.g. --map ts=EventTime")
    p.add_argument("--keep-column", action="append", default=[], metavar="NAME",
                   help="add this unmapped source column to the transactions (usable as a feature); repeatable. "
                        "Unmapped columns not named are kept aside in the table transaction_extras")
    p.add_argument("--refresh", action="store_true",
                   help="then bring features, scores and the case queue up to date for what arrived (incrementally; "
                        "rows late behind their customer are marked), as the app and `watch` do")
    p.add_argument("--late-horizon-hours", type=float, default=None,
                   help="with --refresh: rows later than this behind their customer are 'beyond horizon' (default 24)")
    p.set_defaults(func=_ingest)


def _ingest(args) -> int:
    # the operator, who has a shell on this machine, may load any file it can read: no data-folder limit here
    return run_job("ingest", {"path": args.path, "engine": args.engine, "map": args.map,
                              "keep_column": args.keep_column, "refresh": args.refresh,
                              "late_horizon_hours": args.late_horizon_hours}, args.workspace)


# ---------------------------------------------------------------------------------------------- features

def _build_options(p) -> None:
    from fraudlab.features import DEFAULT_LABEL_DELAY_DAYS

    p.add_argument("--engine", choices=("duckdb", "dask"), default="duckdb",
                   help="dask: on FRAUDLAB_DASK_SCHEDULER, or a local cluster")
    p.add_argument("--label-delay-days", type=float, default=DEFAULT_LABEL_DELAY_DAYS)


def _add_features(sub) -> None:
    from fraudlab.featurelab import AGGREGATES, KEYS

    p = sub.add_parser("features", help="(re)build point-in-time features; list, add, evaluate, drop your own")
    _build_options(p)
    p.set_defaults(func=_features)
    group = p.add_subparsers(dest="features_command")
    build = group.add_parser("build", help="(re)build every feature (the default with no subcommand)")
    _build_options(build)
    build.set_defaults(func=_features)
    group.add_parser("list", help="user-defined features and the feature-set version").set_defaults(func=_features_list)
    add = group.add_parser("add", help="define a feature, check it and backfill its column")
    add.add_argument("--name", required=True)
    add.add_argument("--key", default="customer_id", help=f"a column, e.g. {', '.join(KEYS)}")
    add.add_argument("--agg", default="count", choices=AGGREGATES)
    add.add_argument("--of", default=None, help="the column aggregated (not needed for count / since_last)")
    add.add_argument("--window", default="30d", help="5m, 1h, 7d, 30d … or 'all'")
    add.add_argument("--delay", default=None, help="the window ends this long before the transaction, e.g. 7d")
    add.add_argument("--where", default=None, help="only earlier events matching this, e.g. \"channel = 'online'\"")
    add.add_argument("--expression", default=None, help="a row-level expression aggregated instead of --of")
    add.set_defaults(func=_features_add)
    evaluate = group.add_parser("evaluate", help="per-month quality, drift and leakage checks of one feature")
    evaluate.add_argument("name")
    evaluate.set_defaults(func=_features_evaluate)
    drop = group.add_parser("drop", help="remove a user-defined feature and its column")
    drop.add_argument("name")
    drop.set_defaults(func=_features_drop)


def _features(args) -> int:
    return run_job("features", {"engine": args.engine, "label_delay_days": args.label_delay_days})


def _features_list(args) -> int:
    from fraudlab.featurelab import feature_set_version, list_definitions

    ws = Workspace()
    table = list_definitions(ws)
    print(f"feature-set version {feature_set_version(ws)}; {len(table)} user-defined feature(s)")
    for row in table.itertuples():
        print(f"  {row.name:<28} v{row.version:<4} {row.describes} (by {row.created_by})")
    return 0


def _features_add(args) -> int:
    from fraudlab.featurelab import FeatureDef, add_definition, feature_set_version

    ws = Workspace()
    began = time.perf_counter()
    defn = add_definition(ws, FeatureDef(args.name, args.key, args.agg, args.of, args.window, args.delay, args.where,
                                         args.expression), who=cli_actor())
    print(f"added {defn.name}: {defn.describe()}; feature-set version {feature_set_version(ws)} "
          f"({time.perf_counter() - began:.1f} s)")
    return 0


def _features_evaluate(args) -> int:
    from fraudlab.featurelab.evaluate import evaluate_feature

    ws = Workspace()
    ev = evaluate_feature(ws, args.name)
    fmt = lambda v: "n/a" if v is None or v != v else f"{v:.3f}"  # noqa: E731
    print(f"{ev.name}: {ev.rows:,} rows, coverage {ev.coverage:.1%} ({ev.nulls:,} missing), information value "
          f"{ev.information_value:.3f}, PSI first vs last month {fmt(ev.psi_first_last_month)}")
    for m in ev.per_month.itertuples():
        print(f"  {m.month}  rows {m.rows:>9,}  frauds {m.frauds:>6,}  PR-AUC {fmt(m.pr_auc)}  ROC-AUC {fmt(m.roc_auc)}"
              f"  IV {m.information_value:.3f}  coverage {m.coverage:.1%}")
    for c in ev.correlations.itertuples():
        print(f"  correlation with {c.feature}: {c.correlation:+.3f} (sample of {ev.correlation_rows:,} rows)")
    for check in ev.leakage:
        print(f"  leakage check {check.name}: {'passed' if check.passed else 'FAILED'} ({check.detail})")
    print(f"  {ev.sampling_note} ({ev.seconds:.1f} s)")
    return 1 if ev.leaks else 0


def _features_drop(args) -> int:
    from fraudlab.featurelab import drop_definition

    version = drop_definition(Workspace(), args.name, who=cli_actor())
    print(f"dropped {args.name}; feature-set version {version}")
    return 0


# ---------------------------------------------------------------------------------------------- train / score

def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train an XGBoost challenger on the workspace")
    p.add_argument("--train-from", default=None)
    p.add_argument("--train-to", default=None)
    p.add_argument("--search", action="store_true", help="small hyper-parameter search")
    p.add_argument("--rebuild-features", action="store_true")
    p.add_argument("--promote", action="store_true", help="promote if the guard allows, then rescore")
    p.set_defaults(func=_train)


def _train(args) -> int:
    return run_job("train", {"train_from": args.train_from, "train_to": args.train_to, "search": args.search,
                             "rebuild_features": args.rebuild_features, "promote": args.promote})


def _add_score(sub) -> None:
    from fraudlab.scoring import EXPLAIN_TOP

    p = sub.add_parser("score", help="score a time window with the champion and explain the top cases")
    p.add_argument("--from", dest="start", default=None)
    p.add_argument("--to", dest="end", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--explain-top", type=int, default=EXPLAIN_TOP)
    p.set_defaults(func=_score)


def _score(args) -> int:
    return run_job("score", {"start": args.start, "end": args.end, "model": args.model,
                             "explain_top": args.explain_top})


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="train up to a cut-off, wait out the label delay, test the days after")
    p.add_argument("--train-to", default=None, help="training cut-off (default: 3 weeks before the data ends)")
    p.add_argument("--delay", type=float, default=7.0, help="label delay in days between training and test")
    p.add_argument("--test-from", default=None, help="default: cut-off + delay")
    p.add_argument("--test-to", default=None, help="default: test start + 7 days")
    p.add_argument("--exclude-known-compromised", action=argparse.BooleanOptionalAction, default=True,
                   help="drop customers with a fraud known by each test day (default: on)")
    p.add_argument("--known-since", default=None,
                   help="count frauds as known only from this date (default: all history; the handbook uses the "
                        "training start)")
    p.add_argument("--top-k", type=int, default=100, help="k of card precision@k per day")
    p.add_argument("--search", action="store_true", help="small hyper-parameter search")
    p.set_defaults(func=_evaluate)


def _evaluate(args) -> int:
    from fraudlab import registry
    from fraudlab.evaluation import default_protocol, evaluate_protocol, save_evaluation

    ws = Workspace()
    protocol = default_protocol(ws, _timestamp(args.train_to), args.delay, _timestamp(args.test_from),
                                _timestamp(args.test_to), args.exclude_known_compromised, args.top_k,
                                _timestamp(args.known_since))
    run = evaluate_protocol(ws, protocol, search=args.search)
    model_id = registry.register(ws, run.train, who=cli_actor())
    run_id = save_evaluation(ws, run, model_id, who=cli_actor())
    print(f"protocol: {protocol.describe()}")
    print(f"test rows {run.rows:,} ({run.frauds:,} fraud; {run.removed_rows:,} rows of known-compromised customers "
          f"removed)")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"PR-AUC {fmt(run.pr_auc)}   ROC-AUC {fmt(run.roc_auc)}   card precision@{protocol.top_k} (mean per day) "
          f"{fmt(run.card_precision)}")
    if len(run.per_day):
        print(run.per_day.assign(day=run.per_day["day"].dt.strftime("%Y-%m-%d")).to_string(index=False))
    print(f"model {model_id} registered as a challenger; evaluation run {run_id} stored beside it")
    return 0


# ---------------------------------------------------------------------------------------------- drift

def _add_drift(sub) -> None:
    p = sub.add_parser("drift", help="drift report between a reference and a current window (saved as a run)")
    for name in ("reference-from", "reference-to", "current-from", "current-to"):
        p.add_argument(f"--{name}", help="date or timestamp; default: first half vs second half of the data")
    p.add_argument("--reference-ingests", help="comma-separated ingest ids (instead of dates)")
    p.add_argument("--current-ingests", help="comma-separated ingest ids (instead of dates)")
    p.add_argument("--thresholds", choices=("default", "reference_chunks"), default="default")
    p.add_argument("--no-multivariate", action="store_true")
    p.add_argument("--html", help="also write the self-contained HTML report here")
    p.set_defaults(func=_drift)


def _drift(args) -> int:
    names = ("reference_from", "reference_to", "current_from", "current_to", "reference_ingests", "current_ingests",
             "thresholds", "no_multivariate")
    return run_job("drift", {**{name: getattr(args, name) for name in names},
                             "html": args.html})


# ---------------------------------------------------------------------------------------------- bench

def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="run the benchmarks in benchmarks/ and print one table")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--only", nargs="*", default=None, help="run only scripts whose name has these words")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per script")
    p.add_argument("--verbose", action="store_true", help="also print each script's own output")
    p.set_defaults(func=_bench)


def _bench(args) -> int:
    from fraudlab.bench import BenchRow, bench_scripts, format_table, run_script

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


# ---------------------------------------------------------------------------------------------- entry

COMMANDS = (_add_generate, _add_ingest, _add_features, _add_train, _add_score, _add_evaluate, _add_drift,
            _add_bench, add_users, add_watch, add_api_keys, add_serve)


def build_parser() -> argparse.ArgumentParser:
    """Parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m fraudlab", description="fraudlab command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a FraudlabError prints its message and exits 2."""
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except FraudlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)
